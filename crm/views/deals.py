"""Deal pages and the pipeline (its board and its stages)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count, F, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from codex.idempotent_forms import idempotent_form

from .. import access, forms, selectors, services
from ..models import DealStatus, PipelineStage, StageKind
from .common import _page, _querystring

# --- deals and the pipeline -------------------------------------------------------------------------


DEAL_SORTS = {
    "title": "title",
    "contact": ("contact__last_name", "contact__first_name"),
    "stage": ("stage__position", "stage__pk"),
    "amount": "amount",
    "probability": "probability",
    "expected": F("expected_close").desc(nulls_last=True),
    "owner": ("owner__last_name", "owner__first_name", "owner__email"),
}


@login_required
def deal_list(request):
    f = {k: request.GET.get(k, "").strip() for k in ("q", "status", "stage")}
    return render(
        request,
        "crm/deal_list.html",
        {
            "page": _page(request, selectors.deal_list(user=request.user, **f), sorts=DEAL_SORTS, default="-expected"),
            "filters": f,
            "statuses": DealStatus.choices,
            "stages": services.pipeline_stages_ensure(),
            "qs": _querystring(request),
            "can_write": access.can_write(request.user),
        },
    )


@login_required
@idempotent_form
def deal_create(request):
    access.require_write(request.user)
    services.pipeline_stages_ensure()
    initial = {}
    if request.GET.get("contact", "").isdigit():
        initial["contact"] = request.GET["contact"]
    form = forms.DealForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        shared = data.pop("shared_with", None) or ()
        try:
            deal = services.deal_create(actor=request.user, shared_with=shared, **data)
        except ValidationError as exc:
            forms.apply_errors(form, exc)
        else:
            messages.success(request, f"Deal “{deal}” was added.")
            return redirect("crm:deal-detail", deal.pk)
    return render(request, "crm/form.html", {"form": form, "title": "New deal", "cancel": reverse("crm:pipeline")})


@login_required
def deal_detail(request, pk: int):
    deal = access.deal_for_user(
        request.user, pk, queryset=access.deals_for(request.user).select_related("stage", "contact", "company", "owner")
    )
    return render(
        request,
        "crm/deal_detail.html",
        {
            "deal": deal,
            "history": deal.stage_changes.select_related("from_stage", "to_stage", "changed_by"),
            "activities": access.activities_for(request.user).filter(deal=deal).select_related("owner")[:50],
            "move_form": forms.DealMoveForm(initial={"stage": deal.stage_id}),
            "can_write": access.can_write(request.user),
        },
    )


@login_required
def deal_edit(request, pk: int):
    deal = access.deal_for_user(request.user, pk, write=True)
    form = forms.DealForm(request.POST or None, instance=deal, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        shared = data.pop("shared_with", None)
        if data.get("probability") is None:
            data["probability"] = deal.stage.probability
        try:
            services.deal_update(actor=request.user, deal=deal, shared_with=shared, **data)
        except ValidationError as exc:
            forms.apply_errors(form, exc)
        else:
            messages.success(request, "Saved.")
            return redirect("crm:deal-detail", deal.pk)
    return render(
        request,
        "crm/form.html",
        {"form": form, "title": f"Edit {deal}", "cancel": reverse("crm:deal-detail", args=[deal.pk])},
    )


@login_required
@require_POST
def deal_move(request, pk: int):
    """The board's per-card form (works without JavaScript; the drag-and-drop script posts it too)."""
    deal = access.deal_for_user(request.user, pk, write=True)
    form = forms.DealMoveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a stage.")
    else:
        try:
            deal = services.deal_move(
                actor=request.user, deal=deal, stage=form.cleaned_data["stage"], reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            messages.error(request, f"“{deal}” was not moved: {' '.join(exc.messages)}")
        else:
            messages.success(request, f"“{deal}” is now in {deal.stage}.")
    target = request.POST.get("next", "")
    if target == "deal":
        return redirect("crm:deal-detail", deal.pk)
    return redirect(reverse("crm:pipeline") + f"#deal-{deal.pk}")


@login_required
def pipeline(request):
    board = selectors.pipeline_board(user=request.user)
    return render(
        request,
        "crm/pipeline.html",
        {"board": board, "can_write": access.can_write(request.user), "StageKind": StageKind},
    )


@login_required
@idempotent_form
def pipeline_stages(request, pk: int | None = None):
    """The firm's stages: everyone sees them, owners and admins add and change them."""
    services.pipeline_stages_ensure()
    stage = get_object_or_404(PipelineStage, pk=pk) if pk else None
    form = forms.PipelineStageForm(request.POST or None, instance=stage, prefix=f"s{pk or 'new'}")
    if request.method == "POST":
        access.require_manager_or_key(request.user)
        if form.is_valid():
            try:
                saved = services.pipeline_stage_save(actor=request.user, stage=stage, **form.cleaned_data)
            except ValidationError as exc:
                forms.apply_errors(form, exc)
            else:
                messages.success(request, f"Stage “{saved}” saved.")
                return redirect("crm:pipeline-stages")
    stages = PipelineStage.objects.annotate(open_deals=Count("deals", filter=Q(deals__status=DealStatus.OPEN)))
    rows = [
        (s, form if stage is not None and s.pk == stage.pk else forms.PipelineStageForm(instance=s, prefix=f"s{s.pk}"))
        for s in stages
    ]
    new_form = form if stage is None else forms.PipelineStageForm(prefix="snew")
    return render(
        request,
        "crm/pipeline_stages.html",
        {"rows": rows, "new_form": new_form, "can_manage": access.can_assign_owner(request.user)},
        status=400 if form.errors else 200,
    )
