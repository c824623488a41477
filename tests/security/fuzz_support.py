"""What Schemathesis needs to know that a schema cannot say, shared by the in-process run
(``test_api_fuzz.py``) and the run over HTTP against a live gunicorn (``fuzz_live.py``).

No Django import here: the external run loads this module in the Schemathesis CLI's process
(``SCHEMATHESIS_HOOKS``) and names the planted objects' ids through the environment.

- ids of related objects must exist: schema-valid requests (positive mode) name planted objects;
- an uploaded import must be a CSV file with a header row: a schema-valid upload sends one;
- dates are generated from 1900-01-01 (``analytics.EARLIEST_DATE``, stated as the pattern of every
  ledger date) up to today: "not after today" cannot be said in JSON Schema for ``format: date``;
- an analytics range is ``preset`` or ``start``/``end``, not both, and ``start`` is not after ``end``
  (documented on the parameters; OpenAPI cannot relate two query parameters): a schema-valid case
  keeps the dates and orders them;
- a fee run's period is a whole month or calendar quarter of its ``frequency`` (documented on the
  fields; OpenAPI cannot relate them): a schema-valid case keeps ``period_start``'s month and
  names that period; a subscription's ``ends_on`` is not before its ``starts_on`` (documented on
  the field): a schema-valid case orders them;
- a fee schedule's tiers rise by their upper bound from above zero, and only the last is open-ended
  (documented on the field; JSON Schema cannot order list items): a schema-valid case sorts them,
  drops repeated bounds and opens the last; its maximum annual fee is not below its minimum
  (documented on the field): a schema-valid case orders the two.
"""

from __future__ import annotations

import calendar
from datetime import date

import schemathesis
from hypothesis import strategies as st

EARLIEST_DATE = date(1900, 1, 1)

# Body and query fields that name another object, and the planted object each one names.
RELATED = {
    "owner": "user",
    "advisor": "user",
    "shared_with": "users",
    "contact": "contact",
    "client": "contact",
    "loser": "other_contact",
    "company": "company",
    "deal": "deal",
    "stage": "stage",
    "instrument": "instrument",
    "benchmark": "instrument",
    "portfolio": "portfolio",
    "rule": "rule",
    "action": "corporate_action",  # POST /corporate-actions/ names a stored one (its string kin: enums)
    "portfolios": "portfolio",
    "group": "billing_group",
    "product": "product",
    "fee_schedule": "fee_schedule",
    "run": "fee_run",  # a fee run job's issue names a planted run (in preview: 409, not approved)
    "excluded_instruments": "instrument",  # a fee schedule's exclusions name instruments the firm sees
}

TRANSACTIONS_CSV = b"kind,trade_date,amount,currency\ndeposit,2020-01-02,10,USD\n"
# A firm's manual prices: the header alone (a row would have to name one of the firm's own instruments).
PRICES_CSV = b"symbol,exchange,date,close\n"
CSV_OF_KIND = {
    "contacts": b"first_name,last_name,email\nAda,Lovelace,ada@example.com\n",
    "companies": b"name,website\nAnalytical Engines,https://engines.example.com\n",
}


def register_date_format() -> None:
    """Dates from EARLIEST_DATE up to today; every other format is Schemathesis' own."""
    schemathesis.openapi.format("date", st.dates(min_value=EARLIEST_DATE, max_value=date.today()).map(date.isoformat))


def order_date_range(query: dict) -> None:
    """A schema-valid analytics range: the dates without a preset, ``start`` not after ``end``."""
    if query.get("start") or query.get("end"):
        query.pop("preset", None)
    start, end = query.get("start"), query.get("end")
    if isinstance(start, str) and isinstance(end, str) and start > end:
        query["start"], query["end"] = end, start


def whole_fee_period(body: dict) -> None:
    """A schema-valid fee run: the month (monthly) or calendar quarter of ``period_start``."""
    start, frequency = body.get("period_start"), body.get("frequency")
    if not isinstance(start, str) or frequency not in ("monthly", "quarterly"):
        return
    day = date.fromisoformat(start)
    months = 3 if frequency == "quarterly" else 1
    first = (day.month - 1) // months * months + 1
    last = first + months - 1
    body["period_start"] = date(day.year, first, 1).isoformat()
    body["period_end"] = date(day.year, last, calendar.monthrange(day.year, last)[1]).isoformat()


