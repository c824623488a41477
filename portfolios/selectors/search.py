"""What the global search page finds above crm (``crm.record_sources.register_search_source``):
the portfolios in the user's book by their name or their client's, and instruments by ticker or name."""

from __future__ import annotations

from django.db.models import Case, IntegerField, Q, Value, When

from crm.selectors import SearchHit
from tenants.links import firm_path

from ..access import portfolios_visible_to
from ..market.models import AssetClass, Instrument
from .listing import portfolios_matching


def portfolio_search_hits(*, user, q: str, limit: int) -> list[SearchHit]:
    """Portfolios ``user`` may read whose name or client's name holds every word of ``q``; archived
    ones last and marked. One query (the name's and the contacts' trigram indexes answer it)."""
    terms = q.split()
    if not terms:
        return []
    rows = (
        portfolios_matching(portfolios_visible_to(user), terms)
        .select_related("client")
        .only("pk", "name", "base_currency", "archived", "client__first_name", "client__last_name")
        .order_by("archived", "name", "pk")[:limit]
    )
    hits = []
    for portfolio in rows:
        contact = portfolio.client
        client = f"{contact.first_name} {contact.last_name}".strip() if contact is not None else ""
        subtitle = " · ".join(
            x for x in (client, portfolio.base_currency, "archived" if portfolio.archived else "") if x
        )
        hits.append(
            SearchHit(
                "portfolio",
                portfolio.pk,
                portfolio.name,
                subtitle,
                firm_path("portfolios:detail", args=[portfolio.pk]),
                1.0,
            )
        )
    return hits


def instrument_search_hits(*, user, q: str, limit: int) -> list[SearchHit]:
    """Instruments this firm sees (the market's and its own) whose ticker is ``q`` or starts with it,
    or whose name holds it; exact tickers first. One query."""
    q = q.strip()
    if not q or not getattr(user, "is_authenticated", False):
        return []
    rank = Case(
        When(symbol__iexact=q, then=Value(0)),
        When(symbol__istartswith=q, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    rows = (
        Instrument.objects.filter(Q(symbol__istartswith=q) | Q(name__icontains=q))
        .annotate(rank=rank)
        .only("pk", "symbol", "exchange", "name", "asset_class", "currency")
        .order_by("rank", "symbol", "exchange")[:limit]
    )
    classes = dict(AssetClass.choices)
    return [
        SearchHit(
            "instrument",
            i.pk,
            i.symbol,
            " · ".join(
                x for x in (i.name, i.exchange, str(classes.get(i.asset_class, i.asset_class)), i.currency) if x
            ),
            firm_path("portfolios:instrument-detail", args=[i.pk]),
            1.0 if i.rank == 0 else 0.5,
        )
        for i in rows
    ]
