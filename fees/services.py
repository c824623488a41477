"""Writes of the firm's fee business: schedules, products, billing groups, subscriptions, fee runs
(preview, approve, issue), invoices (void, credit note, paid). docs/fees.md.

Every service is atomic: on a ``ValidationError`` (a dict naming the field) nothing is written.
Fee runs are exactly once per billing group and period: the partial unique constraint
``fee_invoice_once_per_group_period`` refuses a second live invoice, whichever run or process
tries; numbers come from billing's gapless counter, per firm.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import partial

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from billing.entitlements import check_feature
from billing.numbering import next_gapless_number
from codex.notifications.models import NotificationKind
from codex.notifications.services import notification_send
from codex.outbox.services import event_emit
from codex.stale_jobs import silence, stale_jobs_sweep
from portfolios import services as portfolio_services
from portfolios.market.models import AssetClass, Instrument
from portfolios.models import Kind, Portfolio
from tenants.accounts.models import MANAGER_ROLES, User
from tenants.selectors import current_tenant

from . import engine, events, selectors
from .models import (
    BillingGroup,
    BillingGroupAccount,
    ClientSubscription,
    Collection,
    FeeInvoice,
    FeeInvoiceCounter,
    FeeInvoiceLine,
    FeeMethod,
    FeeRun,
    FeeRunItem,
    FeeRunJob,
    FeeSchedule,
    FeeScheduleVersion,
    Frequency,
    InvoiceKind,
    InvoiceStatus,
    JobKind,
    JobStatus,
    Product,
    RunStatus,
)
from .statements import fee_statements_store_new

logger = logging.getLogger(__name__)

FEATURE = "fee_billing"
DUE_DAYS = 30


class FeeStateConflict(ValidationError):
    """The stored state refuses a well-formed request (a name in use, an account billed in another
    group): 409 in the API naming the field, the field's error on pages."""


def fee_billing_check(*, tenant) -> None:
    """Raises ``PlanLimitExceeded`` (402) when the firm's plan has no client fee billing."""
    check_feature(tenant=tenant, feature=FEATURE)


def _rule_error(exc: engine.FeeRuleError, prefix: str = "") -> ValidationError:
    return ValidationError({f"{prefix}{exc.field}": exc.message})


def _currency(code: str, field: str = "currency") -> str:
    from billing.money import UnknownCurrency, currency_exponent

    code = (code or "").upper()
    try:
        currency_exponent(code)
    except (UnknownCurrency, TypeError):
        raise ValidationError({field: f"{code!r} is not an ISO 4217 currency code."}) from None
    return code


def _decimal(value, field: str, *, allow_none: bool = False) -> Decimal | None:
    if value is None or value == "":
        if allow_none:
            return None
        raise ValidationError({field: "This field is required."})
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise ValidationError({field: f"{value!r} is not a number."}) from None
    if not number.is_finite():
        raise ValidationError({field: "Must be a finite number."})
    if number < 0:
        raise ValidationError({field: f"Cannot be negative (got {value})."})
    return number


def tiers_clean(raw) -> list[dict]:
    """``[{"upto": "1000000" | None, "bps": "100"}, ...]`` checked by the engine; errors name
    ``tiers[i].upto`` / ``tiers[i].bps``."""
    if not isinstance(raw, list) or not raw:
        raise ValidationError({"tiers": "At least one tier is required: a list of {upto, bps}."})
    tiers = []
    for i, row in enumerate(raw):
        if not isinstance(row, dict) or "bps" not in row:
            raise ValidationError({f"tiers[{i}]": "Each tier is {upto, bps}."})
        bps = row["bps"]
        try:
            bps_d = Decimal(str(bps))
        except ArithmeticError:
            raise ValidationError({f"tiers[{i}].bps": f"{bps!r} is not a number."}) from None
        upto = row.get("upto")
        try:
            upto_d = None if upto in (None, "") else Decimal(str(upto))
        except ArithmeticError:
            raise ValidationError({f"tiers[{i}].upto": f"{upto!r} is not a number."}) from None
        if not bps_d.is_finite() or (upto_d is not None and not upto_d.is_finite()):
            raise ValidationError({f"tiers[{i}]": "Must be finite numbers."})
        tiers.append(engine.Tier(upto=upto_d, bps=bps_d))
    try:
        engine.validate_tiers(tiers)
    except engine.FeeRuleError as exc:
        raise _rule_error(exc) from None
    return [{"upto": None if t.upto is None else str(t.upto), "bps": str(t.bps)} for t in tiers]


