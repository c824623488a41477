"""Outbound webhooks of a firm: endpoints, signed deliveries from the outbox, the delivery log."""
