"""Re-encryption of every sealed value at rest with the newest master key (``codex.crypto``).

Sealed columns are found by type (``codex.crypto.SealedTextField``), in the public schema for
shared apps and in every firm's schema for firm apps (an app in both is visited in both).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.apps import apps
from django.conf import settings
from django.db import models, transaction
from django_tenants.utils import schema_context

from codex import crypto

from .selectors import firm_schema_names


class RotationRefused(Exception):
    """A sealed value that no configured key opens: nothing was re-encrypted."""


@dataclass
class RotationReport:
    rewrapped: int = 0
    already_newest: int = 0
    by_column: dict[str, int] = field(default_factory=dict)


def _sealed_columns() -> list[tuple[type[models.Model], str]]:
    return [
        (model, f.name)
        for model in apps.get_models()
        for f in model._meta.concrete_fields
        if isinstance(f, crypto.SealedTextField)
    ]


def _schemas_for(model) -> list[str]:
    app_config = model._meta.app_config
    schemas = []
    if app_config.name in settings.SHARED_APPS:
        schemas.append(settings.PUBLIC_SCHEMA_NAME)
    if app_config.name in settings.TENANT_APPS:
        schemas += firm_schema_names()
    return schemas


def sealed_values_rotate(*, dry_run: bool = False) -> RotationReport:
    """Re-wrap every sealed value's data key with the first key of ``CODEX_ENCRYPTION_KEYS``.

    All or nothing: one transaction over every schema. Raises ``RotationRefused`` naming the row if
    a value does not open with any configured key (a key removed too soon, a tampered value); then
    nothing is written. Idempotent: values already wrapped by the newest key are left as they are.
    ``dry_run`` checks every value and counts, writing nothing."""
    report = RotationReport()
    with transaction.atomic():
        for model, column in _sealed_columns():
            label = f"{model._meta.label}.{column}"
            for schema in _schemas_for(model):
                with schema_context(schema):
                    rows = model._default_manager.exclude(**{column: ""}).values_list("pk", column)
                    for pk, sealed in rows.iterator():
                        try:
                            if crypto.wrapped_by_newest(sealed):
                                crypto.unseal(sealed)  # still checked: a tampered value is refused
                                report.already_newest += 1
                                continue
                            rotated = crypto.rotate(sealed)
                        except crypto.DecryptionError as exc:
                            raise RotationRefused(f"{label} id {pk} in schema {schema}: {exc}") from exc
                        if not dry_run:
                            model._default_manager.filter(pk=pk).update(**{column: rotated})
                        report.rewrapped += 1
                        report.by_column[label] = report.by_column.get(label, 0) + 1
        if dry_run:
            transaction.set_rollback(True)
    return report