def _version_fields(*, method, tiers, flat_annual=0, minimum_annual=0, maximum_annual=None) -> dict:
    if method not in FeeMethod.values:
        raise ValidationError({"method": f"Choose one of {', '.join(FeeMethod.values)}."})
    fields = {
        "method": method,
        "tiers": tiers_clean(tiers),
        "flat_annual": _decimal(flat_annual if flat_annual is not None else 0, "flat_annual"),
        "minimum_annual": _decimal(minimum_annual if minimum_annual is not None else 0, "minimum_annual"),
        "maximum_annual": _decimal(maximum_annual, "maximum_annual", allow_none=True),
    }
    if fields["maximum_annual"] is not None and fields["maximum_annual"] < fields["minimum_annual"]:
        raise ValidationError({"maximum_annual": "The maximum cannot be below the minimum."})
    return fields


def exclusions_clean(*, excluded_instruments=(), excluded_asset_classes=()) -> tuple[list[Instrument], list[str]]:
    """The instruments (ids or ``Instrument``) and asset classes a schedule excludes, checked:
    an instrument this firm cannot see (another firm's own, or none) is refused naming
    ``excluded_instruments[i]``, an unknown asset class ``excluded_asset_classes[i]``."""
    ids = []
    for i, raw in enumerate(excluded_instruments or ()):
        pk = getattr(raw, "pk", raw)
        try:
            ids.append(int(pk))
        except (TypeError, ValueError):
            raise ValidationError({f"excluded_instruments[{i}]": f"{raw!r} is not an instrument id."}) from None
    found = {i.pk: i for i in Instrument.objects.filter(pk__in=ids)}
    for i, pk in enumerate(ids):
        if pk not in found:
            raise ValidationError({f"excluded_instruments[{i}]": f"Unknown instrument {pk}."})
    classes = []
    for i, code in enumerate(excluded_asset_classes or ()):
        if code not in AssetClass.values:
            raise ValidationError(
                {
                    f"excluded_asset_classes[{i}]": f"Unknown asset class {code!r}; known: "
                    + ", ".join(AssetClass.values)
                }
            )
        if code not in classes:
            classes.append(code)
    return list(dict.fromkeys(found[pk] for pk in ids)), classes


def _schedule_name(name: str, *, other_than: int | None = None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "This field is required."})
    taken = FeeSchedule.objects.filter(name__iexact=name)
    if other_than is not None:
        taken = taken.exclude(pk=other_than)
    if taken.exists():
        raise FeeStateConflict({"name": f"A fee schedule named {name!r} exists already."})
    return name


@transaction.atomic
def fee_schedule_create(
    *,
    name: str,
    effective_from: date,
    currency: str = "USD",
    exclude_cash: bool = False,
    excluded_instruments=(),
    excluded_asset_classes=(),
    **terms,
) -> FeeSchedule:
    """A schedule and its first version, effective from ``effective_from``: its terms and the
    cash, instruments and asset classes it excludes from the billable value. Atomic; errors name
    the field."""
    fields = _version_fields(**terms)
    name = _schedule_name(name)
    instruments, classes = exclusions_clean(
        excluded_instruments=excluded_instruments, excluded_asset_classes=excluded_asset_classes
    )
    schedule = FeeSchedule.objects.create(name=name, currency=_currency(currency))
    version = FeeScheduleVersion.objects.create(
        schedule=schedule,
        effective_from=effective_from,
        exclude_cash=bool(exclude_cash),
        excluded_asset_classes=classes,
        **fields,
    )
    version.excluded_instruments.set(instruments)
    return schedule


@transaction.atomic
def fee_schedule_update(
    *, schedule: FeeSchedule, name: str | None = None, archived: bool | None = None, **exclusions
) -> FeeSchedule:
    """Rename, archive (no new product may use it) or restore. ``None`` leaves a field as it
    is. Terms and exclusions are dated: ``fee_schedule_change``. ``exclusions`` (API v1's
    undated exclusion fields, decision 1350) make a new version from today with the rest
    carried over; refused (``FeeStateConflict`` naming the fields) when a version from today
    exists, since history keeps it. Atomic."""
    unknown = set(exclusions) - set(EXCLUSION_FIELDS)
    if unknown:
        raise ValidationError({f: "Not an exclusion of a fee schedule." for f in sorted(unknown)})
    schedule = FeeSchedule.objects.select_for_update().get(pk=schedule.pk)
    if name is not None:
        schedule.name = _schedule_name(name, other_than=schedule.pk)
    if archived is not None:
        schedule.archived = archived
    schedule.save()
    if exclusions:
        today = timezone.localdate()
        if FeeScheduleVersion.objects.filter(schedule=schedule, effective_from=today).exists():
            raise FeeStateConflict(
                {
                    f: f"A version from today ({today.isoformat()}) exists already and history keeps it: "
                    f"date the change with POST /api/v1/fee-schedules/{schedule.pk}/versions/ and effective_from."
                    for f in sorted(exclusions)
                }
            )
        fee_schedule_change(schedule=schedule, effective_from=today, **exclusions)
    return schedule


