"""Billing writes: subscriptions, plan changes, invoices, payments, webhooks, dunning, usage snapshots.

Every service that changes money or state locks the rows it reads (``select_for_update``) inside one
``transaction.atomic()`` block, so concurrent callers (two invoice runs, a webhook and an operator,
two dunning runs) serialise; the database constraints (one invoice per subscription and period, one
payment per provider id, one webhook row per event id, one dunning notice per offset) are the last
line of defence. Calculations come from the pure modules ``money``, ``proration`` and ``dunning``.

One module per part, in the order they depend on each other: ``common`` (errors, locks, settling a
firm), ``invoicing``, ``subscriptions`` (a plan change invoices at once), ``payments`` (with
webhooks), ``dunning``, ``usage``. The public names are re-exported here, so
``from billing.services import invoice_run`` keeps working; a test that replaces a function
patches the module that reads it (``billing.services.subscriptions``...).
"""

from .common import BILLABLE_STATUSES, ZERO, BillingStateError, DowngradeRefused, UnknownPlan
from .dunning import DunningRunResult, dunning_policy, dunning_run
from .invoicing import InvoiceRunResult, invoice_finalize, invoice_mark_uncollectible, invoice_run, invoice_void
from .payments import ProviderEvent, invoice_mark_paid, payment_record, webhook_event_apply
from .subscriptions import (
    PlanChangePreview,
    PlanChangeResult,
    plan_checked,
    plan_get,
    plans_seed,
    subscription_cancel,
    subscription_change_plan,
    subscription_change_preview,
    subscription_reactivate,
    subscription_start_trial,
    subscription_start_trial_for_code,
)
from .usage import usage_snapshot

__all__ = [
    "BILLABLE_STATUSES",
    "ZERO",
    "BillingStateError",
    "DowngradeRefused",
    "DunningRunResult",
    "InvoiceRunResult",
    "PlanChangePreview",
    "PlanChangeResult",
    "ProviderEvent",
    "UnknownPlan",
    "dunning_policy",
    "dunning_run",
    "invoice_finalize",
    "invoice_mark_paid",
    "invoice_mark_uncollectible",
    "invoice_run",
    "invoice_void",
    "payment_record",
    "plan_checked",
    "plan_get",
    "plans_seed",
    "subscription_cancel",
    "subscription_change_plan",
    "subscription_change_preview",
    "subscription_reactivate",
    "subscription_start_trial",
    "subscription_start_trial_for_code",
    "usage_snapshot",
    "webhook_event_apply",
]
