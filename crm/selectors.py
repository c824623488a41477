"""CRM reads: the client record, timeline, pipeline board, tasks, search. Pure functions of the
database state, always scoped by the caller's book (crm.access)."""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.postgres.expressions import ArraySubquery
from django.contrib.postgres.search import SearchQuery, SearchRank, TrigramSimilarity, TrigramWordSimilarity
from django.db import connection
from django.db.models import (
    BooleanField,
    CharField,
    Count,
    F,
    FloatField,
    Func,
    Max,
    Min,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.expressions import Expression, RawSQL
from django.db.models.functions import Cast, Coalesce, Concat, Greatest
from django.utils import timezone

from codex.db import current_schema
from tenants.links import firm_path

from . import access
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
    fold,
)
from .record_sources import (
    TIMELINE_CATEGORIES,
    PortfolioFigures,
    TimelineItem,
    figures_for,
    search_hits_for,
    timeline_items_for,
)
from .services import pipeline_stages_ensure

ZERO = Decimal("0")


# --- tasks ------------------------------------------------------------------------------------------


def tasks_due_for(user, *, due: str = "due", today: dt.date | None = None) -> QuerySet[Activity]:
    """Tasks owned by ``user``: open ones due today or overdue (``due``, the dashboard's list),
    ``today``, ``overdue``, ``later`` (due after today or undated), ``open`` (every open task), or
    ``done`` (completed ones). Ordered by due date, oldest first."""
    today = today or timezone.localdate()
    qs = Activity.objects.filter(kind=ActivityKind.TASK, owner_id=getattr(user, "pk", None))
    if getattr(user, "pk", None) is None:
        return qs.none()
    qs = qs.filter(completed_at__isnull=due != "done")
    if due == "today":
        qs = qs.filter(due_date=today)
    elif due == "overdue":
        qs = qs.filter(due_date__lt=today)
    elif due == "due":
        qs = qs.filter(due_date__lte=today)
    elif due == "later":
        qs = qs.filter(Q(due_date__gt=today) | Q(due_date__isnull=True))
    elif due not in ("open", "done"):
        raise ValueError(f"unknown due filter {due!r}")
    return qs.select_related("contact", "deal", "company").order_by(F("due_date").asc(nulls_last=True), "pk")


def activities_latest_for(user, *, limit: int) -> list[Activity]:
    """The ``limit`` latest activities of the caller's book that happened (open tasks left out),
    newest first, with their contact and owner. One query for a firm-wide role; two for an
    advisor: the ids as a union of the book's parts (``access.activity_book_parts``), each cut
    to ``limit`` along the recency index, then those rows. Costs what ``limit`` costs, whatever
    the size of the book."""
    order = ("-occurred_at", "-id")
    done = ~Q(kind=ActivityKind.TASK, completed_at__isnull=True)
    parts = [part.filter(done) for part in access.activity_book_parts(user)]
    if not parts:
        return []
    if len(parts) > 1:
        cut = [p.order_by(*order).values_list("id", "occurred_at")[:limit] for p in parts]
        ids = [pk for pk, _at in cut[0].union(*cut[1:]).order_by(*order)[:limit]]
        parts = [Activity.objects.filter(pk__in=ids)]
    return list(parts[0].select_related("contact", "owner").order_by(*order)[:limit])


# --- timeline ---------------------------------------------------------------------------------------


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC)


TIMELINE_PAGE_SIZE = 25


