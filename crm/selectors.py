"""CRM reads: the client record, timeline, pipeline board, tasks, search. Pure functions of the
database state, always scoped by the caller's book (crm.access)."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.postgres.expressions import ArraySubquery
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import connection
from django.db.models import (
    BooleanField,
    CharField,
    Count,
    F,
    Func,
    IntegerField,
    Max,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Coalesce, Concat
from django.urls import reverse
from django.utils import timezone

from portfolios import access as portfolio_access
from portfolios import selectors as portfolio_selectors
from portfolios.models import Portfolio, Transaction

from . import access
from . import trigrams as trigram_sql
from .models import (
    SEARCH_CONFIG,
    Activity,
    ActivityKind,
    Company,
    Contact,
    Deal,
    DealStageChange,
    DealStatus,
    Lifecycle,
    PipelineStage,
    StageKind,
    Subscriber,
    SubscriberStatus,
)

ZERO = Decimal("0")


# --- tasks ------------------------------------------------------------------------------------------


def tasks_due_for(user, *, due: str = "due", today: dt.date | None = None) -> QuerySet[Activity]:
    """Open tasks owned by ``user``: ``due`` = due today or overdue (the dashboard's list),
    ``today``, ``overdue``, or ``open`` (every open task). Ordered by due date, oldest first."""
    today = today or timezone.localdate()
    qs = Activity.objects.filter(kind=ActivityKind.TASK, completed_at__isnull=True, owner_id=getattr(user, "pk", None))
    if getattr(user, "pk", None) is None:
        return qs.none()
    if due == "today":
        qs = qs.filter(due_date=today)
    elif due == "overdue":
        qs = qs.filter(due_date__lt=today)
    elif due == "due":
        qs = qs.filter(due_date__lte=today)
    elif due != "open":
        raise ValueError(f"unknown due filter {due!r}")
    return qs.select_related("contact", "deal", "company").order_by(F("due_date").asc(nulls_last=True), "pk")


# --- timeline ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineItem:
    at: dt.datetime
    kind: str  # note, call, email, meeting, task, stage, transaction, ...
    title: str
    detail: str = ""
    url: str = ""


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC)


def contact_timeline(*, user, contact: Contact, limit: int = 100) -> list[TimelineItem]:
    """Activities, deal stage changes and portfolio transactions of one contact, newest first.
    Four queries whatever the number of items."""
    items: list[TimelineItem] = []
    for a in (
        access.activities_for(user).filter(contact=contact).select_related("owner").order_by("-occurred_at")[:limit]
    ):
        detail = a.body[:300]
        if a.kind == ActivityKind.TASK:
            state = "done" if a.completed_at else (f"due {a.due_date:%Y-%m-%d}" if a.due_date else "open")
            detail = f"Task {state}. {detail}".strip()
        items.append(TimelineItem(a.occurred_at, a.kind, a.subject, detail))
    changes = (
        DealStageChange.objects.filter(deal__in=access.deals_for(user).filter(contact=contact))
        .select_related("deal", "from_stage", "to_stage", "changed_by")
        .order_by("-changed_at")[:limit]
    )
    for c in changes:
        if c.from_stage is None:
            title = f"Deal “{c.deal.title}” opened in {c.to_stage.name}"
        else:
            title = f"Deal “{c.deal.title}” moved from {c.from_stage.name} to {c.to_stage.name}"
        items.append(TimelineItem(c.changed_at, "stage", title, c.note, reverse("crm:deal-detail", args=[c.deal_id])))
    portfolios = portfolio_access.portfolios_visible_to(user).filter(client=contact)
    txns = (
        Transaction.objects.filter(portfolio__in=portfolios)
        .select_related("portfolio", "instrument")
        .order_by("-trade_date", "-id")[:limit]
    )
    for t in txns:
        what = t.get_kind_display()
        if t.instrument_id:
            what += f" {t.quantity.normalize():f} {t.instrument.symbol}"
        elif t.amount is not None:
            what += f" {t.amount.quantize(Decimal('0.01')):,} {t.currency}"
        items.append(TimelineItem(_day_start(t.trade_date), "transaction", f"{t.portfolio.name}: {what}", t.note))
    items.sort(key=lambda i: i.at, reverse=True)
    return items[:limit]


# --- the client record ------------------------------------------------------------------------------


@dataclass
class PortfolioFigures:
    portfolio: Portfolio
    value: Decimal | None = None
    currency: str = ""
    twr: Decimal | None = None
    mwr: Decimal | None = None
    error: str = ""


@dataclass
class ClientRecord:
    contact: Contact
    portfolios: list[PortfolioFigures]
    aum: dict[str, Decimal]  # per base currency
    last_activity: Activity | None
    open_deals: list[Deal]
    newsletter_status: str  # "confirmed", "pending", "unsubscribed" or "none"
    timeline: list[TimelineItem]
    open_tasks: list[Activity] = field(default_factory=list)


def client_record(*, user, contact: Contact, today: dt.date | None = None) -> ClientRecord:
    """Everything about one client: portfolios with value (AUM), since-inception TWR and MWR
    (XIRR) from ``portfolios.selectors``, last activity, open deals, newsletter status, open tasks,
    and the merged timeline. The contact must come from ``crm.access.contact_for_user``."""
    today = today or timezone.localdate()
    portfolios = list(portfolio_access.portfolios_visible_to(user).filter(client=contact, archived=False))
    # One batch for every portfolio (three queries over the stored valuations), not one per portfolio.
    since = portfolio_selectors.portfolio_since_inception(portfolios, today=today)
    figures = [
        PortfolioFigures(
            p,
            value=since[p.pk].value,
            currency=p.base_currency,
            twr=since[p.pk].twr.value if since[p.pk].twr else None,
            mwr=since[p.pk].mwr.value if since[p.pk].mwr else None,
            error=since[p.pk].error,
        )
        for p in portfolios
    ]
    aum: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for f in figures:
        if f.value is not None:
            aum[f.currency] += f.value
    activities = access.activities_for(user).filter(contact=contact)
    last_activity = activities.exclude(kind=ActivityKind.TASK).order_by("-occurred_at").first()
    open_tasks = list(activities.filter(kind=ActivityKind.TASK, completed_at__isnull=True).order_by("due_date"))
    open_deals = list(
        access.deals_for(user).filter(contact=contact, status=DealStatus.OPEN).select_related("stage", "owner")
    )
    subscriber = (
        Subscriber.objects.filter(
            Q(contact=contact) | Q(email__iexact=contact.email) if contact.email else Q(contact=contact)
        )
        .order_by("-confirmed_at")
        .first()
    )
    return ClientRecord(
        contact=contact,
        portfolios=figures,
        aum=dict(aum),
        last_activity=last_activity,
        open_deals=open_deals,
        newsletter_status=subscriber.status if subscriber else "none",
        timeline=contact_timeline(user=user, contact=contact),
        open_tasks=open_tasks,
    )


# --- pipeline ---------------------------------------------------------------------------------------


@dataclass
class StageColumn:
    stage: PipelineStage
    deals: list[Deal]
    count: int
    value: dict[str, Decimal]  # per currency
    weighted: dict[str, Decimal]


@dataclass
class PipelineBoard:
    columns: list[StageColumn]
    stages: list[PipelineStage]
    won_this_month: dict[str, Decimal]
    lost_this_month: dict[str, Decimal]
    won_count: int
    lost_count: int


def pipeline_board(*, user, today: dt.date | None = None, closed_limit: int = 20) -> PipelineBoard:
    """Deals by stage with value and probability-weighted value per currency (never summed across
    currencies), and won/lost this calendar month. Open stages show every open deal; won/lost
    columns show the latest ``closed_limit``. A fixed number of queries."""
    from .services import pipeline_stages_ensure

    today = today or timezone.localdate()
    stages = pipeline_stages_ensure()
    deals = access.deals_for(user)
    totals: dict[int, dict] = defaultdict(
        lambda: {"count": 0, "value": defaultdict(lambda: ZERO), "weighted": defaultdict(lambda: ZERO)}
    )
    rows = deals.filter(status=DealStatus.OPEN).values("stage_id", "currency", "amount", "probability")
    for r in rows:
        t = totals[r["stage_id"]]
        t["count"] += 1
        t["value"][r["currency"]] += r["amount"]
        t["weighted"][r["currency"]] += (r["amount"] * r["probability"] / Decimal(100)).quantize(Decimal("0.01"))
    month_start = _day_start(today.replace(day=1))
    closed = (
        deals.exclude(status=DealStatus.OPEN)
        .filter(closed_at__gte=month_start)
        .values("status", "currency")
        .annotate(total=Sum("amount"), n=Count("pk"))
    )
    won: dict[str, Decimal] = defaultdict(lambda: ZERO)
    lost: dict[str, Decimal] = defaultdict(lambda: ZERO)
    won_count = lost_count = 0
    for r in closed:
        if r["status"] == DealStatus.WON:
            won[r["currency"]] += r["total"]
            won_count += r["n"]
        else:
            lost[r["currency"]] += r["total"]
            lost_count += r["n"]
    open_deals = list(
        deals.filter(status=DealStatus.OPEN)
        .select_related("contact", "company", "owner")
        .order_by("expected_close", "pk")
    )
    closed_deals = list(
        deals.exclude(status=DealStatus.OPEN)
        .filter(closed_at__gte=month_start)
        .select_related("contact", "company", "owner")
        .order_by("-closed_at")[: closed_limit * 2]
    )
    by_stage: dict[int, list[Deal]] = defaultdict(list)
    for d in open_deals + closed_deals:
        by_stage[d.stage_id].append(d)
    columns = []
    for s in stages:
        t = totals.get(s.pk)
        column_deals = by_stage.get(s.pk, [])
        if s.kind != StageKind.OPEN:
            column_deals = column_deals[:closed_limit]
        columns.append(
            StageColumn(
                stage=s,
                deals=column_deals,
                count=t["count"] if t else len(column_deals),
                value=dict(t["value"]) if t else {},
                weighted=dict(t["weighted"]) if t else {},
            )
        )
    return PipelineBoard(columns, stages, dict(won), dict(lost), won_count, lost_count)


# --- search -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchHit:
    kind: str  # contact, company, deal
    pk: int
    title: str
    subtitle: str
    url: str
    score: float


_WORD = re.compile(r"\w+", re.UNICODE)
# Trigram score (crm_trigram_score: similarity |A∩B| / |A∪B|, or half the share of the query's
# trigrams in the name, crm/trigrams.py) a name needs to count as a typo of the query. pg_trgm's
# default is 0.3; two swapped letters in a ten-letter name ("Jonh Smiht" for "John Smith") score
# 0.29, so 0.25 (decision 0201).
SIMILARITY_THRESHOLD = 0.25


def _tsquery_text(q: str) -> str | None:
    """Every word of ``q`` as a prefix, all required: "ann lee@apo" -> ann:* & lee:* & apo:*.
    Only word characters reach the query, so no input can break the tsquery syntax."""
    words = _WORD.findall(q.lower().replace("_", " "))[:8]
    if not words:
        return None
    # Prefix matching per word: "ali smi" finds "Alice Smith" while typing.
    return " & ".join(f"{w}:*" for w in words)


def _tsquery(q: str) -> SearchQuery | None:
    text = _tsquery_text(q)
    return None if text is None else SearchQuery(text, search_type="raw", config=SEARCH_CONFIG)


# Ranking looks at no more than this many matches per kind of record. A one- or two-letter prefix
# can match a fifth of a large firm; ranking all of it cost most of the search time (decision 0201)
# while the best matches of such a short query are a coin toss anyway; typing one more letter
# narrows the matches below the cap, where the ranking is exact.
RANK_CANDIDATES = 1000
# The fuzzy (typo) step runs when the text search found fewer hits than this: a misspelt name
# finds nothing by text. Run after every specific query, it compared thousands of similar names.
FUZZY_BELOW = 3


HIT_COLUMNS = ("hit_kind", "hit_id", "hit_title", "hit_a", "hit_b", "hit_c", "score")


def _hit_columns(kind: str) -> dict:
    """The same columns for every kind of record, so that one UNION ALL returns all hits."""
    text = CharField()
    if kind == "contact":
        cols = {
            "hit_title": Concat("first_name", Value(" "), "last_name", output_field=text),
            "hit_a": Cast("email", text),
            # the company's id: its name is looked up for the few hits afterwards, not joined for
            # every candidate
            "hit_b": Coalesce(Cast("company_id", text), Value(""), output_field=text),
            "hit_c": Cast("lifecycle", text),
        }
    elif kind == "company":
        cols = {"hit_title": Cast("name", text), "hit_a": Cast("domain", text), "hit_b": Cast("industry", text)}
        cols["hit_c"] = Value("", output_field=text)
    else:
        cols = {
            "hit_title": Cast("title", text),
            "hit_a": Cast("stage__name", text),
            "hit_b": Cast("amount", text),
            "hit_c": Cast("currency", text),
        }
    return {"hit_kind": Value(kind, output_field=text), "hit_id": F("pk"), **cols}


def _pk_in_array(candidates: QuerySet) -> Func:
    """``id = ANY(ARRAY(candidates))``: PostgreSQL builds the id list first, then fetches the rows
    by primary key (``IN (subquery)`` misjudged the count and scanned the whole table)."""
    return Func(
        F("pk"),
        ArraySubquery(candidates),
        template="(%(expressions)s))",
        arg_joiner=" = ANY(",
        output_field=BooleanField(),
    )


def _ranked(qs: QuerySet, kind: str, query: SearchQuery, limit: int) -> QuerySet:
    """Rows whose stored ``search_document`` matches the full-text query (GIN index), best first.
    Ranking reads the stored vectors (it does not parse text again) of at most RANK_CANDIDATES
    matches. Scores are offset by 1 so that every text match ranks above every fuzzy match."""
    candidates = qs.filter(search_document=query).order_by().values("pk")[:RANK_CANDIDATES]
    in_candidates = Func(
        F("pk"),
        ArraySubquery(candidates),
        template="(%(expressions)s))",
        arg_joiner=" = ANY(",
        output_field=BooleanField(),
    )
    return (
        qs.model.objects.filter(in_candidates)
        .annotate(**_hit_columns(kind), score=SearchRank(F("search_document"), query) + 1)
        .order_by("-score", "hit_id")
        .values_list(*HIT_COLUMNS)[:limit]
    )


# The typo step works by words (decision 0201): a query word's similar words are looked up in the
# firm's vocabulary (crm_nameword: each distinct word of the names once, a fraction of the rows),
# then only the rows holding such a word are scored on the whole name. Scoring every row sharing a
# trigram with the query cost 10 µs a row, and a misspelt common name shares trigrams with tens of
# thousands of rows. A word is a candidate from this score against a query word (same formula,
# below SIMILARITY_THRESHOLD so that a name whose similar trigrams are spread over two words still
# gets in; the whole name must reach SIMILARITY_THRESHOLD):
WORD_THRESHOLD = 0.2
# the best words per query word,
SIMILAR_WORDS = 8
# the rows read per similar word (a misspelt "Katharina" has thousands of equally similar names;
# one more word of the name narrows them, through ROWS_ALL_WORDS),
ROWS_PER_WORD = 40
# and the rows holding a similar word for every word of a query of several words ("Jonh Smiht":
# Johns who are Smiths), read first, so the likely names are never crowded out by ROWS_PER_WORD.
ROWS_ALL_WORDS = 200


def _shared_sql(column: str, q_trigrams: list[str]) -> tuple[str, list]:
    """How many of ``q_trigrams`` the array ``column`` holds: one comparison per query trigram, the
    trigrams as parameters (calling the SQL score function per row cost 4 times more)."""
    return " + ".join(f"(%s = ANY({column}))::int" for _t in q_trigrams), list(q_trigrams)


def _score_sql(n: int) -> str:
    """crm_trigram_score over the columns ``shared`` and ``size``, for a query of ``n`` trigrams:
    greatest(similarity |A∩Q| / |A∪Q|, share of Q in A / 2)."""
    return f"greatest(shared::real / (size + {int(n)} - shared), shared::real / {2 * int(n)})"


def _similar_words(q: str) -> tuple[str, list, int]:
    """The CTE ``similar_words(j, word, score)``: for each word j of ``q``, the SIMILAR_WORDS words
    of the vocabulary most similar to it (score >= WORD_THRESHOLD), found through the GIN index on
    the words' trigrams (probe as in crm/trigrams.py). Returns (sql, params, number of words)."""
    frequencies = trigram_sql.frequencies(connection, "crm_nameword")
    parts, params = [], []
    q_words = trigram_sql.words(q)[:8]
    for j, word in enumerate(q_words):
        q_trigrams = trigram_sql.trigrams(word)
        probe = trigram_sql.probe(q_trigrams, WORD_THRESHOLD, frequencies)
        shared, shared_params = _shared_sql('"crm_nameword"."name_trigrams"', q_trigrams)
        parts.append(
            f"(SELECT {j} AS j, word, score FROM (SELECT word, {_score_sql(len(q_trigrams))} AS score"
            f" FROM (SELECT word, {shared} AS shared, cardinality(name_trigrams) AS size FROM crm_nameword"
            f" WHERE name_trigrams && %s::text[] OFFSET 0) AS counted) AS scored"
            f" WHERE score >= %s ORDER BY score DESC, word LIMIT {SIMILAR_WORDS})"
        )
        params += [*shared_params, probe, WORD_THRESHOLD]
    return "similar_words AS MATERIALIZED (" + " UNION ALL ".join(parts) + ")", params, len(q_words)


def _similar(qs: QuerySet, kind: str, q_trigrams: list, limit: int, exclude, n_words: int) -> tuple[str, list]:
    """Typo tolerance: rows of ``qs`` whose name is similar to ``q``, most similar first, as (sql,
    params) of one part of a statement that has the CTE ``similar_words`` (``_similar_words``).
    Candidates: the rows holding a similar word of every query word (up to ROWS_ALL_WORDS), and up
    to ROWS_PER_WORD rows per similar word (GIN index on ``name_words``, inside the book). Each is
    scored on its whole name (``name_trigrams`` against all the query's trigrams), once, in a
    subquery kept apart by ``OFFSET 0``; the threshold is applied by the caller to the few rows
    returned. ``q_trigrams`` (the query's trigrams) and ``exclude`` (ids already found by text, one
    array) are parameters: placeholders when the statement is compiled for the cache."""
    table = qs.model._meta.db_table
    words_column = f'"{table}"."name_words"'
    scoped = qs.filter(
        RawSQL(f'NOT ("{table}"."id" = ANY(%s::bigint[]))', [exclude], output_field=BooleanField())  # noqa: S611
    ).order_by()
    per_word = scoped.filter(
        RawSQL(f"{words_column} @> ARRAY[sw.word]", [], output_field=BooleanField())  # noqa: S611
    ).values_list("pk", flat=True)
    per_word_sql, per_word_params = per_word.query.sql_with_params()
    candidates = (
        f"SELECT c.id FROM (SELECT DISTINCT word FROM similar_words) AS sw"
        f" CROSS JOIN LATERAL ({per_word_sql} LIMIT {ROWS_PER_WORD}) AS c(id)"
    )
    params = list(per_word_params)
    if n_words > 1:
        every_word = scoped
        for j in range(n_words):
            every_word = every_word.filter(
                RawSQL(  # noqa: S611
                    f"{words_column} && ARRAY(SELECT word FROM similar_words WHERE j = %s)",
                    [j],
                    output_field=BooleanField(),
                )
            )
        every_sql, every_params = every_word.values_list("pk", flat=True).query.sql_with_params()
        candidates = f"({every_sql} LIMIT {ROWS_ALL_WORDS}) UNION ({candidates})"
        params = list(every_params) + params
    shared, shared_params = _shared_sql(f'"{table}"."name_trigrams"', q_trigrams)
    rows = (
        qs.model.objects.filter(
            RawSQL(f'"{table}"."id" = ANY(ARRAY({candidates}))', params, output_field=BooleanField())  # noqa: S611
        )
        .annotate(
            **_hit_columns(kind),
            shared=RawSQL(shared, shared_params, output_field=IntegerField()),  # noqa: S611
            size=Func(F("name_trigrams"), function="cardinality", output_field=IntegerField()),
        )
        .order_by()
        .values_list(*HIT_COLUMNS[:-1], "shared", "size")
    )
    sql, params = rows.query.sql_with_params()
    columns = ", ".join(HIT_COLUMNS[:-1])
    scored = (
        f"SELECT {columns}, {_score_sql(len(q_trigrams))} AS score "
        f"FROM ({sql} OFFSET 0) AS candidates ORDER BY score DESC, hit_id LIMIT {int(limit)}"
    )
    return scored, list(params)


def _union_sql(
    parts_in: list[QuerySet | tuple[str, list]], with_sql: tuple[str, list] | None = None
) -> tuple[str, list]:
    """Several ordered, limited ``values_list`` querysets (or (sql, params) of such queries) as one
    ``UNION ALL`` statement (Django's ``union()`` would move the first part's ORDER BY/LIMIT to the
    whole), after ``WITH`` ``with_sql`` (a CTE the parts share) if given. Returns (sql, params)."""
    parts, params = [], list(with_sql[1]) if with_sql else []
    for part in parts_in:
        sql, part_params = part if isinstance(part, tuple) else part.query.sql_with_params()
        parts.append(f"({sql})")
        params.extend(part_params)
    prefix = f"WITH {with_sql[0]} " if with_sql else ""
    return prefix + " UNION ALL ".join(parts), params


def _fuzzy_parts(kinds: dict[str, QuerySet], q_trigrams: list, limit: int, excludes: dict, n_words: int):
    return _union_sql([_similar(qs, kind, q_trigrams, limit, excludes[kind], n_words) for kind, qs in kinds.items()])


def _fuzzy_sql(kinds: dict[str, QuerySet], q: str, limit: int, seen: dict[str, list]) -> tuple[str, list]:
    """The typo step over the three kinds as one statement: the similar words of the vocabulary
    (CTE), then each kind's candidates scored (``_similar``). Returns (sql, params)."""
    words_sql, words_params, n_words = _similar_words(q)
    excludes = {kind: seen.get(kind, []) for kind in kinds}
    sql, params = _fuzzy_parts(kinds, trigram_sql.trigrams(q), limit, excludes, n_words)
    return f"WITH {words_sql} {sql}", words_params + params


# Compiled statements, by shape. Django compiles the search's querysets (book filters, EXISTS,
# annotations) in 6 to 20 ms of CPU, as much as PostgreSQL runs them; the statement only changes
# with the firm, the caller's book (crm.access reads the role's firm-wideness and the user's pk:
# ``_scope_key``), the limit and the number of query trigrams and words. Compiled once with
# placeholder parameters, reused with the query's values.
_SQL_CACHE: dict[tuple, tuple[str, tuple]] = {}
_SQL_CACHE_SIZE = 512


def _placeholder(name: str) -> str:
    return f"\u00a7codex-search-param:{name}\u00a7"


def _scope_key(user) -> tuple:
    if access.sees_whole_firm(user):
        return ("firm",)
    return ("book", getattr(user, "pk", None))


def _kinds(user) -> dict[str, QuerySet]:
    return {
        "contact": access.contacts_for(user),
        "company": access.companies_for(user),
        "deal": access.deals_for(user),
    }


def _cached_sql(key: tuple, build, values: dict) -> tuple[str, list]:
    """(sql, params) compiled by ``build()`` once per ``key``, with each placeholder parameter
    replaced by its value in ``values``."""
    key = (connection.schema_name, *key)
    entry = _SQL_CACHE.get(key)
    if entry is None:
        sql, params = build()
        if len(_SQL_CACHE) >= _SQL_CACHE_SIZE:
            _SQL_CACHE.clear()
        entry = _SQL_CACHE[key] = (sql, tuple(params))
    sql, params = entry
    return sql, [values.get(p, p) if isinstance(p, str) else p for p in params]


def _text_statement(user, tsquery_text: str, limit: int) -> tuple[str, list]:
    q_param = _placeholder("q")

    def build():
        query = SearchQuery(q_param, search_type="raw", config=SEARCH_CONFIG)
        return _union_sql([_ranked(qs, kind, query, limit) for kind, qs in _kinds(user).items()])

    return _cached_sql(("text", _scope_key(user), limit), build, {q_param: tsquery_text})


def _fuzzy_statement(user, q: str, limit: int, seen: dict[str, list]) -> tuple[str, list]:
    words_sql, words_params, n_words = _similar_words(q)
    q_trigrams = trigram_sql.trigrams(q)
    trigram_params = [_placeholder(f"t{i}") for i in range(len(q_trigrams))]
    exclude_params = {kind: _placeholder(f"exclude-{kind}") for kind in ("contact", "company", "deal")}
    values = dict(zip(trigram_params, q_trigrams, strict=True))
    values.update({param: seen.get(kind, []) for kind, param in exclude_params.items()})
    sql, params = _cached_sql(
        ("fuzzy", _scope_key(user), limit, n_words, len(q_trigrams)),
        lambda: _fuzzy_parts(_kinds(user), trigram_params, limit, exclude_params, n_words),
        values,
    )
    return f"WITH {words_sql} {sql}", words_params + params


def crm_search(user, q: str, limit: int = 20) -> list[SearchHit]:
    """One search over contacts, companies and deals in ``user``'s book: PostgreSQL full-text search
    (every word as a prefix), then, when the text search found too few, trigram similarity on names
    for typos (by words, then whole names: ``_similar_words``, ``_similar``; no extension needed).
    Text matches rank above fuzzy ones. One query (UNION ALL of the three kinds), one more when the
    fuzzy step runs."""
    q = (q or "").strip()[:100]
    tsquery_text = _tsquery_text(q)
    if tsquery_text is None or len(q) < 2:
        return []
    with connection.cursor() as cursor:
        cursor.execute(*_text_statement(user, tsquery_text, limit))
        rows = cursor.fetchall()
    if len(rows) < FUZZY_BELOW and trigram_sql.trigrams(q):
        seen = defaultdict(list)
        for row in rows:
            seen[row[0]].append(row[1])
        with connection.cursor() as cursor:
            cursor.execute(*_fuzzy_statement(user, q, limit, seen))
            fuzzy = cursor.fetchall()
        rows += [row for row in fuzzy if row[-1] >= SIMILARITY_THRESHOLD]
    lifecycles = dict(Lifecycle.choices)
    company_ids = {int(r[4]) for r in rows if r[0] == "contact" and r[4]}
    company_names = dict(Company.objects.filter(pk__in=company_ids).values_list("pk", "name")) if company_ids else {}
    urls = {"contact": "crm:contact-detail", "company": "crm:company-detail", "deal": "crm:deal-detail"}
    hits: list[SearchHit] = []
    for kind, pk, title, a, b, c, score in rows:
        if kind == "contact":
            company = company_names.get(int(b), "") if b else ""
            subtitle = " · ".join(x for x in (a, company, lifecycles.get(c, c)) if x)
        elif kind == "company":
            subtitle = a or b
        else:
            subtitle = f"{a} · {Decimal(b):,.2f} {c}"
        hits.append(SearchHit(kind, pk, title.strip(), subtitle, reverse(urls[kind], args=[pk]), float(score)))
    hits.sort(key=lambda h: -h.score)
    return hits[:limit]


# --- lists ------------------------------------------------------------------------------------------


def contact_list(*, user, q: str = "", lifecycle: str = "", owner: str = "", tag: str = "") -> QuerySet[Contact]:
    """The contacts list of the web UI, filtered; one query plus the page's."""
    qs = access.contacts_for(user).select_related("owner", "company")
    if q:
        qs = qs.filter(
            Q(first_name__icontains=q)
            | Q(last_name__icontains=q)
            | Q(email__icontains=q)
            | Q(company__name__icontains=q)
        )
    if lifecycle:
        qs = qs.filter(lifecycle=lifecycle)
    if owner == "me":
        qs = qs.filter(owner_id=getattr(user, "pk", None))
    elif owner.isdigit():
        qs = qs.filter(owner_id=int(owner))
    if tag:
        qs = qs.filter(tags__contains=[tag.lower()])
    return qs.annotate(last_activity_at=Max("activities__occurred_at")).order_by("last_name", "first_name", "pk")


def company_list(*, user, q: str = "") -> QuerySet[Company]:
    qs = access.companies_for(user).select_related("owner").annotate(contact_count=Count("contacts", distinct=True))
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(domain__icontains=q) | Q(industry__icontains=q))
    return qs.order_by("name", "pk")


def deal_list(*, user, q: str = "", status: str = "", stage: str = "") -> QuerySet[Deal]:
    qs = access.deals_for(user).select_related("stage", "contact", "company", "owner")
    if q:
        qs = qs.filter(Q(title__icontains=q) | Q(contact__last_name__icontains=q) | Q(company__name__icontains=q))
    if status:
        qs = qs.filter(status=status)
    if stage.isdigit():
        qs = qs.filter(stage_id=int(stage))
    return qs


def newsletter_overview() -> dict[str, int]:
    counts = dict(Subscriber.objects.values_list("status").annotate(n=Count("pk")))
    return {s.value: counts.get(s.value, 0) for s in SubscriberStatus}


def campaign_report(*, campaign) -> dict:
    counts = dict(campaign.deliveries.values_list("status").annotate(n=Count("pk")))
    return {"total": sum(counts.values()), **counts}


def contact_with_relations(qs: QuerySet[Contact]) -> QuerySet[Contact]:
    return qs.select_related("owner", "company").prefetch_related(
        Prefetch("shared_with"),
    )
