"""Firms (tenants), their host names, API keys and the audit log. All live in the public schema."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Lower
from django_tenants.models import DomainMixin, TenantMixin

from codex.history_tracking import track_public_record


class TenantStatus(models.TextChoices):
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    SUSPENDED = "suspended", "Suspended"
    CLOSED = "closed", "Closed"


BLOCKED_STATUSES = frozenset({TenantStatus.SUSPENDED, TenantStatus.CLOSED})


@track_public_record()
class Tenant(TenantMixin):
    """A firm. Its data lives in the PostgreSQL schema ``schema_name``. Its settings (name, brand
    colour, "require 2FA", status) are in the change history (decision 0931)."""

    history_firm_lookup = "pgh_obj_id"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=50, unique=True)
    status = models.CharField(max_length=16, choices=TenantStatus.choices, default=TenantStatus.TRIALING)
    require_2fa = models.BooleanField(default=False)
    brand_color = models.CharField(max_length=7, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    # While suspended: why (shown to the firm's people) and the status reactivation returns to.
    suspension_reason = models.CharField(max_length=500, blank=True, default="")
    status_before_suspension = models.CharField(max_length=16, choices=TenantStatus.choices, blank=True, default="")

    # Provisioning clones the template schema itself (tenants.services), so the model never creates
    # or drops schemas behind the service's back.
    auto_create_schema = False
    auto_drop_schema = False

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=[s.value for s in TenantStatus]), name="tenant_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def is_blocked(self) -> bool:
        return self.status in BLOCKED_STATUSES


@track_public_record()
class Domain(DomainMixin):
    """A host name that routes to a firm: ``<slug>.<base domain>`` plus any custom domains."""

    history_firm_lookup = "tenant_id"

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(Lower("domain"), name="domain_unique_ci")]

    def __str__(self) -> str:
        return self.domain


class ApiScope(models.TextChoices):
    READ = "read", "Read only"
    WRITE = "write", "Read and write"


class ApiKey(models.Model):
    """An API key of a firm. Only a SHA-256 hash of the key is stored; the key is shown once."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    hashed_key = models.CharField(max_length=64)
    scope = models.CharField(max_length=8, choices=ApiScope.choices, default=ApiScope.READ)
    created_by = models.EmailField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class AuditEvent(models.Model):
    """Append-only record of security-relevant events: who, what, when, from where."""

    tenant = models.ForeignKey(Tenant, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    tenant_slug = models.CharField(max_length=50, blank=True, default="", db_index=True)
    actor = models.CharField(max_length=254, blank=True, default="")
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=254, blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.target}"


class TemplateSnapshot(models.Model):
    """The template schema as SQL, keyed by its migration state; replayed to provision a firm fast."""

    fingerprint = models.CharField(max_length=32, unique=True)
    sql = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"template snapshot {self.fingerprint[:8]}"
