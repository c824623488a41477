"""Portfolios as listed: the list's queryset (scoped, columns named, sharing in one subquery)."""

from __future__ import annotations

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import BooleanField, F, Func, OuterRef, Q, QuerySet

from crm.models import Contact, fold

from ..access import portfolios_visible_to
from ..models import Portfolio

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


def portfolios_matching(qs: QuerySet[Portfolio], terms: list[str]) -> QuerySet[Portfolio]:
    """Portfolios of ``qs`` where every term is a part of the name (any case) or of the client's
    name (accents and case folded, as the contacts' search). The name's GIN trigram index and the
    contacts' ``search_name`` index answer each term of three letters or more; the clients found
    are looked up by ``client_id = ANY(ARRAY(...))``, so neither table is read whole."""
    for term in terms[:8]:
        clients = ArraySubquery(Contact.objects.filter(search_name__contains=fold(term)).order_by().values("pk"))
        in_clients = Func(
            F("client_id"),
            clients,
            template="(%(expressions)s))",
            arg_joiner=" = ANY(",
            output_field=BooleanField(),
        )
        qs = qs.filter(Q(name__icontains=term) | Q(in_clients))
    return qs
