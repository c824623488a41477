"""Where apps above tenants plug into tenants' own flows: a registry, filled in their
``AppConfig.ready`` (billing: the plan of a new firm and its trial, the seat limit). tenants imports
none of them (docs/architecture.md).

- a provisioning check ``(*, plan_code) -> {field: message}`` runs before anything is written;
- a provisioning step ``(*, tenant, plan_code) -> None`` runs inside the provisioning transaction
  (a failure undoes the whole firm);
- a seat check ``(*, tenant) -> None`` runs before a seat is added (an invitation, a reactivation)
  and raises ``tenants.exceptions.LimitReached``;
- a status source ``(*, tenant) -> str | None`` says which firm status the firm's subscription
  implies (trialing, active, past_due), for lifting a suspension;
- a blocked-page source ``(*, tenant) -> dict`` adds to the page a suspended firm's people see
  (billing: the oldest unpaid invoice, if any).
"""

from __future__ import annotations

from collections.abc import Callable

ProvisioningCheck = Callable[..., dict[str, str]]
ProvisioningStep = Callable[..., object]  # its result is not used
SeatCheck = Callable[..., None]

_provisioning_checks: list[ProvisioningCheck] = []
_provisioning_steps: list[ProvisioningStep] = []
_seat_checks: list[SeatCheck] = []
_status_sources: list[Callable[..., str | None]] = []
_blocked_page_sources: list[Callable[..., dict]] = []


def _add(registry: list, function) -> None:
    if function not in registry:  # ready() may run more than once (tests)
        registry.append(function)


def register_provisioning(*, check: ProvisioningCheck | None = None, step: ProvisioningStep | None = None) -> None:
    if check is not None:
        _add(_provisioning_checks, check)
    if step is not None:
        _add(_provisioning_steps, step)


def register_seat_check(check: SeatCheck) -> None:
    _add(_seat_checks, check)


def provisioning_errors(*, plan_code: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    for check in _provisioning_checks:
        errors.update(check(plan_code=plan_code))
    return errors


def provisioning_steps_run(*, tenant, plan_code: str) -> None:
    for step in _provisioning_steps:
        step(tenant=tenant, plan_code=plan_code)


def seat_checks_run(*, tenant) -> None:
    for check in _seat_checks:
        check(tenant=tenant)


def register_status_source(source: Callable[..., str | None]) -> None:
    _add(_status_sources, source)


def register_blocked_page_source(source: Callable[..., dict]) -> None:
    _add(_blocked_page_sources, source)


def reactivation_status(*, tenant) -> str | None:
    """The status the first source that knows gives, or None."""
    for source in _status_sources:
        status = source(tenant=tenant)
        if status:
            return status
    return None


def blocked_page_context(*, tenant) -> dict:
    context: dict = {}
    for source in _blocked_page_sources:
        context.update(source(tenant=tenant))
    return context
