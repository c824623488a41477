"""The catalogue of business events: type, what it means, and an example of its ``data``.

Documented in ``docs/webhooks.md`` and served in the OpenAPI schema (``GET /api/v1/webhook-events/``).
Adding an event: add it here, emit it with ``event_emit`` from the service that makes the change,
and document it. Removing or renaming one is a breaking change (docs/api.md, deprecation policy).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    example: dict
    reserved: bool = False  # catalogued for a feature that does not emit it yet
    fields: dict = field(default_factory=dict)  # data field -> JSON type, for the schema


_CONTACT = {
    "id": 42,
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "lifecycle": "client",
    "owner_id": 7,
}
_TXN = {
    "id": 981,
    "portfolio_id": 12,
    "kind": "buy",
    "trade_date": "2026-12-01",
    "instrument_id": 5,
    "quantity": "10",
    "price": "182.50",
    "amount": "-1825.00",
    "currency": "USD",
}
_INVOICE = {
    "id": 310,
    "number": "2026-000310",
    "status": "open",
    "total": "99.00",
    "currency": "EUR",
    "period_start": "2026-12-01",
    "period_end": "2026-12-31",
}
_FEE_INVOICE = {
    "id": 77,
    "number": "FEE-2027-000077",
    "kind": "invoice",  # or "credit_note" (total negative, credit_of_id set)
    "status": "open",
    "household_id": 9,  # the billing group (household) invoiced
    "client_id": 42,
    "period_start": "2026-10-01",
    "period_end": "2026-12-31",
    "issued_on": "2027-01-02",
    "due_on": "2027-02-01",
    "total": "1250.00",
    "currency": "USD",
    "collection": "invoice",  # or "deduct": taken from the accounts, paid as issued
    "credit_of_id": None,
}

CATALOGUE: dict[str, EventType] = {
    e.name: e
    for e in [
        EventType("contact.created", "A contact (lead, prospect or client) was created.", _CONTACT),
        EventType(
            "contact.updated", "A contact's fields changed (the data is the contact after the change).", _CONTACT
        ),
        EventType("portfolio.transaction.created", "A transaction was recorded in a portfolio's ledger.", _TXN),
        EventType("portfolio.transaction.deleted", "A transaction was removed from a portfolio's ledger.", _TXN),
        EventType(
            "import.completed",
            "A CSV import was committed (contacts, companies, deals or a portfolio's transactions).",
            {"id": 15, "kind": "transactions", "portfolio_id": 12, "rows": 250},
        ),
        EventType(
            "alert.fired",
            "An alert rule crossed its threshold (fires once per crossing).",
            {
                "id": 301,
                "rule_id": 8,
                "kind": "price_above",
                "instrument_id": 5,
                "portfolio_id": None,
                "message": "AAPL above 200",
            },
        ),
        EventType(
            "deal.stage_changed",
            "A deal moved to another pipeline stage (won and lost are stages too).",
            {
                "id": 55,
                "name": "Pension transfer",
                "from_stage": "Proposal",
                "to_stage": "Won",
                "amount": "250000.00",
                "currency": "EUR",
            },
        ),
        EventType("invoice.issued", "Codex issued the firm's subscription invoice (it is open).", _INVOICE),
        EventType("invoice.paid", "The firm's subscription invoice was paid.", _INVOICE | {"status": "paid"}),
        EventType("invoice.voided", "The firm's subscription invoice was voided.", _INVOICE | {"status": "void"}),
        EventType(
            "subscription.changed",
            "The firm's Codex subscription changed: plan, interval, status or cancellation.",
            {"plan": "pro", "interval": "month", "status": "active", "cancel_at_period_end": False},
        ),
        EventType(
            "fee_invoice.issued",
            "A client fee invoice was issued by a fee run, or a credit note against one (kind credit_note).",
            _FEE_INVOICE,
        ),
        EventType(
            "fee_invoice.paid",
            "A client fee invoice was paid: marked paid, or deducted from the accounts as it was issued.",
            _FEE_INVOICE | {"status": "paid"},
        ),
        EventType(
            "fee_invoice.voided",
            "A client fee invoice or credit note was voided (fees deducted from accounts are reversed).",
            _FEE_INVOICE | {"status": "void"},
        ),
        EventType(
            "webhook.test",
            'Sent by the "send test event" button or API; only to the endpoint it was sent for.',
            {"endpoint_id": 3, "message": "This is a test event from Codex."},
        ),
    ]
}

# Event types an endpoint may subscribe to (the test event is always delivered to its endpoint).
SUBSCRIBABLE = sorted(name for name in CATALOGUE if name != "webhook.test")


class UnknownEventType(ValueError):
    pass


def event_type(name: str) -> EventType:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise UnknownEventType(f"unknown event type {name!r}") from None
