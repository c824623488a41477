"""Users. The table exists in the public schema (operators) and in every firm's schema (its staff)."""

from __future__ import annotations

from typing import ClassVar

import pghistory
from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import hex_validator, random_hex

from codex.crypto import SealedTextField, seal, unseal
from codex.formatting import DATE_FORMAT_CHOICES, LOCALE_CHOICES


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    ADVISOR = "advisor", "Advisor"
    VIEWER = "viewer", "Viewer"
    # A client of the firm: bound to one CRM contact (portal.ClientAccess), reaches only the client
    # portal and its API (portal.middleware, docs/decisions/0960); never a seat, never staff.
    CLIENT = "client", "Client"


MANAGER_ROLES = frozenset({Role.OWNER, Role.ADMIN})
# Roles that see the whole firm (the CRM's book rules, crm.access; the firm-wide pages' links).
FIRM_WIDE_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.VIEWER})
WRITER_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.ADVISOR})
STAFF_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.ADVISOR, Role.VIEWER})
STAFF_ROLE_CHOICES = [(value, label) for value, label in Role.choices if value != Role.CLIENT]


class CodexUserManager(UserManager):
    use_in_migrations = True

    def _create_user_object(self, username, email, password, **extra_fields):
        email = self.normalize_email(email).lower()
        user = self.model(email=email, **extra_fields)
        user.password = ""
        if password is not None:
            user.set_password(password)
        else:
            user.set_unusable_password()
        return user

    def _create_user(self, username, email, password, **extra_fields):
        user = self._create_user_object(username, email, password, **extra_fields)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(None, email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        extra_fields.setdefault("role", Role.OWNER)
        return self._create_user(None, email, password, **extra_fields)

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    exclude=["password", "last_login", "auth_epoch", "table_columns"],
)
# django-otp (untyped) declares the devices' ``user`` key on its abstract Device: the stubs' plugin
# cannot name the reverse manager of SealedTOTPDevice.
class User(AbstractUser):  # type: ignore[django-manager-missing]
    """A person who signs in with an e-mail address.

    In the public schema: an operator. In a firm's schema: a member of that firm with a ``role``.
    ``auth_epoch`` is bumped to end every bearer token of the user at once (deactivation, "sign out
    everywhere").
    """

    username = None  # type: ignore[assignment]  # Django's documented way to drop AbstractUser's field; the stubs type it str
    email = models.EmailField("email address", unique=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ADVISOR)
    auth_epoch = models.PositiveIntegerField(default=0)
    # Display preferences (codex.formatting, docs/decisions/1050 and 1051): "" follows the site.
    locale = models.CharField(
        "language and number format", max_length=8, blank=True, default="", choices=LOCALE_CHOICES
    )
    date_format = models.CharField(max_length=8, blank=True, default="", choices=DATE_FORMAT_CHOICES)
    # Columns chosen per table, {"clients": ["aum", "ytd", ...]} (codex.tables.column_choice).
    table_columns = models.JSONField(default=dict, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects: ClassVar[CodexUserManager] = CodexUserManager()

    class Meta:
        ordering = ["email"]
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_unique_ci")]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        """The name a person set on their profile page, else their e-mail address."""
        return self.get_full_name() or self.email

    @property
    def is_manager(self) -> bool:
        return self.role in MANAGER_ROLES

    @property
    def can_write(self) -> bool:
        return self.role in WRITER_ROLES

    @property
    def is_client(self) -> bool:
        return self.role == Role.CLIENT

    @property
    def sees_whole_firm(self) -> bool:
        return self.role in FIRM_WIDE_ROLES


class Invitation(models.Model):
    """An invitation to join the firm, accepted through a signed link that expires."""

    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ADVISOR)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_pending_per_email",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} as {self.role}"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None


def sealed_new_totp_key() -> str:
    """A new random TOTP secret (20 bytes, as django-otp makes them), sealed."""
    return seal(random_hex(20))


class SealedTOTPDevice(TimestampMixin, ThrottlingMixin, Device):
    """django-otp's TOTP device with its secret sealed at rest (``codex.crypto``).

    django-otp stores ``TOTPDevice.key`` in clear and offers no hook to encrypt it (its issue #67,
    pull request #69, both open), so this device keeps the same fields with the key sealed, and
    reuses ``TOTPDevice``'s own verification, throttling and provisioning-URL code through the
    ``key`` property. Migration ``accounts.0003`` moved existing devices here.
    """

    sealed_key = SealedTextField(
        default=sealed_new_totp_key, help_text="The hex TOTP secret, sealed with CODEX_ENCRYPTION_KEYS."
    )
    step = models.PositiveSmallIntegerField(default=30)
    t0 = models.BigIntegerField(default=0)
    digits = models.PositiveSmallIntegerField(choices=[(6, 6), (8, 8)], default=6)
    tolerance = models.PositiveSmallIntegerField(default=1)
    drift = models.SmallIntegerField(default=0)
    last_t = models.BigIntegerField(default=-1)

    class Meta(Device.Meta):
        verbose_name = "TOTP device"

    @property
    def key(self) -> str:
        return unseal(self.sealed_key)

    @key.setter
    def key(self, value: str) -> None:
        hex_validator()(value)
        self.sealed_key = seal(value)

    bin_key = TOTPDevice.bin_key
    config_url = TOTPDevice.config_url
    verify_token = TOTPDevice.verify_token
    get_throttle_factor = TOTPDevice.get_throttle_factor
    _read_str_from_settings = TOTPDevice._read_str_from_settings
