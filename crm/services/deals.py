"""The pipeline's stages and deals: create, update, move between stages, close as won or lost."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from codex.outbox.services import event_emit

from .. import access, events
from ..models import Deal, DealStageChange, DealStatus, PipelineStage, StageKind
from .common import DEAL_FIELDS, DEFAULT_STAGES, NameTaken, _actor_user, _check_linked_visible, _full_clean, _owner_for

# --- pipeline ---------------------------------------------------------------------------------------


def pipeline_stages_ensure() -> list[PipelineStage]:
    """The firm's stages; the defaults are created on first use if a firm has none (idempotent)."""
    stages = list(PipelineStage.objects.filter(is_active=True))
    if stages:
        return stages
    with transaction.atomic():
        if not PipelineStage.objects.exists():
            PipelineStage.objects.bulk_create(
                PipelineStage(name=name, position=i, probability=p, kind=kind)
                for i, (name, p, kind) in enumerate(DEFAULT_STAGES, start=1)
            )
    return list(PipelineStage.objects.filter(is_active=True))


def pipeline_stage_save(*, actor, stage: PipelineStage | None = None, **fields) -> PipelineStage:
    """Create or change a stage (managers only). Names are unique per firm, case-insensitive
    (``NameTaken`` otherwise)."""
    access.require_manager_or_key(actor)
    stage = stage or PipelineStage()
    for name, value in fields.items():
        setattr(stage, name, value)
    stage.name = (stage.name or "").strip()
    _full_clean(stage)
    if PipelineStage.objects.filter(name__iexact=stage.name).exclude(pk=stage.pk).exists():
        raise NameTaken({"name": "A stage with this name exists."})
    if stage.pk and not stage.is_active and stage.deals.filter(status=DealStatus.OPEN).exists():
        raise ValidationError({"is_active": "Move this stage's open deals first."})
    stage.save()
    return stage


def _money(value, field="amount") -> Decimal:
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError({field: "Enter an amount such as 1250.00."}) from exc
    if amount < 0:
        raise ValidationError({field: "The amount cannot be negative."})
    return amount


def _currency(value) -> str:
    code = (value or "").strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise ValidationError({"currency": "Use a three-letter ISO currency code such as USD."})
    return code


def deal_create(*, actor, title: str, stage: PipelineStage | None = None, shared_with=(), **fields) -> Deal:
    """Create a deal in ``stage`` (the first open stage by default); records the first stage change."""
    access.require_write(actor)
    unknown = set(fields) - set(DEAL_FIELDS)
    if unknown:
        raise TypeError(f"unknown deal fields: {sorted(unknown)}")
    stages = pipeline_stages_ensure()
    stage = stage or next(s for s in stages if s.kind == StageKind.OPEN)
    owner = _owner_for(actor, fields.pop("owner", None))
    deal = Deal(title=(title or "").strip(), stage=stage, owner=owner, **fields)
    deal.amount = _money(deal.amount)
    deal.currency = _currency(deal.currency)
    if "probability" not in fields or fields["probability"] is None:
        deal.probability = stage.probability
    _apply_stage_status(deal, stage)
    _full_clean(deal)
    _check_linked_visible(actor, contact=deal.contact, company=deal.company)
    with transaction.atomic():
        deal.save()
        if shared_with:
            deal.shared_with.set(shared_with)
        DealStageChange.objects.create(deal=deal, from_stage=None, to_stage=stage, changed_by=_actor_user(actor))
    return deal


def deal_update(*, actor, deal: Deal, shared_with=None, **fields) -> Deal:
    access.require_write(actor)
    unknown = set(fields) - set(DEAL_FIELDS)
    if unknown:
        raise TypeError(f"unknown deal fields: {sorted(unknown)}")
    if "owner" in fields:
        new_owner = fields.pop("owner")
        if new_owner != deal.owner:
            if not access.can_assign_owner(actor):
                raise ValidationError({"owner": "Only owners and admins give a record to someone else."})
            deal.owner = new_owner
    for name, value in fields.items():
        setattr(deal, name, value)
    deal.amount = _money(deal.amount)
    deal.currency = _currency(deal.currency)
    _full_clean(deal)
    _check_linked_visible(
        actor,
        contact=deal.contact if "contact" in fields else None,
        company=deal.company if "company" in fields else None,
    )
    with transaction.atomic():
        deal.save()
        if shared_with is not None:
            deal.shared_with.set(shared_with)
    return deal


def _apply_stage_status(deal: Deal, stage: PipelineStage, reason: str = "") -> None:
    if stage.kind == StageKind.OPEN:
        deal.status, deal.closed_at, deal.close_reason = DealStatus.OPEN, None, ""
    else:
        deal.status = DealStatus.WON if stage.kind == StageKind.WON else DealStatus.LOST
        deal.closed_at = deal.closed_at or timezone.now()
        deal.close_reason = reason or deal.close_reason


def deal_move(*, actor, deal: Deal, stage: PipelineStage, reason: str = "") -> Deal:
    """Move a deal to ``stage`` (a won/lost stage closes it, an open one reopens it), recording the
    change in the deal's history. Moving to the stage it is in does nothing. Atomic; the deal row is
    locked so two concurrent moves are serialised."""
    access.require_write(actor)
    if not stage.is_active:
        raise ValidationError({"stage": "This stage is no longer used."})
    if stage.kind == StageKind.LOST and not (reason or "").strip():
        raise ValidationError({"reason": "Say why the deal was lost."})
    with transaction.atomic():
        locked = Deal.objects.select_for_update().get(pk=deal.pk)
        if locked.stage_id == stage.pk:
            return locked
        previous = locked.stage
        locked.stage = stage
        locked.probability = stage.probability
        if stage.kind != StageKind.OPEN:
            locked.closed_at = None  # closed now, whenever it was closed before
        _apply_stage_status(locked, stage, (reason or "").strip()[:300])
        locked.save()
        DealStageChange.objects.create(
            deal=locked, from_stage=previous, to_stage=stage, changed_by=_actor_user(actor), note=reason[:300]
        )
        event_emit(
            type="deal.stage_changed", data=events.deal_stage_data(locked, previous), resource=f"deal:{locked.pk}"
        )
    return locked


def deal_close(*, actor, deal: Deal, won: bool, reason: str = "") -> Deal:
    """Mark a deal won or lost: moves it to the firm's first won (or lost) stage."""
    kind = StageKind.WON if won else StageKind.LOST
    stage = next((s for s in pipeline_stages_ensure() if s.kind == kind), None)
    if stage is None:
        raise ValidationError({"stage": f"The pipeline has no {kind} stage."})
    return deal_move(actor=actor, deal=deal, stage=stage, reason=reason)
