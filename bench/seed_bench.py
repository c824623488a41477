"""Seed a scratch database for the HTTP benchmarks (run by ``bench/run_all.py``; usable alone).

    DATABASE_URL=<scratch> .venv/bin/python bench/seed_bench.py --firms 200 --contacts 20000 \
        --portfolios 50 --transactions 10000 --out .data/bench/seed.json

What it makes, and how (domain services wherever they are fast enough; bulk writes only where a
service per row would dominate the run, with the rows normalised the way the service does):

- ``--firms`` small firms with ``tenants.services.tenant_provision`` (template clone, owner, trial);
- one large firm ``bench-large`` (enterprise plan, so no plan limit caps the data) through the same
  service, plus an advisor;
- market data with ``manage.py seed_market`` (about 20 instruments, daily closes, EUR/USD);
- ``--contacts`` contacts by COPY (``copy_objects``: the fields' own ``pre_save`` and
  ``get_db_prep_save``, as ``bulk_create`` does; unique lower-cased e-mails, stripped names, clean
  tags, as ``crm.services.contact_create`` normalises them; every 100th a client), then the search
  indexes' pending lists merged as the contacts import does (``crm.imports.search_indexes_merge``);
- ``--portfolios`` portfolios with ``portfolios.services.portfolio_create``, clients among the contacts;
- ``--transactions`` ledger rows spread over the portfolios, each validated by
  ``portfolios.services.transaction_clean`` and written per portfolio by
  ``transactions_bulk_record`` (the CSV import's path: one insert, one ledger rebuild), so holdings
  and lots are consistent with the ledger;
- a read API key (``api_key_create``) and a signed-in session of the owner (the dashboard's cookie).

Writes what the load generator needs (hosts, key, cookie, ids, a search term) as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codex.settings")

LARGE_SLUG = "bench-large"
FIRST_NAMES = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Barbara",
    "Ken",
    "Margaret",
    "Dennis",
    "Edsger",
    "Donald",
    "Frances",
    "Tim",
    "John",
    "Radia",
    "Leslie",
]
LAST_NAMES = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Liskov",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Dijkstra",
    "Knuth",
    "Allen",
    "Berners-Lee",
    "McCarthy",
    "Perlman",
    "Lamport",
    "Backus",
    "Wirth",
    "Kay",
    "Engelbart",
    "Shannon",
    "Neumann",
    "Church",
    "Godel",
    "Cerf",
    "Kahn",
]
SEARCH_TERM = "hopper"


def fast_commits() -> None:
    """Commit without waiting for the WAL flush in this process (``synchronous_commit = off``, a
    per-session PostgreSQL setting): a crash could lose the last few hundred milliseconds of a
    scratch seed, never make it inconsistent. The seed commits thousands of times (a portfolio, its
    ledger, its valuations), and each waited for a disk flush."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
        # The change-history triggers, as installed by django-pgtrigger and django-pghistory, read
        # two session settings each inside a PL/pgSQL block with an EXCEPTION clause; unset, each
        # read raises, and each raise aborts a subtransaction. PostgreSQL then scans the whole
        # transaction's queue of deferred trigger events (the rows' deferred foreign-key checks),
        # so a statement writing n rows costs n x n: 5,000 activities in one INSERT 5.9 s, 20,000
        # 80.2 s (load 15-20). With both settings present nothing raises (20,000 rows: 5.9 s). No
        # trigger is ignored (an empty list) and the seed's history rows name the seed as their
        # context, a row of ``pghistory_context``, as a request's rows name the request.
        cursor.execute("SELECT set_config('pgtrigger.ignore', '{}', false)")
        cursor.execute(
            "SELECT set_config('pghistory.context_id', gen_random_uuid()::text, false), "
            "set_config('pghistory.context_metadata', %s, false)",
            [json.dumps({"bench_seed": True})],
        )


