"""Payment providers: the interface, the manual provider and a Stripe-compatible webhook parser.

A provider turns whatever it receives (an operator's form, a signed webhook) into a normalised
``ProviderEvent`` or a ``payment_record`` call; ``billing.services`` applies it. Adding a provider
means one class here, no change to the services.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

from django.conf import settings

from .models import Invoice, Payment
from .services import ProviderEvent, invoice_mark_paid, payment_record
from .signatures import SignatureError, verify_signature


class WebhookRejected(Exception):
    """The webhook request is not a valid, signed event (answered with 400)."""


class PaymentProvider(Protocol):
    name: str

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        """Verify and normalise one webhook request; raise WebhookRejected if it is not authentic."""
        ...


class ManualProvider:
    """Payments an operator records by hand (bank transfer, cheque): no webhook."""

    name = "manual"

    def record_payment(self, *, invoice: Invoice, amount: Decimal, actor: str, note: str = "") -> Payment | None:
        return payment_record(invoice=invoice, amount=amount, provider=self.name, actor=actor, note=note)

    def record_refund(self, *, invoice: Invoice, amount: Decimal, actor: str, note: str = "") -> Payment | None:
        return payment_record(invoice=invoice, amount=amount, provider=self.name, kind="refund", actor=actor, note=note)

    def mark_paid(self, *, invoice: Invoice, actor: str) -> Payment:
        return invoice_mark_paid(invoice=invoice, actor=actor)

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        raise WebhookRejected("the manual provider has no webhooks")


def _invoice_number(obj: dict) -> str:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("invoice_number") or metadata.get("codex_invoice") or "")


class StripeProvider:
    """Stripe-compatible webhooks: ``Stripe-Signature`` verified, events mapped to payments/refunds.

    Handled: ``invoice.paid`` / ``invoice.payment_succeeded`` (``amount_paid``),
    ``payment_intent.succeeded`` (``amount_received``), ``charge.refunded`` (each entry of
    ``refunds.data``, or the cumulative ``amount_refunded``). Our invoice is found by
    ``metadata.invoice_number``. The payment's id is the PaymentIntent id in both payment events, so
    ``invoice.paid`` and ``payment_intent.succeeded`` for one payment record it once.
    """

    name = "stripe"

    def __init__(self, secrets: list[str] | None = None, tolerance: int | None = None):
        self.secrets = secrets if secrets is not None else list(settings.STRIPE_WEBHOOK_SECRETS)
        self.tolerance = tolerance or settings.STRIPE_WEBHOOK_TOLERANCE

    def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        if not self.secrets:
            raise WebhookRejected("no webhook secret is configured (STRIPE_WEBHOOK_SECRET)")
        try:
            verify_signature(body, headers.get("Stripe-Signature", ""), self.secrets, tolerance=self.tolerance)
        except SignatureError as exc:
            raise WebhookRejected(f"{type(exc).__name__}: {exc}") from exc
        try:
            payload = json.loads(body)
            event_id, event_type = str(payload["id"]), str(payload["type"])
            obj = payload["data"]["object"]
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookRejected("the body is not a Stripe event (id, type, data.object)") from exc
        return self._normalise(payload, event_id, event_type, obj)

    def _normalise(self, payload: dict, event_id: str, event_type: str, obj: dict) -> ProviderEvent:
        base: dict[str, Any] = {"provider": self.name, "event_id": event_id, "type": event_type, "payload": payload}
        number = _invoice_number(obj)
        currency = str(obj.get("currency") or "")
        try:
            if event_type in ("invoice.paid", "invoice.payment_succeeded"):
                return ProviderEvent(
                    **base,
                    action="payment",
                    invoice_number=number,
                    amount_minor=int(obj["amount_paid"]),
                    currency=currency,
                    external_id=str(obj.get("payment_intent") or obj.get("id") or event_id),
                )
            if event_type == "payment_intent.succeeded":
                return ProviderEvent(
                    **base,
                    action="payment",
                    invoice_number=number,
                    amount_minor=int(obj["amount_received"] if "amount_received" in obj else obj["amount"]),
                    currency=currency,
                    external_id=str(obj["id"]),
                )
            if event_type == "charge.refunded":
                refunds = (obj.get("refunds") or {}).get("data") or []
                latest = refunds[0] if refunds else None  # Stripe lists the newest refund first
                if latest is not None:
                    return ProviderEvent(
                        **base,
                        action="refund",
                        invoice_number=number,
                        amount_minor=int(latest["amount"]),
                        currency=currency,
                        external_id=str(latest["id"]),
                    )
                return ProviderEvent(
                    **base,
                    action="refund",
                    invoice_number=number,
                    amount_minor=int(obj["amount_refunded"]),
                    currency=currency,
                    external_id=f"{obj['id']}:{obj['amount_refunded']}",
                    cumulative_of=str(obj["id"]),
                )
        except (KeyError, TypeError, ValueError) as exc:
            raise WebhookRejected(f"{event_type} event without the expected amount fields") from exc
        return ProviderEvent(**base, action="ignore", ignore_reason=f"event type {event_type} is not handled")


PROVIDERS: dict[str, type] = {"manual": ManualProvider, "stripe": StripeProvider}