@dataclass
class TimelinePage:
    """One page of a contact's timeline, newest first, under one filter chip (``category``, ""
    for all). ``number`` counts from 1."""

    items: list[TimelineItem]
    number: int
    has_next: bool
    category: str = ""

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def contact_timeline(
    *, user, contact: Contact, limit: int = 100, offset: int = 0, category: str = ""
) -> list[TimelineItem]:
    """Activities, deal stage changes and what registered sources add (portfolios: the client's
    transactions, the vault: documents, fees: invoices; ``record_sources``) of one contact, newest
    first: the items ``offset`` to ``offset + limit``, of one ``category`` (``TIMELINE_CATEGORIES``)
    or all. A fixed number of queries whatever the number of items or the page (each source reads
    its newest ``offset + limit`` rows); a category asks only its own sources."""
    items: list[TimelineItem] = []
    wanted = offset + limit
    if category in ("", "activities"):
        for a in (
            access.activities_for(user)
            .filter(contact=contact)
            .select_related("owner")
            .order_by("-occurred_at", "-id")[:wanted]
        ):
            detail = a.body[:300]
            if a.kind == ActivityKind.TASK:
                state = "done" if a.completed_at else (f"due {a.due_date:%Y-%m-%d}" if a.due_date else "open")
                detail = f"Task {state}. {detail}".strip()
            items.append(TimelineItem(a.occurred_at, a.kind, a.subject, detail, category="activities"))
        changes = (
            DealStageChange.objects.filter(deal__in=access.deals_for(user).filter(contact=contact))
            .select_related("deal", "from_stage", "to_stage", "changed_by")
            .order_by("-changed_at", "-id")[:wanted]
        )
        for c in changes:
            if c.from_stage is None:
                title = f"Deal “{c.deal.title}” opened in {c.to_stage.name}"
            else:
                title = f"Deal “{c.deal.title}” moved from {c.from_stage.name} to {c.to_stage.name}"
            items.append(
                TimelineItem(
                    c.changed_at,
                    "stage",
                    title,
                    c.note,
                    firm_path("crm:deal-detail", args=[c.deal_id]),
                    category="activities",
                )
            )
    items.extend(
        timeline_items_for(user=user, contact=contact, limit=wanted, categories=[category] if category else None)
    )
    items.sort(key=lambda i: i.at, reverse=True)
    return items[offset:wanted]


def contact_timeline_page(
    *, user, contact: Contact, page: int = 1, category: str = "", per_page: int = TIMELINE_PAGE_SIZE
) -> TimelinePage:
    """``contact_timeline`` as pages of ``per_page`` (one more item read tells whether a next page
    exists). An unknown category shows all; a page below 1 shows the first."""
    if category not in TIMELINE_CATEGORIES:
        category = ""
    page = max(1, page)
    rows = contact_timeline(
        user=user, contact=contact, limit=per_page + 1, offset=(page - 1) * per_page, category=category
    )
    return TimelinePage(items=rows[:per_page], number=page, has_next=len(rows) > per_page, category=category)


# --- the client record ------------------------------------------------------------------------------


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
    timeline_page: TimelinePage | None = None
    # The money on top, for the currency holding most of the client's assets (``currency``):
    # value-weighted YTD and since-inception TWR, fees this year, the value over the last year.
    currency: str = ""
    ytd: Decimal | None = None
    since_inception: Decimal | None = None
    fees_ytd: Decimal | None = None
    history: list[tuple[dt.date, Decimal]] = field(default_factory=list)
    next_review: dt.date | None = None


def _weighted(figures: list[PortfolioFigures], attr: str) -> Decimal | None:
    """The value-weighted mean of a return over the portfolios that have both (None if none)."""
    pairs = [(f.value, getattr(f, attr)) for f in figures if f.value and getattr(f, attr) is not None]
    total = sum((v for v, _r in pairs), ZERO)
    return sum((v * r for v, r in pairs), ZERO) / total if total else None