TERM_FIELDS = ("method", "tiers", "flat_annual", "minimum_annual", "maximum_annual")
EXCLUSION_FIELDS = ("exclude_cash", "excluded_instruments", "excluded_asset_classes")


@transaction.atomic
def fee_schedule_change(*, schedule: FeeSchedule, effective_from: date | None, **changes) -> FeeScheduleVersion:
    """A new version from ``effective_from``: new terms and/or exclusions (decision 1200). What
    ``changes`` leaves out is carried over from the version in effect on that date (or the
    earliest one when the date comes first). Periods before keep the old version: history is
    never rewritten, so a second version on the same date is refused (``effective_from``), as
    is an unknown field. Atomic; errors name the field."""
    unknown = set(changes) - set(TERM_FIELDS) - set(EXCLUSION_FIELDS)
    if unknown:
        raise ValidationError({f: "Not a term or an exclusion of a fee schedule." for f in sorted(unknown)})
    if effective_from is None:
        raise ValidationError({"effective_from": "This field is required: the date the change applies from."})
    FeeSchedule.objects.select_for_update().filter(pk=schedule.pk).first()  # one change at a time
    versions = list(FeeScheduleVersion.objects.filter(schedule=schedule).prefetch_related("excluded_instruments"))
    if any(v.effective_from == effective_from for v in versions):
        raise FeeStateConflict(
            {
                "effective_from": f"A version from {effective_from.isoformat()} exists already: history keeps it. "
                "Date the change from another day."
            }
        )
    base = selectors.schedule_version_on(versions, effective_from) or min(
        versions, key=lambda v: v.effective_from, default=None
    )
    terms = {k: changes[k] for k in TERM_FIELDS if k in changes}
    if base is not None:
        for key in TERM_FIELDS:
            terms.setdefault(key, getattr(base, key))
    elif "method" not in terms or "tiers" not in terms:
        raise ValidationError({"method" if "method" not in terms else "tiers": "This field is required."})
    fields = _version_fields(**terms)
    instruments, classes = exclusions_clean(
        excluded_instruments=changes.get(
            "excluded_instruments", list(base.excluded_instruments.all()) if base is not None else []
        ),
        excluded_asset_classes=changes.get(
            "excluded_asset_classes", base.excluded_asset_classes if base is not None else []
        ),
    )
    exclude_cash = changes.get("exclude_cash", base.exclude_cash if base is not None else False)
    version = FeeScheduleVersion.objects.create(
        schedule=schedule,
        effective_from=effective_from,
        exclude_cash=bool(exclude_cash),
        excluded_asset_classes=classes,
        **fields,
    )
    version.excluded_instruments.set(instruments)
    return version


@transaction.atomic
def product_create(
    *, name: str, currency: str = "USD", description: str = "", flat_fee=None, fee_schedule: FeeSchedule | None = None
) -> Product:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "This field is required."})
    if Product.objects.filter(name__iexact=name).exists():
        raise FeeStateConflict({"name": f"A product named {name!r} exists already."})
    flat = _decimal(flat_fee, "flat_fee", allow_none=True)
    if flat is None and fee_schedule is None:
        raise ValidationError({"fee_schedule": "A product has a flat fee, a fee schedule, or both."})
    currency = _currency(currency)
    if fee_schedule is not None and fee_schedule.archived:
        raise ValidationError({"fee_schedule": f"{fee_schedule.name} is archived."})
    if fee_schedule is not None and fee_schedule.currency != currency:
        raise FeeStateConflict(
            {"fee_schedule": f"The schedule is in {fee_schedule.currency}, the product in {currency}."}
        )
    return Product.objects.create(
        name=name, currency=currency, description=description, flat_fee=flat, fee_schedule=fee_schedule
    )