def _number(value) -> float | None:
    """A decimal string or number as a float; None for anything else (left as generated)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def order_fee_tiers(body: dict) -> None:
    """A schema-valid schedule: tiers by increasing ``upto``, one per bound, the last one open;
    the maximum annual fee not below the minimum."""
    low, high = _number(body.get("minimum_annual")), _number(body.get("maximum_annual"))
    if low is not None and high is not None and high < low:
        body["minimum_annual"], body["maximum_annual"] = body["maximum_annual"], body["minimum_annual"]
    tiers = body.get("tiers")
    if not isinstance(tiers, list) or not tiers or not all(isinstance(t, dict) for t in tiers):
        return

    def bound(tier: dict) -> float:
        try:
            return float(tier["upto"]) if tier.get("upto") is not None else float("inf")
        except (TypeError, ValueError):
            return float("inf")

    ordered: list[dict] = []
    # the first bound rises from zero, as each later one rises from the one before
    for tier in sorted((t for t in tiers if bound(t) > 0), key=bound) or tiers[:1]:
        if not ordered or bound(tier) > bound(ordered[-1]):
            ordered.append(tier)
    ordered[-1] = {**ordered[-1], "upto": None}
    body["tiers"] = ordered


def name_existing_objects(case, ids: dict, *, plant_paths: bool = False) -> None:
    """In a schema-valid case, ids of related objects name planted objects (a schema cannot say
    "must exist"; the API rightly answers 400 naming the field for an id that does not).

    ``plant_paths`` also puts the planted portfolio in nested paths (its ledger, analytics) and the
    planted client in the client record. The external run does (``make fuzz``): it then meets the
    ledger's business rules a schema cannot state (docs/security.md, "External fuzzing over HTTP")
    and reports them. The in-process run in ``make test`` does not, so it holds at 0 failures on
    what a schema can state; those operations get random ids (404) there, as before issue 27."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if case.operation.path == "/api/v1/imports/" and isinstance(case.body, dict) and "file" in case.body:
        case.body["file"] = CSV_OF_KIND.get(case.body.get("kind"), CSV_OF_KIND["contacts"])
    if case.operation.path.endswith("/transactions/import/") and isinstance(case.body, dict) and "file" in case.body:
        case.body["file"] = TRANSACTIONS_CSV
    if (
        case.operation.path == "/api/v1/instruments/prices/import/"
        and isinstance(case.body, dict)
        and "file" in case.body
    ):
        case.body["file"] = PRICES_CSV
    # Nested resources of the planted portfolio (its ledger, lots, analytics) and the planted
    # client's record; never the id of an object a DELETE could remove from under the other cases.
    if plant_paths and isinstance(case.path_parameters, dict):
        if "portfolio_pk" in case.path_parameters:
            case.path_parameters["portfolio_pk"] = ids["portfolio"]
        if case.operation.path == "/api/v1/clients/{id}/":
            case.path_parameters["id"] = ids["contact"]
    if isinstance(case.query, dict):
        order_date_range(case.query)
    if case.operation.path in ("/api/v1/fee-runs/", "/api/v1/fee-run-jobs/") and isinstance(case.body, dict):
        whole_fee_period(case.body)
    if "/fee-schedules/" in case.operation.path and isinstance(case.body, dict):
        order_fee_tiers(case.body)
    if case.operation.path == "/api/v1/client-subscriptions/" and isinstance(case.body, dict):
        start, end = case.body.get("starts_on"), case.body.get("ends_on")
        if isinstance(start, str) and isinstance(end, str) and start > end:
            case.body["starts_on"], case.body["ends_on"] = end, start
    for container in (case.body, case.query):
        if not isinstance(container, dict):
            continue
        if isinstance(container.get("plan"), str) and ids.get("plan_code"):
            container["plan"] = ids["plan_code"]
        for name, kind in RELATED.items():
            value = container.get(name)
            if isinstance(value, list) and value:
                container[name] = ids[kind] if isinstance(ids[kind], list) else [ids[kind]]
            elif isinstance(value, int) and not isinstance(value, bool):
                container[name] = ids[kind][0] if isinstance(ids[kind], list) else ids[kind]
            elif isinstance(value, str) and value.lstrip("-").isdigit():  # the coverage phase's query
                container[name] = str(ids[kind][0] if isinstance(ids[kind], list) else ids[kind])
