"""Writes for firms: provisioning, lifecycle, API keys, audit."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from datetime import datetime

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context
from pghistory.models import Event as HistoryEvent

from tenants.accounts.models import Role, User

from . import links
from .cloning import clone_template
from .models import ApiKey, ApiScope, AuditEvent, Domain, Tenant, TenantStatus
from .registry import provisioning_errors, provisioning_steps_run, reactivation_status
from .selectors import api_key_cache_store, api_keys_made_by

logger = logging.getLogger(__name__)

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$")
RESERVED_SLUGS = frozenset(
    {"www", "api", "admin", "public", "template", "static", "media", "mail", "app", "status", "help", "docs"}
)
API_KEY_TYPE_PREFIX = "cdx"


# --- Audit --------------------------------------------------------------------------------------------
def audit_record(
    *,
    action: str,
    actor: str = "",
    tenant: Tenant | None = None,
    target: str = "",
    ip: str | None = None,
    details: dict | None = None,
) -> AuditEvent:
    """Append one audit event. Written in the public schema whatever schema is active."""
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        return AuditEvent.objects.create(
            tenant=tenant,
            tenant_slug=tenant.slug if tenant else "",
            actor=actor[:254],
            action=action,
            target=target[:254],
            ip=ip,
            details=details or {},
        )


# --- Provisioning -------------------------------------------------------------------------------------
def slug_validate(slug: str) -> str:
    """Return the normalised slug or raise ValidationError({"slug": ...})."""
    slug = (slug or "").strip().lower()
    if not slug:
        raise ValidationError({"slug": "Choose an address for your firm."})
    if not SLUG_RE.match(slug):
        raise ValidationError(
            {
                "slug": "Use 1 to 50 lower-case letters, digits and hyphens; "
                "it must start and end with a letter or digit."
            }
        )
    if slug in RESERVED_SLUGS:
        raise ValidationError({"slug": f"“{slug}” is reserved; choose another address."})
    return slug


def schema_name_for(slug: str) -> str:
    # DNS labels have no underscores, so replacing hyphens is one-to-one; the prefix keeps firm
    # schemas clear of PostgreSQL's reserved ``pg_`` names and of ``public``.
    return "firm_" + slug.replace("-", "_")


firm_host = links.firm_host


firm_url = links.firm_url


_clone_function_ready = False


def clone_function_install(*, force: bool = False) -> None:
    """Install django-tenants' ``clone_schema`` SQL function once, not on every provision.

    django-tenants re-creates the function on each clone; under concurrent sign-ups that serialises
    every provision on the catalog row of the function. We install it at migrate time and check once
    per process.
    """
    global _clone_function_ready
    if _clone_function_ready and not force:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public' AND p.proname = 'clone_schema'"
        )
        present = cursor.fetchone() is not None
    if force or not present:
        # function-level: only for the fallback clone without a template snapshot
        from django_tenants.clone import CloneSchema

        with schema_context(settings.PUBLIC_SCHEMA_NAME):
            CloneSchema()._create_clone_schema_function()
    _clone_function_ready = True


def _clone_template(schema_name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM information_schema.schemata WHERE lower(schema_name) = lower(%s)", [schema_name])
        if cursor.fetchone():
            raise ValidationError({"slug": "That address is already taken."})
    clone_template(schema_name)


def tenant_provision_errors(
    *, name: str, slug: str, owner_email: str, owner_password: str | None, plan_code: str
) -> dict[str, str]:
    """Every problem with a sign-up's input at once, by field (name, slug, owner_email,
    owner_password, plan): the address's availability included, so one submission shows them all.
    Reads only."""
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "Enter the firm's name."
    elif len(name) > 200:
        errors["name"] = "Use at most 200 characters."
    try:
        slug = slug_validate(slug)
    except ValidationError as exc:
        errors.update({k: v[0] for k, v in exc.message_dict.items()})
    else:
        with schema_context(settings.PUBLIC_SCHEMA_NAME):
            if Tenant.objects.filter(slug=slug).exists():
                errors["slug"] = "That address is already taken."
    try:
        validate_email((owner_email or "").strip().lower())
    except ValidationError:
        errors["owner_email"] = "Enter a valid e-mail address."
    if owner_password is not None:
        try:
            validate_password(owner_password)
        except ValidationError as exc:
            errors["owner_password"] = " ".join(exc.messages)
    errors.update(provisioning_errors(plan_code=plan_code))  # billing: the plan exists
    return errors


def tenant_provision(
    *,
    name: str,
    slug: str,
    owner_email: str,
    owner_password: str | None = None,
    plan_code: str = "starter",
    actor: str = "",
    ip: str | None = None,
) -> Tenant:
    """Create a firm: schema (cloned from the template), domain, owner, trial subscription.

    All or nothing: everything runs in one database transaction (PostgreSQL DDL is transactional),
    so a failure at any step leaves no schema, tenant, domain, user or subscription behind.
    Raises ValidationError with field names (name, slug, owner_email, owner_password, plan) for bad
    input, every field's problem at once (``tenant_provision_errors``).
    """
    errors = tenant_provision_errors(
        name=name, slug=slug, owner_email=owner_email, owner_password=owner_password, plan_code=plan_code
    )
    if errors:
        raise ValidationError(errors)
    name = name.strip()
    slug = slug_validate(slug)
    owner_email = owner_email.strip().lower()

    schema_name = schema_name_for(slug)
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        clone_function_install()
        try:
            with transaction.atomic():
                tenant = Tenant.objects.create(schema_name=schema_name, name=name, slug=slug)
                _clone_template(schema_name)
                Domain.objects.create(domain=firm_host(slug), tenant=tenant, is_primary=True)

                with schema_context(schema_name):
                    User.objects.create_user(owner_email, owner_password, role=Role.OWNER)
                provisioning_steps_run(tenant=tenant, plan_code=plan_code)  # billing: the trial subscription
                audit_record(
                    action="tenant.provisioned",
                    actor=actor or owner_email,
                    tenant=tenant,
                    target=slug,
                    ip=ip,
                    details={"plan": plan_code},
                )
        except IntegrityError as exc:
            # A concurrent sign-up took the slug between our check and the insert.
            raise ValidationError({"slug": "That address is already taken."}) from exc
    logger.info("provisioned firm %s", slug)
    return tenant


# --- Lifecycle ----------------------------------------------------------------------------------------
_ALLOWED_TRANSITIONS = {
    TenantStatus.TRIALING: {TenantStatus.ACTIVE, TenantStatus.PAST_DUE, TenantStatus.SUSPENDED, TenantStatus.CLOSED},
    TenantStatus.ACTIVE: {TenantStatus.PAST_DUE, TenantStatus.SUSPENDED, TenantStatus.CLOSED},
    TenantStatus.PAST_DUE: {TenantStatus.ACTIVE, TenantStatus.SUSPENDED, TenantStatus.CLOSED},
    # back to trialing or past due too: reactivation restores the status before the suspension
    TenantStatus.SUSPENDED: {TenantStatus.ACTIVE, TenantStatus.TRIALING, TenantStatus.PAST_DUE, TenantStatus.CLOSED},
    TenantStatus.CLOSED: {TenantStatus.ACTIVE},
}
SUSPENSION_REASON_MAX = 500


class InvalidTransition(ValueError):
    pass


@transaction.atomic
def tenant_set_status(*, tenant: Tenant, status: str, actor: str = "", reason: str = "") -> Tenant:
    """Move a firm to ``status``; takes effect on the next request (the host cache is invalidated)."""
    status = TenantStatus(status)
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if status == tenant.status:
        return tenant
    if status not in _ALLOWED_TRANSITIONS[TenantStatus(tenant.status)]:
        raise InvalidTransition(f"A {tenant.status} firm cannot become {status}.")
    previous = tenant.status
    tenant.status = status
    tenant.status_changed_at = timezone.now()
    if status == TenantStatus.SUSPENDED:
        # kept for the firm's suspended page and for reactivation (tenant_reactivate)
        tenant.suspension_reason = reason[:SUSPENSION_REASON_MAX]
        tenant.status_before_suspension = previous
    else:
        tenant.suspension_reason = ""
        tenant.status_before_suspension = ""
    tenant.save(update_fields=["status", "status_changed_at", "suspension_reason", "status_before_suspension"])
    audit_record(
        action=f"tenant.{status}",
        actor=actor,
        tenant=tenant,
        target=tenant.slug,
        details={"from": previous, "reason": reason},
    )
    return tenant


def tenant_suspend(*, tenant: Tenant, actor: str = "", reason: str) -> Tenant:
    """An operator's suspension: the reason is required (the firm's people read it on the page they
    see instead of Codex) and audited with the status it interrupts. Raises
    ValidationError({"reason": ...}) and InvalidTransition."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the firm is suspended: its people will read it."})
    if len(reason) > SUSPENSION_REASON_MAX:
        raise ValidationError({"reason": f"Use at most {SUSPENSION_REASON_MAX} characters."})
    return tenant_set_status(tenant=tenant, status=TenantStatus.SUSPENDED, actor=actor, reason=reason)


