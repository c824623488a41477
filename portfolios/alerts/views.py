"""The alerts page at /portfolios/alerts/: notifications, rules and a form to add one."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Exists, F, OuterRef
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from billing.entitlements import PlanLimitExceeded
from codex.idempotent_forms import idempotent_form
from codex.tables import Sortable, table_page

from . import selectors, services
from .forms import AlertEventFilterForm, AlertRuleForm
from .models import AlertNotification


def _apply_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errs in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errs)
    else:
        form.add_error(None, exc.messages)


EVENT_SORTS = {"fired": "fired_at", "observed": "observed_on", "kind": "rule__kind", "message": "message"}
RULE_SORTS: dict[str, Sortable] = {
    "rules.created": "created_at",
    "rules.kind": "kind",
    "rules.watching": (F("instrument__symbol").asc(nulls_last=True), F("portfolio__name").asc(nulls_last=True)),
    "rules.state": ("active", "armed"),
}


@login_required
@idempotent_form
def alert_list(request):
    user = request.user
    form = AlertRuleForm(request.POST or None, user=user)
    if request.method == "POST":
        if not user.can_write:
            messages.error(request, "Your role may read alerts but not change them.")
            return redirect("portfolios:alerts:list")
        if form.is_valid():
            try:
                services.alert_rule_create(actor=user, tenant=request.tenant, **form.cleaned_data)
            except ValidationError as exc:
                _apply_errors(form, exc)
            except PlanLimitExceeded as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, "Alert created. It is checked after each price import.")
                return redirect("portfolios:alerts:list")
    unread = AlertNotification.objects.filter(event_id=OuterRef("pk"), recipient_id=user.pk, read_at__isnull=True)
    filters = AlertEventFilterForm(request.GET)
    events = filters.filter(selectors.events_visible_to(user).annotate(unread=Exists(unread)))
    table = table_page(request, events.select_related("rule"), sorts=EVENT_SORTS, default="-fired", per_page=25)
    # The rules' table: its own page parameter and sort keys (the events' table owns "page").
    rules = table_page(
        request,
        selectors.rules_visible_to(user).select_related("instrument", "portfolio", "created_by"),
        sorts=RULE_SORTS,
        default="-rules.created",
        per_page=25,
        page_param="rules_page",
    )
    return render(
        request,
        "alerts/list.html",
        {
            "form": form,
            "events": table.page,
            "filters": filters,
            "table_sort": table.sort,
            "rules": rules.page,
            "unread_count": selectors.unread_count(user),
            "can_write": user.can_write,
        },
    )


@login_required
@require_POST
def rule_toggle(request, pk: int):
    rule = selectors.rule_for_user(request.user, pk, write=True)
    services.alert_rule_update(actor=request.user, rule=rule, active=not rule.active)
    messages.success(request, f"Alert {'resumed' if rule.active else 'paused'}.")
    return redirect("portfolios:alerts:list")


@login_required
@require_POST
def rule_delete(request, pk: int):
    rule = selectors.rule_for_user(request.user, pk, write=True)
    services.alert_rule_delete(actor=request.user, rule=rule)
    messages.success(request, "Alert deleted.")
    return redirect("portfolios:alerts:list")


@login_required
@require_POST
def mark_read(request):
    marked = services.alert_notifications_mark_read(user=request.user)
    messages.success(request, f"{marked} notification(s) marked read.")
    return redirect("portfolios:alerts:list")
