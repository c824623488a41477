"""How a record in the public schema is put in the change history (decision 0931).

Firm records (``crm``, ``portfolios``, users) use ``pghistory.track`` as it comes: their events and
the context rows (who, which request) both live in the firm's schema. A record in the public schema
(a firm's subscription, invoices, settings) is written from a firm's request too, while the
connection's ``search_path`` starts with that firm's schema: a context row would land in the firm's
schema and its event in public, out of each other's reach. So these trackers copy the context
into each event row (pghistory's denormalised ``ContextJSONField``) and need no context table.

The tracked model names, in ``history_firm_lookup``, the lookup on its event model that gives the
firm a change belongs to (``"tenant_id"``, ``"invoice__tenant_id"``, ``"pgh_obj_id"`` for the firm
itself): that firm's trail export (``codex.history.firm_trail``) includes those events.
"""

from __future__ import annotations

import pghistory


def track_public_record(**options):
    """``pghistory.track`` (insert, update, delete) for a model in the public schema."""
    return pghistory.track(
        pghistory.InsertEvent(),
        pghistory.UpdateEvent(),
        pghistory.DeleteEvent(),
        context_field=pghistory.ContextJSONField(),
        **options,
    )
