"""The ``data`` of the CRM's business events (catalogue: codex/outbox/catalogue.py)."""

from __future__ import annotations


def contact_data(contact) -> dict:
    return {
        "id": contact.pk,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "email": contact.email,
        "lifecycle": contact.lifecycle,
        "owner_id": contact.owner_id,
    }


def deal_stage_data(deal, previous) -> dict:
    return {
        "id": deal.pk,
        "name": deal.title,
        "from_stage": previous.name if previous is not None else None,
        "to_stage": deal.stage.name,
        "amount": str(deal.amount),
        "currency": deal.currency,
    }


def import_data(job) -> dict:
    return {"id": job.pk, "kind": job.kind, "portfolio_id": None, "rows": len(job.rows)}