def tenant_reactivate(*, tenant: Tenant, actor: str = "", reason: str = "") -> Tenant:
    """Lift a suspension or reopen a closed firm (audited). A suspended firm returns to what its
    subscription says now (``tenants.registry``: billing), else to the status it had when suspended:
    a trial stays a trial. A closed firm becomes active."""
    tenant = Tenant.objects.get(pk=tenant.pk)
    target: str = TenantStatus.ACTIVE
    if tenant.status == TenantStatus.SUSPENDED:
        target = reactivation_status(tenant=tenant) or tenant.status_before_suspension or TenantStatus.ACTIVE
    return tenant_set_status(tenant=tenant, status=target, actor=actor, reason=reason or "reactivated")


def tenant_close(*, tenant: Tenant, actor: str = "", reason: str = "") -> Tenant:
    return tenant_set_status(tenant=tenant, status=TenantStatus.CLOSED, actor=actor, reason=reason)


# --- API keys -----------------------------------------------------------------------------------------
def _hash_key(raw: str) -> str:
    # The secret carries 256 bits of entropy, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(raw.encode()).hexdigest()


def api_key_create(
    *,
    tenant: Tenant,
    name: str,
    scope: str = ApiScope.READ,
    expires_at: datetime | None = None,
    created_by: str = "",
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext, which is never stored and shown only once."""
    errors = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "Give the key a name."
    elif len(name) > 100:
        errors["name"] = "Use at most 100 characters."
    if scope not in ApiScope.values:
        errors["scope"] = "Choose read or write."
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = "The expiry must be in the future."
    if errors:
        raise ValidationError(errors)
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    raw = f"{API_KEY_TYPE_PREFIX}_{prefix}_{secret}"
    with schema_context(settings.PUBLIC_SCHEMA_NAME), transaction.atomic():
        key = ApiKey.objects.create(
            tenant=tenant,
            name=name,
            prefix=prefix,
            hashed_key=_hash_key(raw),
            scope=scope,
            expires_at=expires_at,
            created_by=created_by,
        )
        audit_record(action="api_key.created", actor=created_by, tenant=tenant, target=f"{name} ({prefix})")
    return key, raw


def api_key_revoke(*, key: ApiKey, actor: str = "") -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        with schema_context(settings.PUBLIC_SCHEMA_NAME), transaction.atomic():
            key.save(update_fields=["revoked_at"])
            audit_record(action="api_key.revoked", actor=actor, tenant=key.tenant, target=f"{key.name} ({key.prefix})")
    return key


def api_keys_revoke_made_by(*, tenant: Tenant, email: str, actor: str = "") -> list[ApiKey]:
    """Revoke every working key of ``tenant`` made by ``email`` (each audited, each cached copy
    dropped by the save signal); returns them. Keys die with the person who made them (0506)."""
    keys = api_keys_made_by(tenant=tenant, email=email)
    for key in keys:
        api_key_revoke(key=key, actor=actor)
    return keys


def api_key_touch(*, key: ApiKey) -> None:
    """Record use, at most once a minute per key, so requests do not each write a row."""
    now = timezone.now()
    resolution = settings.CODEX_API_KEY_LAST_USED_RESOLUTION
    if key.last_used_at and (now - key.last_used_at).total_seconds() < resolution:
        return
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    key.last_used_at = now
    # The cached copy must know too, or every request would write again until it expires.
    api_key_cache_store(key)


# --- Closing with an export, deleting only what was exported (docs/operations.md) -------------------
class ExportRequired(RuntimeError):
    """A firm is deleted only once a verified export taken after its closure exists."""


def tenant_close_with_export(*, tenant: Tenant, actor: str = "", reason: str = "", output=None):
    """Close the firm, then export it; returns ``(tenant, ExportResult)``.

    Closing first blocks the firm's UI and API, so the export taken right after holds its final
    state. If the export fails (``backup.ExportError``) the firm stays closed with its data intact and
    cannot be deleted until an export succeeds.
    """
    # backup builds on this module's helpers (slug, schema names, audit); importing it here keeps
    # the dependency one way at import time.
    from .backup import tenant_export  # function-level: backup imports services: cycle listed in the acyclic contract

    if tenant.status != TenantStatus.CLOSED:
        tenant = tenant_close(tenant=tenant, actor=actor, reason=reason)
    result = tenant_export(tenant=tenant, output=output, actor=actor)
    return tenant, result


def tenant_delete(*, tenant: Tenant, actor: str = "") -> dict:
    """Drop a closed firm's schema and public rows. Requires a verified export taken after closing.

    Atomic: schema and rows go in one transaction. Audit events are kept (their tenant link is
    cleared), so are the change history's events of the firm's public records (until the history's
    retention purge), and a ``tenant.deleted`` event names the export. Raises InvalidTransition if the firm is
    not closed, ExportRequired if no export file made since the closure exists with its recorded hash.
    Returns the export's details.
    """
    # function-level: backup imports services: cycle listed in the acyclic contract
    from .backup import firm_public_rows, tenant_export_verified

    tenant = Tenant.objects.get(pk=tenant.pk)
    if tenant.status != TenantStatus.CLOSED:
        raise InvalidTransition(f"Close {tenant.slug} (which exports it) before deleting it.")
    export = tenant_export_verified(tenant=tenant, since=tenant.status_changed_at)
    if export is None:
        raise ExportRequired(f"No verified export of {tenant.slug} taken after it was closed: export it first.")
    slug, schema = tenant.slug, tenant.schema_name
    with schema_context(settings.PUBLIC_SCHEMA_NAME), transaction.atomic():
        # Children before parents (invoice lines, then invoices...), so PROTECT links never block.
        rows = firm_public_rows(tenant=tenant)
        for model in reversed(list(rows)):
            # the audit log and the change history are kept until their retention ends (decision
            # 0931): the history's event rows are append-only, and the export holds them too
            if model in (Tenant, AuditEvent) or issubclass(model, HistoryEvent):
                continue
            model._default_manager.filter(pk__in=[obj.pk for obj in rows[model]]).delete()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {connection.ops.quote_name(schema)} CASCADE")
        tenant.delete()
        audit_record(action="tenant.deleted", actor=actor, target=slug, details={"schema": schema, "export": export})
    logger.info("deleted firm %s (export %s)", slug, export["path"])
    return export
