"""Payments and refunds on invoices, and provider webhooks applied exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django_tenants.utils import schema_context

# Module import (not names): tenants.services imports this module for provisioning, so the names
# are looked up at call time, when both modules are fully loaded.
from codex.outbox.services import event_emit
from tenants import services as tenant_services

from .. import events
from ..models import (
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentKind,
    WebhookEvent,
)
from ..money import currency_exponent, quantize_money
from .common import BillingStateError, _locked_invoice, _now, _settle_if_clear


# --- Payments ----------------------------------------------------------------------------------------
def _money(amount, currency: str, field_name: str = "amount") -> Decimal:
    if isinstance(amount, float | bool) or not isinstance(amount, Decimal | int):
        raise ValidationError({field_name: "Enter an amount as a decimal number."})
    rounded = quantize_money(amount, currency)
    if rounded != amount:
        raise ValidationError({field_name: f"{currency} amounts have {currency_exponent(currency)} decimals at most."})
    if rounded <= 0:
        raise ValidationError({field_name: "The amount must be more than zero."})
    return rounded


def payment_record(
    *,
    invoice: Invoice,
    amount: Decimal,
    provider: str,
    kind: str = PaymentKind.PAYMENT,
    external_id: str = "",
    actor: str = "",
    note: str = "",
    now: datetime | None = None,
) -> Payment | None:
    """Record a payment or refund on an invoice; returns None if that provider id was already recorded.

    Payments may be partial; the invoice becomes paid when nothing is left due, and then the firm is
    reactivated at once if no other overdue invoice remains. Refunds never reopen an invoice (as with
    Stripe); they are recorded and reduce the money kept. Atomic; the invoice row is locked.
    Raises ValidationError (``amount``) or BillingStateError (``status``).
    """
    now = _now(now)
    with transaction.atomic(), schema_context(settings.PUBLIC_SCHEMA_NAME):
        invoice = _locked_invoice(invoice)
        amount = _money(amount, invoice.currency)
        if external_id and Payment.objects.filter(provider=provider, kind=kind, external_id=external_id).exists():
            return None
        if kind == PaymentKind.PAYMENT:
            if invoice.status not in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
                raise BillingStateError({"status": f"A {invoice.status} invoice cannot take a payment."})
            if amount > invoice.amount_due:
                due = quantize_money(invoice.amount_due, invoice.currency)
                raise ValidationError({"amount": f"Only {due} {invoice.currency} is due."})
            invoice.amount_paid += amount
        elif kind == PaymentKind.REFUND:
            refundable = invoice.amount_paid - invoice.amount_refunded
            if amount > refundable:
                left = quantize_money(refundable, invoice.currency)
                raise ValidationError({"amount": f"Only {left} {invoice.currency} can be refunded."})
            invoice.amount_refunded += amount
        else:
            raise ValidationError({"kind": "Unknown payment kind."})
        try:
            with transaction.atomic():
                payment = Payment.objects.create(
                    invoice=invoice,
                    tenant_id=invoice.tenant_id,
                    kind=kind,
                    provider=provider,
                    external_id=external_id,
                    amount=amount,
                    currency=invoice.currency,
                    recorded_by=actor[:254],
                    note=note[:500],
                )
        except IntegrityError:
            return None  # the same provider id recorded concurrently
        became_paid = kind == PaymentKind.PAYMENT and invoice.amount_due == 0
        if became_paid:
            invoice.status, invoice.paid_at = InvoiceStatus.PAID, now
        invoice.save(update_fields=["amount_paid", "amount_refunded", "status", "paid_at"])
        if became_paid:
            event_emit(
                type="invoice.paid",
                data=events.invoice_data(invoice),
                resource=f"invoice:{invoice.pk}",
                tenant=invoice.tenant,
            )
        tenant_services.audit_record(
            action=f"billing.{kind}_recorded",
            actor=actor or provider,
            tenant=invoice.tenant,
            target=invoice.number or "",
            details={"amount": str(amount), "currency": invoice.currency, "provider": provider, "id": external_id},
        )
        if became_paid:
            _settle_if_clear(invoice.tenant, now, actor=actor or provider, reason=f"invoice {invoice.number} paid")
        return payment


def invoice_mark_paid(*, invoice: Invoice, actor: str, note: str = "", now: datetime | None = None) -> Payment:
    """Operator: record a manual payment of everything still due."""
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        fresh = Invoice.objects.get(pk=invoice.pk)
    if fresh.status not in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE) or fresh.amount_due <= 0:
        raise BillingStateError({"status": f"Nothing is due on this {fresh.status} invoice."})
    payment = payment_record(
        invoice=fresh,
        amount=quantize_money(fresh.amount_due, fresh.currency),
        provider="manual",
        actor=actor,
        note=note or "Marked paid by an operator",
        now=now,
    )
    if payment is None:  # only provider ids can repeat; a manual payment has none
        raise BillingStateError({"status": "This payment was already recorded."})
    return payment


# --- Webhooks ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProviderEvent:
    """A provider's event, normalised by billing.providers (no Django objects inside)."""

    provider: str
    event_id: str
    type: str
    payload: dict
    action: str  # "payment", "refund" or "ignore"
    invoice_number: str = ""
    amount_minor: int = 0
    currency: str = ""
    external_id: str = ""
    ignore_reason: str = ""
    cumulative_of: str = ""
    """Set when ``amount_minor`` is a running total for this charge id (refunds without a list):
    only the part not yet recorded is applied."""