def client_record(
    *,
    user,
    contact: Contact,
    today: dt.date | None = None,
    timeline_page: int = 1,
    timeline_category: str = "",
    timeline_per_page: int = TIMELINE_PAGE_SIZE,
) -> ClientRecord:
    """Everything about one client: portfolios with value (AUM), YTD and since-inception TWR, MWR
    (XIRR), fees this year and a year of values from the registered sources (portfolios,
    ``record_sources``), the client's totals in its main currency, last activity, open deals,
    newsletter status, open tasks, the next review, and one page of the merged timeline. The
    contact must come from ``crm.access.contact_for_user``."""
    today = today or timezone.localdate()
    figures = figures_for(user=user, contact=contact, today=today)
    aum: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for f in figures:
        if f.value is not None:
            aum[f.currency] += f.value
    currency = max(aum, key=lambda c: aum[c]) if aum else ""
    main = [f for f in figures if f.currency == currency]
    history: dict[dt.date, Decimal] = defaultdict(lambda: ZERO)
    for f in main:
        for day, value in f.history:
            history[day] += value
    fees = [f.fees_ytd for f in main if f.fees_ytd is not None]
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
    page = contact_timeline_page(
        user=user, contact=contact, page=timeline_page, category=timeline_category, per_page=timeline_per_page
    )
    return ClientRecord(
        contact=contact,
        portfolios=figures,
        aum=dict(aum),
        last_activity=last_activity,
        open_deals=open_deals,
        newsletter_status=subscriber.status if subscriber else "none",
        timeline=page.items,
        open_tasks=open_tasks,
        timeline_page=page,
        currency=currency,
        ytd=_weighted(main, "ytd"),
        since_inception=_weighted(main, "twr"),
        fees_ytd=sum(fees, ZERO) if fees else None,
        history=sorted(history.items()),
        next_review=contact.kyc_review_due_on,
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
    for c in closed:
        if c["status"] == DealStatus.WON:
            won[c["currency"]] += c["total"]
            won_count += c["n"]
        else:
            lost[c["currency"]] += c["total"]
            lost_count += c["n"]
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
        stage_totals = totals.get(s.pk)
        column_deals = by_stage.get(s.pk, [])
        if s.kind != StageKind.OPEN:
            column_deals = column_deals[:closed_limit]
        columns.append(
            StageColumn(
                stage=s,
                deals=column_deals,
                count=stage_totals["count"] if stage_totals else len(column_deals),
                value=dict(stage_totals["value"]) if stage_totals else {},
                weighted=dict(stage_totals["weighted"]) if stage_totals else {},
            )
        )
    return PipelineBoard(columns, stages, dict(won), dict(lost), won_count, lost_count)


# --- search -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchHit:
    kind: str  # contact, company, deal; from the registered sources: portfolio, instrument
    pk: int
    title: str
    subtitle: str
    url: str
    score: float


_WORD = re.compile(r"\w+", re.UNICODE)
# pg_trgm thresholds of the typo step (decision 0201). A name is a typo match when the whole folded
# name is similar to the folded query (similarity >= SIMILARITY_THRESHOLD: two swapped letters in a
# ten-letter name, "Jonh Smiht" for "John Smith", score 5/17 = 0.29, below pg_trgm's default 0.3)
# or when the query is similar to a part of it (word similarity >= WORD_SIMILARITY_THRESHOLD: one
# swapped pair in a five- or six-letter word, "Webre" for "Weber", keeps 3 of its 6 trigrams, 0.5;
# pg_trgm's default 0.6 needs nine letters). WORD_SIMILARITY_THRESHOLD is also the session's
# ``pg_trgm.word_similarity_threshold``, set on every connection by crm.apps, so that the GIN
# ``gin_trgm_ops`` indexes answer ``word <% search_name`` for each query word.
SIMILARITY_THRESHOLD = 0.25
WORD_SIMILARITY_THRESHOLD = 0.3
# At most this many words of a query take part in the typo step.
FUZZY_WORDS = 4


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
    cols: dict[str, Expression]
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


# The typo step (decision 0201) uses pg_trgm on the folded names (``search_name``, GIN
# ``gin_trgm_ops`` index) in two steps, so that its cost does not grow with the firm:
# 1. candidates, by the index: rows where every query word is word-similar to the name
#    (``word <% search_name``, all words at once in one index scan), at most FUZZY_CANDIDATES; for a
#    query of several words, also up to FUZZY_PER_WORD rows for each word alone (a badly misspelt
#    first name must not hide the last name). The index answers these by counting shared
#    trigrams; a condition on the whole query (``q % search_name`` at 0.25) made it return every
#    row sharing two trigrams with the query (20,159 of 100,000 contacts for "Schmdit", all but 4
#    rejected after reading the row): that was most of the search's time.
# 2. those few hundred rows are scored on the whole name: kept when the similarity is at least
#    SIMILARITY_THRESHOLD or the word similarity at least WORD_SIMILARITY_THRESHOLD, ranked by the
#    larger of the similarity and half the word similarity (always below 1, so below every text
#    match).
# A common misspelt word ("Webre" in a firm with 3,000 Webers, all equally similar) ranks an
# arbitrary FUZZY_CANDIDATES of them; a more specific query (the first name too) narrows step 1.
FUZZY_CANDIDATES = 100
FUZZY_PER_WORD = 30


def _any_of_arrays(candidates: list[QuerySet]) -> Func:
    """``id = ANY(ARRAY(c1) || ARRAY(c2) ...)``: each candidate query runs once with its own limit,
    then the rows are fetched by primary key."""
    return Func(
        F("pk"),
        Func(*(ArraySubquery(c) for c in candidates), template="(%(expressions)s)", arg_joiner=" || "),
        template="(%(expressions)s))",
        arg_joiner=" = ANY(",
        output_field=BooleanField(),
    )


def _similar(qs: QuerySet, kind: str, q: str, words: list[str], limit: int, exclude, *, firm_wide: bool) -> QuerySet:
    """Typo tolerance: rows of ``qs`` whose folded name is similar to the folded query ``q`` (its
    words: ``words``), most similar first, without those in ``exclude`` (ids already found by text,
    one array). ``q``, ``words`` and ``exclude`` are parameters: placeholders when the statement is
    compiled for the cache."""
    table = qs.model._meta.db_table
    not_found_by_text = RawSQL(  # noqa: S611
        f'NOT ("{table}"."id" = ANY(%s::bigint[]))', [exclude], output_field=BooleanField()
    )

    def candidates(condition: Q, cap: int) -> QuerySet:
        if firm_wide:
            return qs.filter(condition).order_by().values("pk")[:cap]
        # An advisor's book: the firm's matches by the trigram index first, then the book's filter
        # on those rows only. With a LIMIT beside the book's filter (or on the firm's matches),
        # PostgreSQL, which estimates a fixed fifth of the table for ``%>``, expects the rows early
        # and reads the table from the start: all 100,000 contacts (5,301 pages, 220-280 ms) when
        # the book has none. Unlimited, the index answers: the bitmap of the matches, then only
        # their pages (a word shared by 20,000 contacts: 1,663 pages, 62 ms at load 2-3; most
        # words far fewer).
        matches = qs.model._default_manager.filter(condition).order_by().values("pk")
        return qs.filter(_in_array("pk", matches)).order_by().values("pk")[:cap]

    every_word = Q()
    for word in words:
        every_word &= Q(search_name__trigram_word_similar=word)
    tiers = [candidates(every_word, FUZZY_CANDIDATES)]
    if len(words) > 1 and firm_wide:
        # Not for an advisor's book: with the book's filter, a word that is common in the firm
        # but absent from the book made PostgreSQL read the whole table looking for FUZZY_PER_WORD
        # rows (a sequential scan, measured 1.1 s under load), since it expects them early.
        tiers += [candidates(Q(search_name__trigram_word_similar=word), FUZZY_PER_WORD) for word in words]
    return (
        qs.model.objects.filter(_any_of_arrays(tiers))
        .filter(not_found_by_text)
        .annotate(
            **_hit_columns(kind),
            # django-stubs types the string argument as a field name only; a Value is the
            # documented way to pass the query text as a parameter.
            similarity=TrigramSimilarity("search_name", Value(q)),  # type: ignore[arg-type]
            word_similarity=TrigramWordSimilarity(Value(q), "search_name"),  # type: ignore[arg-type]
        )
        .filter(Q(similarity__gte=SIMILARITY_THRESHOLD) | Q(word_similarity__gte=WORD_SIMILARITY_THRESHOLD))
        .annotate(score=Greatest(F("similarity"), F("word_similarity") / 2, output_field=FloatField()))
        .order_by("-score", "hit_id")
        .values_list(*HIT_COLUMNS)[:limit]
    )


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


def _fuzzy_parts(kinds: dict[str, QuerySet], q: str, words: list[str], limit: int, excludes: dict, *, firm_wide: bool):
    return _union_sql(
        [_similar(qs, kind, q, words, limit, excludes[kind], firm_wide=firm_wide) for kind, qs in kinds.items()]
    )


# Compiled statements, by shape. Django compiles the search's querysets (book filters, EXISTS,
# annotations) in 6 to 20 ms of CPU, as much as PostgreSQL runs them; the statement only changes
# with the firm, the caller's book (crm.access reads the role's firm-wideness and the user's pk:
# ``_scope_key``) and the limit. Compiled once with
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
    key = (current_schema(), *key)
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


def _fuzzy_statement(user, q: str, limit: int, seen: dict[str, list]) -> tuple[str, list] | None:
    """The typo step's statement, or None when the query has no word to compare."""
    folded_q = fold(q)
    words = _WORD.findall(folded_q.replace("_", " "))[:FUZZY_WORDS]
    if not words:
        return None
    q_param = _placeholder("q")
    word_params = [_placeholder(f"word-{n}") for n in range(len(words))]
    exclude_params = {kind: _placeholder(f"exclude-{kind}") for kind in ("contact", "company", "deal")}
    values = {
        q_param: folded_q,
        **dict(zip(word_params, words, strict=True)),
        **{param: seen.get(kind, []) for kind, param in exclude_params.items()},
    }
    return _cached_sql(
        ("fuzzy", _scope_key(user), limit, len(words)),
        lambda: _fuzzy_parts(
            _kinds(user), q_param, word_params, limit, exclude_params, firm_wide=access.sees_whole_firm(user)
        ),
        values,
    )


def crm_search(user, q: str, limit: int = 20) -> list[SearchHit]:
    """One search over contacts, companies and deals in ``user``'s book: PostgreSQL full-text search
    (every word as a prefix), then, when the text search found too few, pg_trgm similarity of names
    for typos (``_similar``).
    Text matches rank above fuzzy ones. One query (UNION ALL of the three kinds), one more when the
    fuzzy step runs."""
    q = (q or "").strip()[:100]
    tsquery_text = _tsquery_text(q)
    if tsquery_text is None or len(q) < 2:
        return []
    with connection.cursor() as cursor:
        cursor.execute(*_text_statement(user, tsquery_text, limit))
        rows = cursor.fetchall()
    if len(rows) < FUZZY_BELOW:
        seen = defaultdict(list)
        for row in rows:
            seen[row[0]].append(row[1])
        statement = _fuzzy_statement(user, q, limit, seen)
        if statement is not None:
            with connection.cursor() as cursor:
                cursor.execute(*statement)
                rows += cursor.fetchall()
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
        hits.append(SearchHit(kind, pk, title.strip(), subtitle, firm_path(urls[kind], args=[pk]), float(score)))
    hits.sort(key=lambda h: -h.score)
    return hits[:limit]


def global_search(user, q: str, limit: int = 20) -> list[SearchHit]:
    """The search page's hits: an instrument whose ticker is exactly ``q`` first, then the CRM's
    (``crm_search``), then each registered source's (``record_sources.register_search_source``:
    portfolios, instruments), at most ``limit`` of each kind, all scoped to ``user``'s book
    (decision 1260)."""
    q = (q or "").strip()[:100]
    if len(q) < 2:
        return []
    others = search_hits_for(user=user, q=q, limit=limit)
    exact = [h for h in others if h.kind == "instrument" and h.title.upper() == q.upper()]
    return exact + crm_search(user, q, limit) + [h for h in others if h not in exact]


# --- lists ------------------------------------------------------------------------------------------


def _in_array(field: str, subquery: QuerySet) -> Func:
    """``field = ANY(ARRAY(subquery))``: the subquery runs once and the field is looked up in an index
    (``IN (subquery)`` inside an OR becomes a filter on every row)."""
    return Func(
        F(field),
        ArraySubquery(subquery),
        template="(%(expressions)s))",
        arg_joiner=" = ANY(",
        output_field=BooleanField(),
    )


def contacts_matching(qs: QuerySet[Contact], terms: list[str]) -> QuerySet[Contact]:
    """Contacts of ``qs`` where every term is a part of the name, e-mail or phone, or of the
    company's name; accents and case do not matter. The GIN trigram indexes of ``search_text`` and of
    the companies' ``search_name`` answer each term of three letters or more, so a search never
    reads the whole table (tests/crm/test_search.py: the plan at 100,000 contacts).

    Each term's matches are found first, as ``id = ANY(ARRAY(...))``, and only then sorted and
    paged by primary key. As a filter beside the list's ``ORDER BY last_name``, PostgreSQL walked
    the name index and tested each contact until it had a page: 36,000 contacts read (124 ms) for
    "hopper", whose 4,000 matches all sort after "H" (docs/decisions/1320)."""
    for term in terms[:8]:
        folded_term = fold(term)
        companies = Company.objects.filter(search_name__contains=folded_term).order_by().values("pk")
        matches = Contact.objects.filter(
            Q(search_text__contains=folded_term) | Q(_in_array("company_id", companies))
        ).order_by()
        qs = qs.filter(_in_array("pk", matches.values("pk")))
    return qs


def deals_matching(qs: QuerySet[Deal], terms: list[str]) -> QuerySet[Deal]:
    """Deals of ``qs`` where every term is a part of the title, of the contact's name or of the
    company's name; accents and case do not matter. Each part is answered by a GIN trigram index
    (the deal's ``search_name``, the contacts' and companies' ``search_name``), joined by
    ``= ANY(ARRAY(...))`` so that no table is read whole (docs/benchmarks.md, the plans)."""
    for term in terms[:8]:
        folded_term = fold(term)
        contacts = Contact.objects.filter(search_name__contains=folded_term).order_by().values("pk")
        companies = Company.objects.filter(search_name__contains=folded_term).order_by().values("pk")
        qs = qs.filter(
            Q(search_name__contains=folded_term)
            | Q(_in_array("contact_id", contacts))
            | Q(_in_array("company_id", companies))
        )
    return qs


def contact_list(*, user, q: str = "", lifecycle: str = "", owner: str = "", tag: str = "") -> QuerySet[Contact]:
    """The contacts list of the web UI, filtered; one query plus the page's."""
    qs = access.contacts_for(user).select_related("owner", "company")
    if q:
        qs = contacts_matching(qs, q.split())
    if lifecycle:
        qs = qs.filter(lifecycle=lifecycle)
    if owner == "me":
        qs = qs.filter(owner_id=getattr(user, "pk", None))
    elif owner.isdigit():
        qs = qs.filter(owner_id=int(owner))
    if tag:
        qs = qs.filter(tags__contains=[tag.lower()])
    return qs.annotate(
        last_activity_at=Max("activities__occurred_at"),
        # The clients list's review and task columns (docs/decisions/1052): the last meeting held,
        # the earliest due date of an open task. Same join as the last activity, no extra query.
        last_review_at=Max("activities__occurred_at", filter=Q(activities__kind=ActivityKind.MEETING)),
        next_task_due=Min(
            "activities__due_date",
            filter=Q(activities__kind=ActivityKind.TASK, activities__completed_at__isnull=True),
        ),
    ).order_by("last_name", "first_name", "pk")


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
