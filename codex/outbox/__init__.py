"""The transactional outbox (kernel): domain apps record business events with ``event_emit``.

An event row is written in the same database transaction as the change it describes, in the
firm's schema; after the commit a relay task hands it to the subscribers that registered with
``subscribe`` (outbound webhooks register one). A rolled-back change leaves no event, so nothing
is ever sent for it. This package imports no domain app: the catalogue of event types lives here
as data, and subscribers register themselves from their own ``AppConfig.ready``.
"""
