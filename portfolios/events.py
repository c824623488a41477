"""The ``data`` of the portfolios' business events (catalogue: codex/outbox/catalogue.py)."""

from __future__ import annotations


def transaction_data(txn) -> dict:
    return {
        "id": txn.pk,
        "portfolio_id": txn.portfolio_id,
        "kind": txn.kind,
        "trade_date": txn.trade_date.isoformat(),
        "instrument_id": txn.instrument_id,
        "quantity": str(txn.quantity),
        "price": str(txn.price),
        "amount": None if txn.amount is None else str(txn.amount),
        "currency": txn.currency,
    }


def alert_data(event) -> dict:
    rule = event.rule
    return {
        "id": event.pk,
        "rule_id": rule.pk,
        "kind": rule.kind,
        "instrument_id": rule.instrument_id,
        "portfolio_id": rule.portfolio_id,
        "message": event.message,
    }
