"""Portfolios as listed: the list's queryset (scoped, columns named, sharing in one subquery)."""

from __future__ import annotations

from django.contrib.postgres.expressions import ArraySubquery
from django.contrib.postgres.fields import ArrayField
from django.db.models import BigIntegerField, BooleanField, F, Func, OuterRef, QuerySet

from crm.models import Contact, fold

from ..access import portfolios_visible_to
from ..models import Portfolio, PortfolioTally

#: The columns ``PortfolioSerializer`` reads: the portfolio's own, and one or two of each joined
#: row (a contact also carries its search vector and trigram arrays, which the list never shows).
PORTFOLIO_LIST_COLUMNS = (
    "id",
    "name",
    "client_id",
    "client__first_name",
    "client__last_name",
    "advisor_id",
    "advisor__email",
    "base_currency",
    "benchmark_id",
    "benchmark__symbol",
    "lot_method",
    "archived",
    "created_at",
    "updated_at",
)


def portfolio_list(*, user) -> QuerySet[Portfolio]:
    """The portfolios ``user`` may read (``access.portfolios_visible_to``: the whole firm, or an
    advisor's book), each with its client, advisor and benchmark joined and the ids of the users it
    is shared with (``shared_with_ids``, ascending) in the same query: one query per page whatever
    the number of rows. Lists and single portfolios of the API read it alike."""
    shared_with = Portfolio.shared_with.through.objects.filter(portfolio_id=OuterRef("pk"))
    return (
        portfolios_visible_to(user)
        .select_related("advisor", "client", "benchmark")
        .only(*PORTFOLIO_LIST_COLUMNS)
        .annotate(shared_with_ids=ArraySubquery(shared_with.order_by("user_id").values("user_id")))
    )


def portfolio_firm_count() -> int:
    """How many portfolios the active firm has, archived ones included: the count the triggers of
    ``Portfolio`` keep in ``PortfolioTally`` (one primary-key read, whatever the firm's size)."""
    return PortfolioTally.objects.filter(pk=1).values_list("portfolios", flat=True).first() or 0


def portfolios_matching(qs: QuerySet[Portfolio], terms: list[str]) -> QuerySet[Portfolio]:
    """Portfolios of ``qs`` where every term is a part of the name (any case) or of the client's
    name (accents and case folded, as the contacts' search).

    Each term is one ``id = ANY(ARRAY(by name) || ARRAY(by client))``: two small statements that
    PostgreSQL plans on their own (the name's GIN trigram index; the client ids found by the
    contacts' ``search_name`` index, then the ``client_id`` index), and the portfolios they name
    read by primary key. As one ``OR`` over the table, the planner weighed both indexes together
    against reading the table's few dozen pages and chose the sequential scan once the table had
    grown a little (docs/decisions/1320)."""
    for term in terms[:8]:
        clients = ArraySubquery(Contact.objects.filter(search_name__contains=fold(term)).order_by().values("pk"))
        by_name = Portfolio.objects.filter(name__icontains=term).order_by().values("pk")
        by_client = Portfolio.objects.filter(_any("client_id", clients)).order_by().values("pk")
        found = Func(
            ArraySubquery(by_name),
            ArraySubquery(by_client),
            template="(%(expressions)s)",
            arg_joiner=" || ",
            output_field=ArrayField(BigIntegerField()),
        )
        qs = qs.filter(_any("pk", found))
    return qs


def _any(field: str, array) -> Func:
    """``field = ANY(array)``: the array is computed once, the field looked up in its index."""
    return Func(F(field), array, template="(%(expressions)s))", arg_joiner=" = ANY(", output_field=BooleanField())
