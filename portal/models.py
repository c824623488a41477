"""The client portal: which user is which client, the document vault, firm posts, report runs.

All in the firm's schema (a tenant app). A client user is a ``tenants.accounts.User`` with the role
``client``; ``ClientAccess`` binds them to exactly one CRM contact, whose portfolios and shared
documents they see (docs/decisions/0960), or, when ``household`` is set, to a household (the fees
app's billing group), whose every portfolio they see (docs/decisions/1020).
"""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath

import pghistory
from django.conf import settings
from django.core.files.storage import storages
from django.db import models

from codex.db import current_schema


class ClientAccess(models.Model):
    """A client user's binding to their contact. One user, one contact; a contact may have several
    users (spouses sharing an account view).

    ``household`` widens the view from the contact's own portfolios to every portfolio of that
    household (a ``fees.BillingGroup``); the contact stays the person the user is (advisor card,
    posts for their tags, a former client's access ends)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="client_access")
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="client_users")
    household = models.ForeignKey(
        "fees.BillingGroup", on_delete=models.PROTECT, null=True, blank=True, related_name="client_users"
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} for contact {self.contact_id}"


class ClientInvitation(models.Model):
    """The contact a client invitation (``accounts.Invitation`` with role ``client``) is for."""

    invitation = models.OneToOneField("accounts.Invitation", on_delete=models.CASCADE, related_name="client")
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="client_invitations")
    household = models.ForeignKey(
        "fees.BillingGroup", on_delete=models.PROTECT, null=True, blank=True, related_name="client_invitations"
    )

    def __str__(self) -> str:
        return f"invitation {self.invitation_id} for contact {self.contact_id}"


def vault_storage():
    return storages["vault"]


def vault_path(instance: Document, filename: str) -> str:
    """``<firm schema>/<contact id or "firm">/<uuid><ext>``: per firm, never the uploader's name."""
    suffix = PurePosixPath(filename).suffix.lower()[:10]
    owner = str(instance.contact_id) if instance.contact_id else "firm"
    return f"{current_schema()}/{owner}/{uuid.uuid4().hex}{suffix}"


class DocumentKind(models.TextChoices):
    STATEMENT = "statement", "Statement"
    REPORT = "report", "Performance report"
    TAX = "tax", "Tax document"
    AGREEMENT = "agreement", "Agreement"
    OTHER = "other", "Other"


class Visibility(models.TextChoices):
    SHARED = "shared", "Shared with the client"
    INTERNAL = "internal", "Internal (staff only)"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Document(models.Model):
    """A file in the vault: a client's (``contact``) or the whole firm's (``contact`` empty).

    Extension point: fee statements of the fees app are stored here with kind ``statement`` by that
    app's service (``portal.services.document_store``), so the client's list includes them.
    """

    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.PROTECT, null=True, blank=True, related_name="documents"
    )
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=DocumentKind.choices, default=DocumentKind.OTHER)
    visibility = models.CharField(max_length=16, choices=Visibility.choices, default=Visibility.INTERNAL)
    file = models.FileField(storage=vault_storage, upload_to=vault_path, max_length=300)
    filename = models.CharField(max_length=200, help_text="The name the file is downloaded under.")
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    period_end = models.DateField(null=True, blank=True, help_text="The date a statement or report is as of.")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["contact", "visibility", "-created_at"], name="document_client_list")]

    def __str__(self) -> str:
        return self.title


class PostAudience(models.TextChoices):
    ALL = "all", "All clients"
    TAG = "tag", "Clients with a tag"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Post(models.Model):
    """Firm content for clients: Markdown, rendered once on write and sanitised (nh3)."""

    title = models.CharField(max_length=200)
    body_markdown = models.TextField()
    body_html = models.TextField(editable=False)
    audience = models.CharField(max_length=8, choices=PostAudience.choices, default=PostAudience.ALL)
    audience_tag = models.CharField(max_length=50, blank=True, default="")
    published_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-published_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(audience="tag") | ~models.Q(audience_tag=""), name="post_tag_audience_has_tag"
            )
        ]

    def __str__(self) -> str:
        return self.title


class ReportSettings(models.Model):
    """The firm's text for its reports (one row)."""

    disclosures = models.TextField(
        blank=True, default="", help_text="Printed on the last page of every quarterly report."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return "report settings"


class ReportRun(models.Model):
    """A batch of quarterly reports (one per client with a portfolio), with its progress."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    quarter_end = models.DateField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"reports for {self.quarter_end}: {self.done}/{self.total}"

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(100 * (self.done + self.failed) / self.total)