def webhook_event_apply(*, event: ProviderEvent, now: datetime | None = None) -> tuple[bool, str]:
    """Apply a verified provider event exactly once; returns (first_time, result).

    The WebhookEvent row (unique provider + event id) is inserted in the same transaction as the
    payment it causes: a replay, even concurrent, finds the row and changes nothing; a failure rolls
    both back so the provider's retry applies it. An event that cannot apply (unknown invoice,
    currency mismatch, overpayment) is recorded with the reason for operators, never retried.
    """
    now = _now(now)
    with transaction.atomic(), schema_context(settings.PUBLIC_SCHEMA_NAME):
        try:
            with transaction.atomic():
                row = WebhookEvent.objects.create(
                    provider=event.provider, event_id=event.event_id, type=event.type, payload=event.payload
                )
        except IntegrityError:
            return False, "duplicate"
        result = _apply_event(event, now)
        row.result = result[:300]
        row.save(update_fields=["result"])
        return True, result


def _apply_event(event: ProviderEvent, now: datetime) -> str:
    if event.action == "ignore":
        return f"ignored: {event.ignore_reason or event.type}"
    invoice = Invoice.objects.filter(number=event.invoice_number).first() if event.invoice_number else None
    if invoice is None:
        return f"ignored: unknown invoice {event.invoice_number!r}"
    if event.currency.upper() != invoice.currency.upper():
        return f"rejected: currency {event.currency} does not match invoice currency {invoice.currency}"
    exponent = currency_exponent(invoice.currency)
    amount = Decimal(event.amount_minor).scaleb(-exponent)
    if event.cumulative_of:
        already = sum(
            Payment.objects.filter(
                provider=event.provider, kind=PaymentKind.REFUND, external_id__startswith=f"{event.cumulative_of}:"
            ).values_list("amount", flat=True),
            Decimal("0"),
        )
        amount -= already
        if amount <= 0:
            return f"already recorded: refunds of {event.cumulative_of} up to {already}"
    try:
        payment = payment_record(
            invoice=invoice,
            amount=amount,
            provider=event.provider,
            kind=PaymentKind.REFUND if event.action == "refund" else PaymentKind.PAYMENT,
            external_id=event.external_id,
            actor=f"{event.provider} webhook",
            note=f"{event.type} {event.event_id}",
            now=now,
        )
    except ValidationError as exc:
        return "rejected: " + "; ".join(exc.messages)
    if payment is None:
        return f"already recorded: {event.external_id}"
    return f"{payment.kind} {payment.amount} {payment.currency} on {invoice.number}"