@transaction.atomic
def product_update(*, product: Product, **changes) -> Product:
    allowed = {"name", "description", "archived"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError({f: "This field cannot be changed; create a new product." for f in sorted(unknown)})
    if "name" in changes:
        name = (changes["name"] or "").strip()
        if not name:
            raise ValidationError({"name": "This field is required."})
        if Product.objects.filter(name__iexact=name).exclude(pk=product.pk).exists():
            raise FeeStateConflict({"name": f"A product named {name!r} exists already."})
        changes["name"] = name
    for key, value in changes.items():
        setattr(product, key, value)
    product.save()
    return product


def _account_opened(portfolio: Portfolio) -> date:
    """The day an account exists from: its first transaction, or the day it was created."""
    info = selectors.account_inception(portfolio=portfolio)
    return info or timezone.localdate(portfolio.created_at)


@transaction.atomic
def billing_group_create(
    *, name: str, client, portfolios: list[Portfolio], currency: str | None = None
) -> BillingGroup:
    """Accounts billed together on their combined value (one account: billed alone). Accounts in
    several currencies need a stated base ``currency``; an account is in one group only."""
    if not portfolios:
        raise ValidationError({"portfolios": "A billing group holds at least one account."})
    currencies = {p.base_currency for p in portfolios}
    if currency:
        currency = _currency(currency)
    elif len(currencies) > 1:
        raise ValidationError(
            {"currency": f"The accounts are in {', '.join(sorted(currencies))}: state the group's base currency."}
        )
    else:
        currency = currencies.pop()
    taken = BillingGroupAccount.objects.filter(portfolio__in=portfolios).select_related("portfolio", "group")
    for row in taken:
        raise FeeStateConflict(
            {"portfolios": f"Account {row.portfolio.name!r} is billed in group {row.group.name!r} already."}
        )
    group = BillingGroup.objects.create(name=(name or "").strip() or str(client), client=client, currency=currency)
    BillingGroupAccount.objects.bulk_create([BillingGroupAccount(group=group, portfolio=p) for p in portfolios])
    return group


@transaction.atomic
def billing_group_update(
    *, group: BillingGroup, name: str | None = None, portfolios: list[Portfolio] | None = None
) -> BillingGroup:
    """Rename the group or change its accounts (from the next run on: issued invoices keep their
    lines). Accounts in another currency than the group's are converted at the measured day's
    rate, as on creation; an account stays in one group only. Atomic; errors name the field."""
    group = BillingGroup.objects.select_for_update().get(pk=group.pk)
    if name is not None:
        name = name.strip()
        if not name:
            raise ValidationError({"name": "This field is required."})
        group.name = name
        group.save(update_fields=["name"])
    if portfolios is not None:
        if not portfolios:
            raise ValidationError({"portfolios": "A billing group holds at least one account."})
        taken = (
            BillingGroupAccount.objects.filter(portfolio__in=portfolios)
            .exclude(group=group)
            .select_related("portfolio", "group")
        )
        for row in taken:
            raise FeeStateConflict(
                {"portfolios": f"Account {row.portfolio.name!r} is billed in group {row.group.name!r} already."}
            )
        keep = {p.pk for p in portfolios}
        BillingGroupAccount.objects.filter(group=group).exclude(portfolio_id__in=keep).delete()
        have = set(BillingGroupAccount.objects.filter(group=group).values_list("portfolio_id", flat=True))
        BillingGroupAccount.objects.bulk_create(
            [BillingGroupAccount(group=group, portfolio=p) for p in portfolios if p.pk not in have]
        )
    return group


@transaction.atomic
def subscription_create(
    *,
    group: BillingGroup,
    product: Product,
    starts_on: date,
    frequency: str = Frequency.QUARTERLY,
    timing: str = "arrears_adb",
    day_count: str = "actual_365",
    collection: str = Collection.INVOICE,
    ends_on: date | None = None,
) -> ClientSubscription:
    """A client (or household) subscribes to a product from ``starts_on``."""
    if product.archived:
        raise ValidationError({"product": f"{product.name} is archived."})
    if product.currency != group.currency:
        raise ValidationError(
            {"product": f"The product is in {product.currency}, the group bills in {group.currency}."}
        )
    if ends_on is not None and ends_on < starts_on:
        raise ValidationError({"ends_on": "Cannot end before it starts."})
    opened = min(_account_opened(p) for p in group.portfolios.all())
    if starts_on < opened:
        raise ValidationError(
            {"starts_on": f"The group's accounts exist from {opened.isoformat()}: a subscription cannot start before."}
        )
    return ClientSubscription.objects.create(
        group=group,
        product=product,
        starts_on=starts_on,
        ends_on=ends_on,
        frequency=frequency,
        timing=timing,
        day_count=day_count,
        collection=collection,
    )


@transaction.atomic
def subscription_end(*, subscription: ClientSubscription, ends_on: date) -> ClientSubscription:
    """Termination: the last period is billed pro rata to ``ends_on`` (inclusive)."""
    if ends_on < subscription.starts_on:
        raise ValidationError({"ends_on": "Cannot end before it starts."})
    subscription.ends_on = ends_on
    subscription.save(update_fields=["ends_on"])
    return subscription


# --- fee runs ---------------------------------------------------------------------------------------


@dataclass
class RunCounts:
    groups: int
    ready: int
    with_problems: int
    skipped: int


Progress = Callable[[int, int], None]


def _period_checked(period_start: date, period_end: date, frequency: str) -> None:
    if frequency not in Frequency.values:
        raise ValidationError({"frequency": f"Choose one of {', '.join(Frequency.values)}."})
    try:
        engine.period_check(period_start, period_end, frequency)
    except engine.FeeRuleError as exc:
        raise _rule_error(exc) from None


def fee_run_preview(
    *, period_start: date, period_end: date, frequency: str, actor=None, progress: Progress | None = None
) -> FeeRun:
    """Compute every fee of the period (subscriptions of ``frequency``) into a run in preview:
    per group, per account, what would be invoiced; accounts with missing valuations are listed
    with their days and their group is not issued. Groups invoiced for the period already are
    marked skipped. ``progress(done, total)`` hears of the billing groups computed. Atomic;
    writes nothing but the run and its items."""
    _period_checked(period_start, period_end, frequency)
    previews = selectors.period_previews(
        period_start=period_start, period_end=period_end, frequency=frequency, progress=progress
    )
    with transaction.atomic():
        run = FeeRun.objects.create(
            period_start=period_start,
            period_end=period_end,
            frequency=frequency,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        FeeRunItem.objects.bulk_create(
            [
                FeeRunItem(
                    run=run,
                    group_id=p.group_id,
                    currency=p.currency,
                    total=p.total,
                    lines=p.lines,
                    problems=p.problems,
                    skipped=p.skipped,
                )
                for p in previews
            ],
            batch_size=1000,
        )
        _run_ready_notify(run, len(previews), actor)
    return run


def _run_ready_notify(run: FeeRun, groups: int, actor) -> None:
    """Owners and admins (who approve and issue runs) hear that a run waits for review; the one
    who started it knows already."""
    managers = User.objects.filter(role__in=list(MANAGER_ROLES), is_active=True).exclude(pk=getattr(actor, "pk", None))
    notification_send(
        recipients=managers.values_list("pk", flat=True),
        kind=NotificationKind.FEE_RUN,
        title=f"Fee run {run.period_start:%d %b %Y} to {run.period_end:%d %b %Y} is ready for review",
        body=f"{groups} billing groups",
        url=f"/fees/runs/{run.pk}/",
        source=f"fee-run:{run.pk}",
    )


def _locked_run(run: FeeRun) -> FeeRun:
    return FeeRun.objects.select_for_update().get(pk=run.pk)


@transaction.atomic
def fee_run_approve(*, run: FeeRun, actor) -> FeeRun:
    """The owner's approval of a preview; only an approved run issues."""
    run = _locked_run(run)
    if run.status != RunStatus.PREVIEW:
        raise ValidationError({"status": f"Only a run in preview can be approved; this one is {run.status}."})
    run.status, run.approved_by, run.approved_at = (
        RunStatus.APPROVED,
        actor if getattr(actor, "pk", None) else None,
        timezone.now(),
    )
    run.save(update_fields=["status", "approved_by", "approved_at"])
    return run


def _number(issued_on: date) -> str:
    return f"FEE-{issued_on.year}-{next_gapless_number(counter=FeeInvoiceCounter, year=issued_on.year):06d}"


ISSUE_PROGRESS_EVERY = 200


def fee_run_issue(
    *, run: FeeRun, actor=None, issued_on: date | None = None, progress: Progress | None = None
) -> RunCounts:
    """Issue the approved run: one fee invoice per ready group, numbered gaplessly, with a line
    per subscription and account; "deduct from account" books the fee in the account's ledger on
    the invoice date; then a PDF statement per invoice. All or nothing: one transaction holding
    the run's lock (a second issue waits, then finds it issued), each group in its own savepoint:
    a group invoiced for the period already (by another run, even at the same moment) is refused
    by the database constraint and skipped, and the savepoint's rollback returns its number. Any
    other failure rolls the whole issue back: no invoice, the run still approved.
    ``progress(done, total)`` hears of the groups issued every ``ISSUE_PROGRESS_EVERY``."""
    issued_on = issued_on or timezone.localdate()
    firm = current_tenant()
    issued = []
    with transaction.atomic():
        run = _locked_run(run)
        if run.status != RunStatus.APPROVED:
            raise ValidationError({"status": f"Approve the run before issuing it; it is {run.status}."})
        run.status, run.issued_at = RunStatus.ISSUED, timezone.now()
        run.save(update_fields=["status", "issued_at"])
        items = list(FeeRunItem.objects.filter(run=run).select_related("group__client"))
        counts = RunCounts(groups=len(items), ready=0, with_problems=0, skipped=0)
        portfolios = {
            p.pk: p
            for p in Portfolio.objects.filter(pk__in={line["portfolio"] for item in items for line in item.lines})
        }
        ready = []
        for item in items:
            if item.problems:
                counts.with_problems += 1
            elif item.skipped or not item.lines:
                counts.skipped += 1
            else:
                ready.append(item)
        for done, item in enumerate(ready, start=1):
            try:
                with transaction.atomic():
                    issued.append(_issue_item(run, item, issued_on, portfolios, actor))
            except IntegrityError:
                counts.skipped += 1  # invoiced for the period already: exactly once
            if progress is not None and (done % ISSUE_PROGRESS_EVERY == 0 or done == len(ready)):
                progress(done, len(ready))
        counts.ready = len(issued)
    # After the invoices' commit: a file write cannot roll back with them.
    fee_statements_store_new(issued=issued, firm_name=firm.name, brand_colour=firm.brand_color)
    return counts


# --- fee runs as background jobs (decision 1201) -------------------------------------------------------

JOB_PROGRESS_TTL = 24 * 3600


def _progress_key(job_id: int) -> str:
    return f"fees:run-job:{job_id}:progress"  # the firm cache's key function adds the firm


def fee_run_job_progress(*, job: FeeRunJob) -> tuple[int, int] | None:
    """``(done, total)`` billing groups of a running job, or None while nothing is counted (or
    the cache is away: the page then shows a busy bar, the job goes on)."""
    try:
        value = cache.get(_progress_key(job.pk))
    except RedisError as exc:
        logger.warning("fee run job progress unreadable: %s", exc)
        return None
    return (int(value[0]), int(value[1])) if value else None


def _progress_writer(job_id: int) -> Progress:
    def write(done: int, total: int) -> None:
        try:
            cache.set(_progress_key(job_id), (done, total), JOB_PROGRESS_TTL)
        except RedisError as exc:  # the bar is a hint: the job goes on without it
            logger.warning("fee run job progress not stored: %s", exc)

    return write


def fee_run_preview_queue(*, period_start: date, period_end: date, frequency: str, actor) -> FeeRunJob:
    """Start a period's preview in the background: the period is checked now (errors name the
    field), the job is queued when this commits; ``fee_run_job_perform`` does the work."""
    _period_checked(period_start, period_end, frequency)
    with transaction.atomic():
        job = FeeRunJob.objects.create(
            kind=JobKind.PREVIEW,
            period_start=period_start,
            period_end=period_end,
            frequency=frequency,
            created_by=actor if getattr(actor, "pk", None) else None,
            heartbeat_at=timezone.now(),
        )
        _queue(job)
    return job


def fee_run_issue_queue(*, run: FeeRun, actor, issued_on: date | None = None) -> FeeRunJob:
    """Start issuing an approved run in the background. Refused (``status``) when the run is not
    approved or is being issued already (a second click; the database admits one active issue
    job per run)."""
    with transaction.atomic():
        try:
            # nowait: an issue in progress holds the run's lock for its whole transaction; the page
            # must answer at once, not wait for it.
            run = FeeRun.objects.select_for_update(nowait=True).get(pk=run.pk)
        except OperationalError:
            raise FeeStateConflict({"status": "This run is being issued already."}) from None
        if run.status != RunStatus.APPROVED:  # the run's state, not the request's shape: 409 in the API
            raise FeeStateConflict({"status": f"Approve the run before issuing it; it is {run.status}."})
        if FeeRunJob.objects.filter(run=run, kind=JobKind.ISSUE, status__in=ACTIVE_JOB).exists():
            raise FeeStateConflict({"status": "This run is being issued already."})
        job = FeeRunJob.objects.create(
            kind=JobKind.ISSUE,
            run=run,
            period_start=run.period_start,
            period_end=run.period_end,
            frequency=run.frequency,
            issued_on=issued_on,
            created_by=actor if getattr(actor, "pk", None) else None,
            heartbeat_at=timezone.now(),
        )
        _queue(job)
    return job


ACTIVE_JOB = (JobStatus.QUEUED, JobStatus.RUNNING)


def _queue(job: FeeRunJob) -> None:
    from .tasks import fee_run_job  # function-level: the task calls back into these services

    # robust: a broker that is away fails the queueing after commit, not the request (0933)
    transaction.on_commit(partial(fee_run_job.delay, job_id=job.pk), robust=True)


def fee_run_job_perform(*, job_id: int) -> dict:
    """The background half of the queue functions: run the preview or the issue as the member
    who started it, counting progress, and record how it ended on the job (with a notification to
    that member). A refusal (``ValidationError``: the run no longer approved, the period) and any
    other failure leave nothing written (both services are atomic) and end the job ``failed``
    with the reason; an unexpected error is recorded, then raised again for the worker's log.
    A job no longer queued (an earlier delivery ran it, or the sweep ended it) is left alone."""
    claimed = FeeRunJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, heartbeat_at=timezone.now()
    )
    if not claimed:
        return {"job": job_id, "skipped": True}
    job = FeeRunJob.objects.select_related("run", "created_by").get(pk=job_id)
    progress = _progress_writer(job.pk)
    try:
        with transaction.atomic():
            # The job's row stays locked while its work runs (the work's own transaction nests in
            # this one): the sweep (skip_locked) never ends a job that is alive, however long.
            FeeRunJob.objects.select_for_update().filter(pk=job_id).exists()
            message = _job_work(job, job.created_by, progress)
    except ValidationError as exc:
        _job_end(job, JobStatus.FAILED, " ".join(exc.messages))
        return {"job": job_id, "status": JobStatus.FAILED, "error": job.message}
    except Exception as exc:
        # Recorded so the page stops waiting and says what failed; raised again, never hidden.
        _job_end(job, JobStatus.FAILED, f"The {job.kind} failed ({type(exc).__name__}: {exc}); nothing was written.")
        raise
    _job_end(job, JobStatus.DONE, message)
    return {"job": job_id, "status": JobStatus.DONE, "run": job.run_id}


def _job_work(job: FeeRunJob, actor, progress: Progress) -> str:
    """The preview or the issue itself; returns the message the page shows when it is done."""
    if job.kind == JobKind.PREVIEW:
        run = fee_run_preview(
            period_start=job.period_start,
            period_end=job.period_end,
            frequency=job.frequency,
            actor=actor,
            progress=progress,
        )
        job.run = run
        groups = run.items.count()
        job.result = {"run": run.pk, "groups": groups}
        return f"Preview of {groups} billing group(s) computed: check it, then approve."
    if job.run is None:  # the run went (its jobs go with it): nothing to issue
        raise ValidationError({"run": "The run no longer exists."})
    counts = fee_run_issue(run=job.run, actor=actor, issued_on=job.issued_on, progress=progress)
    job.result = {"run": job.run.pk, **asdict(counts)}
    return (
        f"{counts.ready} invoice(s) issued; {counts.with_problems} group(s) held back by missing data; "
        f"{counts.skipped} skipped (invoiced already or nothing to bill)."
    )


def fee_run_jobs_sweep(*, now=None) -> list[int]:
    """Celery beat, per firm (decision 1220, as for the imports): a job still queued or running
    ``IMPORT_JOB_STALE_SECONDS`` after its last sign of life, whose row no work holds (its task
    was lost, or its worker died for good), ends ``failed`` with the reason, and the member who
    started it is notified (``_job_end``). Nothing was written by it: the preview and the issue
    are each one transaction, rolled back with the worker. A late delivery of the task finds the
    job no longer queued and does nothing. Returns the ids swept. Idempotent. The kernel is
    ``codex.stale_jobs`` (decision 1352)."""
    return stale_jobs_sweep(
        active=FeeRunJob.objects.filter(status__in=ACTIVE_JOB).select_related("created_by"),
        what="fee run job",
        reason=lambda job, seen: f"The {job.kind} stopped: {silence(seen)}. Nothing was written; start it again.",
        end=lambda job, reason, at: _job_end(job, JobStatus.FAILED, reason),
        log=logger,
        log_extra=lambda job: {"fee_run_job_id": job.pk, "kind": job.kind},
        now=now,
    )


def _job_end(job: FeeRunJob, status: str, message: str) -> None:
    job.status, job.message, job.finished_at = status, message[:1000], timezone.now()
    with transaction.atomic():
        job.save(update_fields=["status", "message", "finished_at", "run", "result"])
        if job.created_by_id is not None:
            done = status == JobStatus.DONE
            what = "Fee run preview" if job.kind == JobKind.PREVIEW else "Fee run issue"
            notification_send(
                recipients=[job.created_by_id],
                kind=NotificationKind.FEE_RUN,
                title=f"{what} {job.period_start:%d %b %Y} to {job.period_end:%d %b %Y} "
                + ("finished" if done else "failed"),
                body=message[:500],
                url=f"/fees/runs/{job.run_id}/" if job.run_id else "/fees/runs/",
                source=f"fee-run-job:{job.pk}",
            )


def _issue_item(
    run: FeeRun, item: FeeRunItem, issued_on: date, portfolios: dict, actor
) -> tuple[FeeInvoice, list[FeeInvoiceLine]]:
    collection = item.lines[0]["collection"]
    invoice = FeeInvoice(
        number="",
        run=run,
        group=item.group,
        client=item.group.client,
        period_start=run.period_start,
        period_end=run.period_end,
        issued_on=issued_on,
        due_on=issued_on + timedelta(days=DUE_DAYS),
        currency=item.currency,
        total=item.total,
        collection=collection,
    )
    if collection == Collection.DEDUCT:
        # Taken from the accounts on the invoice date: collected as it is issued.
        invoice.status, invoice.paid_on = InvoiceStatus.PAID, issued_on
    # The number is taken in the group's own transaction: when the constraint refuses the insert
    # (invoiced already), the rollback returns the number with it, so numbers stay gapless.
    invoice.number = _number(issued_on)
    invoice.save()
    lines = []
    for line in item.lines:
        row = FeeInvoiceLine(
            invoice=invoice,
            subscription_id=line["subscription"],
            portfolio_id=line["portfolio"],
            description=line["description"],
            billable_value=Decimal(line["billable_value"]),
            days=line["days"],
            rate_bps=Decimal(line["rate_bps"]),
            amount=Decimal(line["fee"]),
        )
        if line["collection"] == Collection.DEDUCT and row.amount > 0:
            row.fee_transaction = portfolio_services.transaction_record(
                portfolio=portfolios[line["portfolio"]],
                kind=Kind.FEE,
                trade_date=issued_on,
                amount=row.amount,
                currency=item.currency,
                note=f"Advisory fee {run.period_start:%Y-%m-%d} to {run.period_end:%Y-%m-%d}",
                created_by=actor,
                today=max(issued_on, timezone.localdate()),
            )
        lines.append(row)
    FeeInvoiceLine.objects.bulk_create(lines)
    # In the group's savepoint: an invoice the constraint refuses leaves no event either.
    _invoice_event("fee_invoice.issued", invoice)
    if invoice.status == InvoiceStatus.PAID:  # deducted from the accounts: collected as issued
        _invoice_event("fee_invoice.paid", invoice)
    return invoice, lines


def _invoice_event(type: str, invoice: FeeInvoice) -> None:  # noqa: A002 (the event's field name)
    event_emit(type=type, data=events.fee_invoice_data(invoice), resource=f"fee_invoice:{invoice.pk}")


def _locked_invoice(invoice: FeeInvoice) -> FeeInvoice:
    return FeeInvoice.objects.select_for_update().get(pk=invoice.pk)


@transaction.atomic
def fee_invoice_void(*, invoice: FeeInvoice, reason: str) -> FeeInvoice:
    """Void with a reason; fees deducted from accounts are taken out of their ledgers again.
    The number stays used (gapless numbering counts voided invoices). The group may then be
    invoiced again for the period."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the invoice is voided."})
    invoice = _locked_invoice(invoice)
    if invoice.status == InvoiceStatus.VOID:
        raise ValidationError({"status": "This invoice is void already."})
    if invoice.kind == InvoiceKind.INVOICE and invoice.credit_notes.exclude(status=InvoiceStatus.VOID).exists():
        raise ValidationError({"status": "This invoice has credit notes: void them first."})
    for line in invoice.lines.select_related("fee_transaction"):
        if line.fee_transaction is not None:
            txn = line.fee_transaction
            line.fee_transaction = None
            line.save(update_fields=["fee_transaction"])
            portfolio_services.transaction_delete(txn=txn)
    invoice.status, invoice.void_reason = InvoiceStatus.VOID, reason
    invoice.save(update_fields=["status", "void_reason"])
    _invoice_event("fee_invoice.voided", invoice)
    return invoice


@transaction.atomic
def fee_credit_note(*, invoice: FeeInvoice, amount, reason: str, issued_on: date | None = None) -> FeeInvoice:
    """A credit note against an issued invoice, for at most what is left of it; numbered in the
    same gapless sequence. Money back on a deducted fee is booked as a negative line only (the
    firm refunds it by a deposit in the ledger, its own decision)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the credit is given."})
    amount = _decimal(amount, "amount")
    if amount == 0:
        raise ValidationError({"amount": "A credit note is for more than zero."})
    invoice = _locked_invoice(invoice)
    if invoice.kind != InvoiceKind.INVOICE or invoice.status == InvoiceStatus.VOID:
        raise ValidationError({"invoice": "Credit notes are for issued, not voided, invoices."})
    credited = sum((-c.total for c in invoice.credit_notes.exclude(status=InvoiceStatus.VOID)), Decimal(0))
    if amount > invoice.total - credited:
        raise ValidationError({"amount": f"At most {invoice.total - credited} {invoice.currency} is left to credit."})
    issued_on = issued_on or timezone.localdate()
    note = FeeInvoice.objects.create(
        number=_number(issued_on),
        kind=InvoiceKind.CREDIT_NOTE,
        group=invoice.group,
        client=invoice.client,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        issued_on=issued_on,
        due_on=issued_on,
        currency=invoice.currency,
        total=-amount,
        collection=invoice.collection,
        status=InvoiceStatus.PAID,
        paid_on=issued_on,
        void_reason="",
        credit_of=invoice,
    )
    FeeInvoiceLine.objects.create(invoice=note, description=f"Credit: {reason}", amount=-amount)
    _invoice_event("fee_invoice.issued", note)
    return note


@transaction.atomic
def fee_invoice_mark_paid(*, invoice: FeeInvoice, paid_on: date | None = None) -> FeeInvoice:
    invoice = _locked_invoice(invoice)
    if invoice.status != InvoiceStatus.OPEN:
        raise ValidationError({"status": f"Only an open invoice can be marked paid; this one is {invoice.status}."})
    invoice.status, invoice.paid_on = InvoiceStatus.PAID, paid_on or timezone.localdate()
    invoice.save(update_fields=["status", "paid_on"])
    _invoice_event("fee_invoice.paid", invoice)
    return invoice


def fraction_str(value: Fraction, places: int = 2) -> str:
    return str(engine.round_half_up(value, places))