def copy_objects(model, objs: list) -> int:
    """Write unsaved ``objs`` of ``model`` with one PostgreSQL COPY in the current schema: each
    field's value goes through the field's own ``pre_save`` (``auto_now`` stamps) and
    ``get_db_prep_save``, as ``bulk_create`` prepares them; generated columns, defaults, check and
    unique constraints, foreign keys and the history triggers apply as for an INSERT. Measured on
    10,000 contacts: ``bulk_create`` 20.5 s, COPY 8.0 s (load 9; the rest is the rows' history
    triggers and indexes). The primary keys are not read back."""
    from django.db import connection

    fields = [f for f in model._meta.concrete_fields if not f.primary_key and not f.generated]
    table = connection.ops.quote_name(model._meta.db_table)
    cols = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for obj in objs:
            copy.write_row([f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields])
    return len(objs)


def owner_session(owner) -> str:
    """A signed-in session of ``owner`` in the current schema: the dashboard's cookie."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(owner.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = owner.get_session_auth_hash()
    session.create()
    return session.session_key


def new_session(email: str = "owner@bench-large.example") -> str:
    """A fresh session of ``email`` (the owner, or the big seed's advisor) in an already seeded
    database: the seeded one ends after ``CODEX_SESSION_IDLE_SECONDS`` without use (a run with
    ``--reuse-db`` later saw a 302)."""
    import django

    django.setup()
    from django_tenants.utils import schema_context

    from tenants.accounts.models import User
    from tenants.models import Tenant

    tenant = Tenant.objects.get(slug=LARGE_SLUG)
    with schema_context(tenant.schema_name):
        return owner_session(User.objects.get(email=email))


def seed(args) -> dict:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import transaction
    from django_tenants.utils import schema_context

    from billing.services import plans_seed
    from crm.imports import search_indexes_merge
    from crm.models import Contact
    from portfolios.market.models import Instrument, Price
    from portfolios.models import Portfolio
    from portfolios.valuation_services import firm_valuations_rebuild
    from tenants.accounts.models import Role, User
    from tenants.models import ApiScope, Tenant
    from tenants.services import api_key_create, tenant_provision

    timings: dict[str, float] = {}
    fast_commits()
    plans_seed()
    started = time.perf_counter()
    existing = set(Tenant.objects.values_list("slug", flat=True))
    for n in range(args.firms):
        slug = f"firm-{n:05d}"
        if slug not in existing:
            tenant_provision(name=f"Firm {n}", slug=slug, owner_email=f"owner@{slug}.example", plan_code="starter")
    timings["provision_firms_s"] = time.perf_counter() - started
    if args.only_firms:  # growing an already seeded database (bench/scaling.py)
        return {"timings": timings}

    started = time.perf_counter()
    call_command("seed_market", verbosity=0)
    timings["seed_market_s"] = time.perf_counter() - started

    if LARGE_SLUG in existing:
        raise SystemExit(f"{LARGE_SLUG} already exists: seed a fresh database")
    tenant = tenant_provision(
        name="Bench Large", slug=LARGE_SLUG, owner_email="owner@bench-large.example", plan_code="enterprise"
    )
    rng = random.Random(8)
    with schema_context(tenant.schema_name):
        owner = User.objects.get(email="owner@bench-large.example")
        advisor = User.objects.create_user(email="advisor@bench-large.example", password=None, role=Role.ADVISOR)

        started = time.perf_counter()
        contacts = []
        for i in range(args.contacts):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            contacts.append(
                Contact(
                    first_name=first,
                    last_name=last,
                    email=f"{first}.{last}.{i}@example.com".lower(),
                    job_title=rng.choice(["CFO", "Founder", "Engineer", "Doctor", "Teacher", ""]),
                    lifecycle="client" if i % 100 == 0 else rng.choice(["lead", "prospect", "former"]),
                    owner=owner if i % 2 else advisor,
                    tags=sorted({rng.choice(["vip", "retiree", "tech", "referral", "newsletter"])}),
                    source=rng.choice(["referral", "website", "event", ""]),
                )
            )
        # One transaction per COPY_BATCH rows (the size measured; one COPY of 100,000 rows took
        # 758 s at full size under load, docs/benchmarks.md), then the search indexes merged.
        for i in range(0, len(contacts), COPY_BATCH):
            with transaction.atomic():
                copy_objects(Contact, contacts[i : i + COPY_BATCH])
        search_indexes_merge("contacts")
        timings["contacts_s"] = time.perf_counter() - started

        started = time.perf_counter()
        clients = list(Contact.objects.filter(lifecycle="client").order_by("pk")[: args.portfolios])
        instruments = list(Instrument.objects.filter(currency="USD").order_by("pk"))
        closes: dict[tuple[int, date], Decimal] = {
            (p.instrument_id, p.date): p.close
            for p in Price.objects.filter(instrument__in=instruments).only("instrument_id", "date", "close")
        }
        days = sorted({d for (_i, d) in closes})
        # Each portfolio through ``portfolio_create``, then its ledger through ``transaction_clean``
        # and ``transactions_bulk_record`` (the CSV import's path), in ``--jobs`` processes: the
        # ledgers are drawn here first, in order, so the data does not depend on the split.
        per_portfolio = max(2, args.transactions // max(1, args.portfolios))
        specs = [
            (
                f"Portfolio {p:03d}",
                advisor if p % 2 else owner,
                clients[p % len(clients)] if clients else None,
                ledger_rows(rng, None, per_portfolio, instruments, closes, days),
            )
            for p in range(args.portfolios)
        ]
        chunks = [(tenant, owner, specs[i : i + PORTFOLIO_CHUNK]) for i in range(0, len(specs), PORTFOLIO_CHUNK)]
        made = [pair for chunk in in_workers(_portfolios_chunk, chunks, args.jobs) for pair in chunk]
        portfolio_ids = [pk for pk, _n in made]
        transactions_written = sum(n for _pk, n in made)
        timings["portfolios_and_transactions_s"] = time.perf_counter() - started

        session_key = owner_session(owner)
        portfolio_id = portfolio_ids[0] if portfolio_ids else None
        big = {}
        if args.big:
            big = seed_big(tenant=tenant, owner=owner, advisor=advisor, rng=rng, args=args, timings=timings)
            advisor_session = owner_session(advisor)

    # The imports above queued their valuation rebuilds for a worker that a seed does not run:
    # value the firm here, as ``manage.py valuations_rebuild --firm`` does (each portfolio by
    # ``valuations_rebuild`` from inception, then the firm's totals), the portfolios spread over
    # ``--jobs`` processes, the longest ledger first.
    started = time.perf_counter()
    with schema_context(tenant.schema_name):
        ids = list(Portfolio.objects.order_by("pk").values_list("pk", flat=True))
        if big.get("big_portfolio_id") in ids:
            ids.remove(big["big_portfolio_id"])
            ids.insert(0, big["big_portfolio_id"])
        chunks = [(tenant.schema_name, ids[i : i + VALUATION_CHUNK]) for i in range(0, len(ids), VALUATION_CHUNK)]
        done = in_workers(_valuations_chunk, chunks, args.jobs)
        failed = [f for chunk_failed, _seconds in done for f in chunk_failed]
        seconds = {pk: s for _failed, chunk_seconds in done for pk, s in chunk_seconds.items()}
        if big.get("big_portfolio_id") in seconds:
            timings["big_valuations_s"] = seconds[big["big_portfolio_id"]]
        if failed:
            raise SystemExit("valuation rebuild failed: " + "; ".join(failed))
        firm_valuations_rebuild()
    timings["valuations_rebuild_s"] = time.perf_counter() - started
    _key, raw_key = api_key_create(tenant=tenant, name="bench", scope=ApiScope.READ, created_by="bench")
    # The seed's own CPU (this process and its workers, not PostgreSQL's): with the wall time and
    # the load average it tells a slow seed from a busy machine.
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    timings["python_cpu_s"] = own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime
    return {
        "firms": args.firms + 1,
        "large_slug": LARGE_SLUG,
        "host": f"{LARGE_SLUG}.{settings.CODEX_BASE_DOMAIN}",
        "small_host": f"firm-00000.{settings.CODEX_BASE_DOMAIN}" if args.firms else None,
        "api_key": raw_key,
        "session_key": session_key,
        "portfolio_id": portfolio_id,
        "search_term": SEARCH_TERM,
        "contacts": args.contacts,
        "portfolios": args.portfolios,
        "transactions": transactions_written,
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "valued": True,
        "seed_format": SEED_FORMAT,
        **big,
        **({"advisor_session_key": advisor_session} if args.big else {}),
    }


# What the seed makes, as a number: ``bench/pages.py --scaling`` reuses a database only when its
# seed file names the same arguments and this format. 2: the big ledger spans all ten years.
SEED_FORMAT = 2
PORTFOLIO_CHUNK = 50
COPY_BATCH = 10_000
VALUATION_CHUNK = 25


def in_workers(func, chunks: list, jobs: int) -> list:
    """``[func(chunk) for chunk in chunks]``, in ``jobs`` forked processes when ``jobs`` > 1 (each
    with its own database connection: the parent's are closed before the fork, never shared).
    The seed's per-portfolio work is a round trip after another, Python and PostgreSQL in turn:
    two processes keep both cores busy on a quiet machine."""
    import multiprocessing

    from django.db import connections

    if jobs <= 1 or len(chunks) <= 1:
        return [func(chunk) for chunk in chunks]
    connections.close_all()
    with multiprocessing.get_context("fork").Pool(jobs, initializer=fast_commits) as pool:
        done = pool.map(func, chunks, chunksize=1)
    fast_commits()  # the parent's next connection is a new session: its settings again
    return done


def _portfolios_chunk(job) -> list[tuple[int, int]]:
    """Create a chunk of portfolios and record their ledgers (see ``seed``); ``[(pk, rows)]``."""
    from django_tenants.utils import tenant_context

    from portfolios.services import portfolio_create, transaction_clean, transactions_bulk_record

    tenant, owner, specs = job
    made = []
    with tenant_context(tenant):
        for name, advisor, client, rows in specs:
            portfolio = portfolio_create(
                tenant=tenant, actor=owner, name=name, advisor=advisor, client=client, base_currency="USD"
            )
            clean = [transaction_clean(portfolio=portfolio, data=row) for row in rows]
            transactions_bulk_record(portfolio=portfolio, rows=clean, created_by=owner)
            made.append((portfolio.pk, len(clean)))
    return made


def _valuations_chunk(job) -> tuple[list[str], dict[int, float]]:
    """Value a chunk of portfolios from inception (``valuations_rebuild``); the failures and the
    seconds each portfolio took."""
    from datetime import date as _date

    from django_tenants.utils import schema_context

    from portfolios.models import Portfolio, ValuationStatus
    from portfolios.valuation_services import valuations_rebuild

    schema, ids = job
    failed, seconds = [], {}
    with schema_context(schema):
        for portfolio in Portfolio.objects.filter(pk__in=ids).order_by("pk"):
            started = time.perf_counter()
            state = valuations_rebuild(portfolio=portfolio, since=_date.min)
            seconds[portfolio.pk] = time.perf_counter() - started
            if state.status == ValuationStatus.FAILED:
                failed.append(f"portfolio {portfolio.pk}: {state.error}")
    return failed, seconds


BIG_INSTRUMENTS = 50
BIG_YEARS = 10
BIG_TRANSACTIONS = 5000
BIG_ACTIVITIES = 20000


def seed_big(*, tenant, owner, advisor, rng, args, timings) -> dict:
    """The big firm's history (issue 19): ``BIG_INSTRUMENTS`` instruments with ``BIG_YEARS`` years of
    weekday closes, one client portfolio with ``BIG_TRANSACTIONS`` ledger rows over those years
    (the import's path: ``transactions_bulk_record``, then its valuation rebuild), and
    ``BIG_ACTIVITIES`` CRM activities. Runs inside the firm's schema."""
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from crm.models import Activity, Contact
    from portfolios.market.models import Instrument, Price
    from portfolios.models import ValuationState
    from portfolios.services import portfolio_create, transaction_clean, transactions_bulk_record

    started = time.perf_counter()
    today = timezone.localdate()
    first = today - timedelta(days=365 * BIG_YEARS)
    days = [first + timedelta(days=i) for i in range((today - first).days + 1)]
    days = [d for d in days if d.weekday() < 5]
    instruments = Instrument.objects.bulk_create(
        Instrument(
            symbol=f"BIG{i:02d}",
            exchange="XBEN",
            name=f"Big Bench {i:02d} Inc",
            asset_class="equity" if i % 5 else "bond",
            currency="USD",
            sector=rng.choice(["Technology", "Health", "Energy", "Financials", "Utilities"]),
            country="US",
        )
        for i in range(BIG_INSTRUMENTS)
    )
    closes: dict[tuple[int, date], Decimal] = {}
    prices = []
    for inst in instruments:
        level = 50.0 + rng.random() * 100
        for d in days:
            level *= 1 + rng.gauss(0.0003, 0.012)
            close = Decimal(f"{max(level, 1.0):.4f}")
            closes[(inst.pk, d)] = close
            prices.append(Price(instrument=inst, date=d, close=close, source="bench"))
    with transaction.atomic():
        copy_objects(Price, prices)
    timings["big_prices_s"] = time.perf_counter() - started

    started = time.perf_counter()
    client = Contact.objects.create(
        first_name="Grace", last_name="Hopper", email="grace.hopper.big@example.com", lifecycle="client", owner=advisor
    )
    portfolio = portfolio_create(
        tenant=tenant, actor=owner, name="Big ten-year book", advisor=advisor, client=client, base_currency="USD"
    )
    rows = ledger_rows(rng, portfolio, args.big_transactions, instruments, closes, days, whole_span=True)
    clean = [transaction_clean(portfolio=portfolio, data=row) for row in rows]
    transactions_bulk_record(portfolio=portfolio, rows=clean, created_by=owner)  # rebuild queued on commit
    timings["big_portfolio_s"] = time.perf_counter() - started
    state = ValuationState.objects.get(portfolio=portfolio)

    started = time.perf_counter()
    contact_ids = list(Contact.objects.order_by("pk").values_list("pk", flat=True)[:20000])
    now = timezone.now()
    copy_objects(
        Activity,
        [
            Activity(
                kind=rng.choice(["note", "call", "email", "meeting"]),
                subject=f"{rng.choice(['Review', 'Call', 'Rebalance', 'Onboarding'])} {i}",
                contact_id=rng.choice(contact_ids),
                owner=owner if i % 2 else advisor,
                occurred_at=now - timedelta(minutes=rng.randint(0, 60 * 24 * 700)),
            )
            for i in range(BIG_ACTIVITIES)
        ],
    )
    timings["big_activities_s"] = time.perf_counter() - started
    started = time.perf_counter()
    deals = seed_deals(owner=owner, advisor=advisor, rng=rng)
    ensure_signin_user()
    timings["big_deals_s"] = time.perf_counter() - started
    return {
        "deals": deals,
        "big_portfolio_id": portfolio.pk,
        "big_client_id": client.pk,
        "big_transactions": len(clean),
        "big_instruments": BIG_INSTRUMENTS,
        "big_price_days": len(days),
        "big_valuation_status": state.status,
        "activities": BIG_ACTIVITIES,
        "signin_email": SIGNIN_EMAIL,
        "signin_password": SIGNIN_PASSWORD,
    }


BIG_DEALS = 5000


def seed_deals(*, owner, advisor, rng) -> int:
    """``BIG_DEALS`` deals over the firm's pipeline stages (the stages ``crm.services`` seeds),
    on contacts of both owners, a third of them closed. Bulk-created (a service call per row
    would dominate the seed); runs inside the firm's schema. Idempotent: tops up to ``BIG_DEALS``."""
    from datetime import timedelta

    from django.utils import timezone

    from crm.models import Contact, Deal, DealStatus, StageKind
    from crm.services import pipeline_stages_ensure

    have = Deal.objects.count()
    if have >= BIG_DEALS:
        return have
    stages = pipeline_stages_ensure()
    open_stages = [s for s in stages if s.kind == StageKind.OPEN] or stages
    contacts = list(Contact.objects.order_by("pk").values_list("pk", "owner_id")[:BIG_DEALS])
    now, today = timezone.now(), timezone.localdate()
    words = ["Rollover", "Retirement plan", "Trust set-up", "Rebalance", "Estate review", "Hopper mandate"]
    deals = []
    for i in range(have, BIG_DEALS):
        contact_id, contact_owner = contacts[i % len(contacts)]
        status = rng.choice([DealStatus.WON, DealStatus.LOST]) if i % 3 == 0 else DealStatus.OPEN
        closed = status != DealStatus.OPEN
        kind_stages = [s for s in stages if s.kind == status] or open_stages
        deals.append(
            Deal(
                title=f"{rng.choice(words)} {i}",
                contact_id=contact_id,
                stage=rng.choice(kind_stages),
                amount=Decimal(rng.randint(10, 5000) * 100),
                currency="USD",
                probability=rng.choice([10, 25, 50, 75, 90]),
                expected_close=today + timedelta(days=rng.randint(-60, 180)),
                owner_id=contact_owner or (owner.pk if i % 2 else advisor.pk),
                status=status,
                closed_at=now - timedelta(days=rng.randint(0, 700)) if closed else None,
            )
        )
    copy_objects(Deal, deals)
    return Deal.objects.count()


SIGNIN_EMAIL = "signin@bench-large.example"
SIGNIN_PASSWORD = "bench sign-in pass phrase 19"  # noqa: S105 - a scratch database's bench user


def ensure_signin_user() -> None:
    """An advisor with a password (Argon2, as every user): the sign-in page's benchmark user.
    Runs inside the firm's schema; idempotent."""
    from tenants.accounts.models import Role, User

    if not User.objects.filter(email=SIGNIN_EMAIL).exists():
        User.objects.create_user(email=SIGNIN_EMAIL, password=SIGNIN_PASSWORD, role=Role.ADVISOR)


def ensure_deals() -> int:
    """Top up the deals of an already seeded big firm (a database seeded before deals were), and
    make the sign-in user."""
    import django

    django.setup()
    from django_tenants.utils import schema_context

    from tenants.accounts.models import User
    from tenants.models import Tenant

    tenant = Tenant.objects.get(slug=LARGE_SLUG)
    with schema_context(tenant.schema_name):
        owner = User.objects.get(email="owner@bench-large.example")
        advisor = User.objects.get(email="advisor@bench-large.example")
        ensure_signin_user()
        deals = seed_deals(owner=owner, advisor=advisor, rng=random.Random(9))
        ensure_valuations()
        return deals


def ensure_valuations() -> None:
    """Value every portfolio of the big firm whose rebuild never ran (a seed made before the seed
    valued the firm itself: its import jobs waited for a worker). Inside the firm's schema."""
    from django.core.management import call_command

    from portfolios.models import ValuationState

    if ValuationState.objects.filter(valued_through__isnull=True, stale_from__isnull=False).exists():
        call_command("valuations_rebuild", "--firm", LARGE_SLUG, verbosity=0)


def extend_valuations() -> dict:
    """Bring the big firm's stored valuations up to today, as the nightly job does
    (``valuations_extend_all``, then each stale portfolio's rebuild from its first missing day, then
    the firm's totals), for a database seeded on an earlier day: until then every page of a
    portfolio whose store ends before today replays its whole ledger (the selectors' fallback)."""
    import django

    django.setup()
    from django_tenants.utils import schema_context

    from portfolios.models import Portfolio, ValuationState
    from portfolios.valuation_services import firm_valuations_rebuild, valuations_extend_all, valuations_rebuild
    from tenants.models import Tenant

    fast_commits()
    started = time.perf_counter()
    tenant = Tenant.objects.get(slug=LARGE_SLUG)
    with schema_context(tenant.schema_name):
        valuations_extend_all()
        stale = list(ValuationState.objects.filter(stale_from__isnull=False).values_list("portfolio_id", flat=True))
        for portfolio in Portfolio.objects.filter(pk__in=stale).order_by("pk"):
            valuations_rebuild(portfolio=portfolio)
        if stale:
            firm_valuations_rebuild()
    return {"extended": len(stale), "seconds": round(time.perf_counter() - started, 1)}


def ledger_rows(rng, portfolio, count, instruments, closes, days, *, whole_span: bool = False) -> list[dict]:
    """A plausible ledger: one deposit, then buys, partial sells of what is held, dividends, fees.

    The rows fall on the last ``count`` business days, or, with ``whole_span`` (the big portfolio),
    evenly over all of ``days``: its history is then as long at every ledger length, so the scaling
    curve varies the transactions alone (a 500-row ledger on the last 500 days had a history a
    fifth as long as the 5,000-row one, and every page reading its days was cheaper for that)."""
    # A longer ledger than there are days puts several rows on a day.
    span = [days[i * len(days) // count] for i in range(count)] if whole_span or len(days) < count else days[-count:]
    held: dict[int, Decimal] = {}
    rows = [
        {
            "kind": "deposit",
            "trade_date": span[0],
            "amount": Decimal("5000000"),
            "currency": "USD",
            "note": "initial funding",
        }
    ]
    for d in span[1:count]:
        roll = rng.random()
        instrument = rng.choice(instruments)
        close = closes.get((instrument.pk, d))
        if close is None:
            rows.append({"kind": "fee", "trade_date": d, "amount": Decimal("12.50"), "currency": "USD"})
        elif roll < 0.6 or not held:
            qty = Decimal(rng.randint(1, 40))
            held[instrument.pk] = held.get(instrument.pk, Decimal(0)) + qty
            rows.append(_trade("buy", d, instrument, qty, close))
        elif roll < 0.75:
            pk = rng.choice(sorted(held))
            qty = (held[pk] / 2).quantize(Decimal(1))
            price = closes.get((pk, d))
            if qty <= 0 or price is None:
                rows.append({"kind": "fee", "trade_date": d, "amount": Decimal("12.50"), "currency": "USD"})
                continue
            held[pk] -= qty
            rows.append(_trade("sell", d, next(i for i in instruments if i.pk == pk), qty, price))
        elif roll < 0.9:
            rows.append({"kind": "dividend", "trade_date": d, "amount": Decimal("84.20"), "currency": "USD"})
        else:
            rows.append({"kind": "fee", "trade_date": d, "amount": Decimal("12.50"), "currency": "USD"})
    return rows[:count]


def _trade(kind, d, instrument, qty, price) -> dict:
    return {
        "kind": kind,
        "trade_date": d,
        "instrument": instrument,
        "quantity": qty,
        "price": price,
        "fees": Decimal("1.00"),
        "currency": instrument.currency,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--firms", type=int, default=200)
    parser.add_argument("--contacts", type=int, default=20000)
    parser.add_argument("--portfolios", type=int, default=50)
    parser.add_argument("--transactions", type=int, default=10000)
    parser.add_argument("--only-firms", action="store_true", help="provision missing small firms only")
    parser.add_argument("--big", action="store_true", help="the big firm's history (bench/pages.py): see seed_big")
    parser.add_argument(
        "--big-transactions", type=int, default=BIG_TRANSACTIONS, help="the big portfolio's ledger rows (scaling curve)"
    )
    parser.add_argument(
        "--jobs", type=int, default=2, help="processes for the per-portfolio work (portfolios, ledgers, valuations)"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--new-session",
        action="store_true",
        help="only fresh sessions (owner, and the advisor of a big seed), into --out",
    )
    parser.add_argument(
        "--extend-valuations", action="store_true", help="only bring the big firm's valuations up to today"
    )
    parser.add_argument("--ensure-deals", action="store_true", help="only top up the big firm's deals, into --out")
    args = parser.parse_args()
    if "DATABASE_URL" not in os.environ or not os.environ["DATABASE_URL"].split("?")[0].rsplit("/", 1)[-1].startswith(
        "codex_bench"
    ):
        raise SystemExit("Set DATABASE_URL to a scratch database named codex_bench*; this script fills it.")
    if args.ensure_deals:
        data = json.loads(args.out.read_text())
        data["deals"] = ensure_deals()
        data["signin_email"], data["signin_password"] = SIGNIN_EMAIL, SIGNIN_PASSWORD
        data["valued"] = True
        args.out.write_text(json.dumps(data, indent=2, default=str))
        return
    if args.extend_valuations:
        print(json.dumps(extend_valuations()))
        return
    if args.new_session:
        data = json.loads(args.out.read_text())
        data["session_key"] = new_session()
        if "advisor_session_key" in data:  # the big seed's advisor: its session ends as the owner's does
            data["advisor_session_key"] = new_session("advisor@bench-large.example")
        args.out.write_text(json.dumps(data, indent=2, default=str))
        return
    result = seed(args)
    if args.only_firms:
        print(json.dumps(result["timings"]))
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result["timings"]))


if __name__ == "__main__":
    main()
