"""CRM models (firm schema): contacts, companies, deals and their pipeline, activities, newsletter, imports.

Portfolios refer to ``crm.Contact`` (a portfolio's client); the CRM reads portfolio data through
``portfolios.selectors`` only. Decisions: docs/decisions/0200-crm-model.md.
"""

from __future__ import annotations

from decimal import Decimal

import pghistory
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Func, Value
from django.db.models.functions import Coalesce, Concat, Lower, Replace, Upper
from django.utils import timezone

# The expressions the search indexes are built on. Queries must use exactly these expressions for
# PostgreSQL to use the indexes (see crm.selectors.crm_search).
SEARCH_CONFIG = "simple"


def email_words():
    """The e-mail address as words ("ann.lee@apollo.example" -> "ann lee apollo example"): the
    text search parser would otherwise keep it as one token, unreachable by a prefix query."""
    return Func(F("email"), Value("@.-_+"), Value("     "), function="translate")


def contact_document():
    return SearchVector("first_name", "last_name", email_words(), "phone", "source", "notes", config=SEARCH_CONFIG)


def contact_name():
    return Concat(Coalesce("first_name", Value("")), Value(" "), Coalesce("last_name", Value("")))


# Names as search compares them (``search_name``): common accents folded, lower case. pg_trgm
# (CRM search's typo step, decision 0201) compares these with the query folded the same way in
# Python (``fold``); built from pg_catalog functions only, so the stored column is IMMUTABLE.
# Letters that fold to two (ß, æ, œ) are replaced first; with the C collation lower() changes ASCII
# letters only, so both cases of the accented letters are listed.
_SPELLED = (("ß", "ss"), ("Æ", "ae"), ("æ", "ae"), ("Œ", "oe"), ("œ", "oe"), ("ẞ", "ss"))
_ACCENTED = "ÀÁÂÃÄÅàáâãäåÇçÈÉÊËèéêëÌÍÎÏìíîïÑñÒÓÔÕÖØòóôõöøÙÚÛÜùúûüÝýÿŠšŽžČčĆćŁłŃńŚśŹźŻżĘęĄąŘřŤťĎďŇňŮůĞğİıŞş"
_PLAIN = "AAAAAAaaaaaaCcEEEEeeeeIIIIiiiiNnOOOOOOooooooUUUUuuuuYyySsZzCcCcLlNnSsZzZzEeAaRrTtDdNnUuGgIiSs"
_FOLD_TABLE = str.maketrans(_ACCENTED, _PLAIN)


def folded(expression):
    """``expression`` with accents folded and in lower case, in SQL."""
    for letter, spelled in _SPELLED:
        expression = Replace(expression, Value(letter), Value(spelled))
    return Lower(
        Func(expression, Value(_ACCENTED), Value(_PLAIN), function="translate", output_field=models.TextField())
    )


def fold(text: str) -> str:
    """``folded`` in Python, for the query side."""
    for letter, spelled in _SPELLED:
        text = text.replace(letter, spelled)
    return text.translate(_FOLD_TABLE).lower()


def contact_search_text():
    """What the contacts list's ``search`` matches as a substring: name, e-mail and phone, folded."""
    return folded(
        Concat(
            contact_name(),
            Value(" "),
            Coalesce("email", Value("")),
            Value(" "),
            Coalesce("phone", Value("")),
            output_field=models.TextField(),
        )
    )


def company_document():
    return SearchVector("name", "domain", "industry", "notes", config=SEARCH_CONFIG)


def deal_document():
    return SearchVector("title", "notes", config=SEARCH_CONFIG)


class Lifecycle(models.TextChoices):
    LEAD = "lead", "Lead"
    PROSPECT = "prospect", "Prospect"
    CLIENT = "client", "Client"
    FORMER = "former", "Former client"


# Suitability (crm.suitability): what an advisor must know before recommending anything.
class RiskTolerance(models.TextChoices):
    CONSERVATIVE = "conservative", "Conservative"
    MODERATELY_CONSERVATIVE = "moderately_conservative", "Moderately conservative"
    MODERATE = "moderate", "Moderate"
    MODERATELY_AGGRESSIVE = "moderately_aggressive", "Moderately aggressive"
    AGGRESSIVE = "aggressive", "Aggressive"


class Objective(models.TextChoices):
    PRESERVATION = "preservation", "Capital preservation"
    INCOME = "income", "Income"
    GROWTH = "growth", "Growth"
    SPECULATION = "speculation", "Speculation"
    LIQUIDITY = "liquidity", "Liquidity"


class TimeHorizon(models.TextChoices):
    SHORT = "short", "Short (under 3 years)"
    MEDIUM = "medium", "Medium (3 to 10 years)"
    LONG = "long", "Long (over 10 years)"


class KycStatus(models.TextChoices):
    NOT_STARTED = "not_started", "Not started"
    PENDING = "pending", "Pending"
    VERIFIED = "verified", "Verified"
    EXPIRED = "expired", "Expired"
    REJECTED = "rejected", "Rejected"


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    exclude=["search_document", "search_name"],
)
class Company(models.Model):
    name = models.CharField(max_length=200)
    domain = models.CharField(max_length=200, blank=True, default="")
    website = models.URLField(blank=True, default="")
    phone = models.CharField(max_length=40, blank=True, default="")
    industry = models.CharField(max_length=100, blank=True, default="")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="owned_companies"
    )
    shared_with = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="shared_companies")
    tags = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    notes = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    search_document = models.GeneratedField(
        expression=company_document(), output_field=SearchVectorField(), db_persist=True
    )
    search_name = models.GeneratedField(expression=folded("name"), output_field=models.TextField(), db_persist=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "companies"
        indexes = [
            GinIndex(fields=["search_document"], name="crm_company_document"),
            GinIndex(OpClass("search_name", name="gin_trgm_ops"), name="crm_company_name_trgm"),
        ]

    def __str__(self) -> str:
        return self.name


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    exclude=["search_document", "search_name", "search_text"],
)
class Contact(models.Model):
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100, blank=True, default="")
    email = models.EmailField(blank=True, default="")
    phone = models.CharField(max_length=40, blank=True, default="")
    # More addresses and numbers besides the primary ones (docs/decisions/0200).
    other_emails = ArrayField(models.EmailField(), default=list, blank=True)
    other_phones = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    company = models.ForeignKey(Company, on_delete=models.SET_NULL, null=True, blank=True, related_name="contacts")
    job_title = models.CharField(max_length=100, blank=True, default="")
    lifecycle = models.CharField(max_length=16, choices=Lifecycle.choices, default=Lifecycle.LEAD)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="owned_contacts"
    )
    shared_with = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="shared_contacts")
    tags = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    source = models.CharField(max_length=100, blank=True, default="")
    notes = models.TextField(blank=True, default="")
    # Suitability and KYC (crm.suitability; every change is in the contact's history).
    # Database defaults too: the import engine writes contacts with COPY, naming its own columns.
    risk_tolerance = models.CharField(
        max_length=32, choices=RiskTolerance.choices, blank=True, default="", db_default=""
    )
    objectives = ArrayField(
        models.CharField(max_length=16, choices=Objective.choices), default=list, db_default=[], blank=True
    )
    time_horizon = models.CharField(max_length=8, choices=TimeHorizon.choices, blank=True, default="", db_default="")
    kyc_status = models.CharField(
        max_length=16, choices=KycStatus.choices, default=KycStatus.NOT_STARTED, db_default=KycStatus.NOT_STARTED
    )
    kyc_reviewed_on = models.DateField("KYC reviewed on", null=True, blank=True)
    kyc_review_due_on = models.DateField("KYC review due on", null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Stored, so that ranking reads the vector instead of parsing the text of every match again
    # (measured: 32 µs per matched row; docs/decisions/0201-crm-search.md).
    search_document = models.GeneratedField(
        expression=contact_document(), output_field=SearchVectorField(), db_persist=True
    )
    # "first last" folded, for typo-tolerant search (pg_trgm, GIN gin_trgm_ops), and name, e-mail and
    # phone folded, for the list's substring search (the same index type serves LIKE '%...%').
    # Computed by PostgreSQL on every write, including the COPY of the import engine.
    search_name = models.GeneratedField(
        expression=folded(contact_name()), output_field=models.TextField(), db_persist=True
    )
    search_text = models.GeneratedField(
        expression=contact_search_text(), output_field=models.TextField(), db_persist=True
    )

    class Meta:
        ordering = ["last_name", "first_name"]
        constraints = [
            models.UniqueConstraint(Lower("email"), condition=~models.Q(email=""), name="contact_email_unique_ci"),
            models.CheckConstraint(
                condition=models.Q(kyc_review_due_on__isnull=True)
                | models.Q(kyc_reviewed_on__isnull=True)
                | models.Q(kyc_review_due_on__gte=models.F("kyc_reviewed_on")),
                name="contact_kyc_review_due_after_review",
            ),
        ]
        indexes = [
            GinIndex(fields=["search_document"], name="crm_contact_document"),
            GinIndex(OpClass("search_name", name="gin_trgm_ops"), name="crm_contact_name_trgm"),
            GinIndex(OpClass("search_text", name="gin_trgm_ops"), name="crm_contact_text_trgm"),
            models.Index(fields=["owner", "last_name"], name="crm_contact_owner_idx"),
            # the list's order (last name, first name, id): the first page read off the index
            models.Index(fields=["last_name", "first_name", "id"], name="crm_contact_name_order_idx"),
            # "is a contact of this company in my book": the advisor's view of companies (access.py)
            models.Index(fields=["company", "owner"], name="crm_contact_company_owner_idx"),
            models.Index(fields=["lifecycle"], name="crm_contact_lifecycle_idx"),
            # the daily sweep of due KYC reviews (crm.suitability.kyc_reviews_due)
            models.Index(
                fields=["kyc_review_due_on"],
                condition=models.Q(kyc_review_due_on__isnull=False),
                name="crm_contact_kyc_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def name(self) -> str:
        return str(self)


class StageKind(models.TextChoices):
    OPEN = "open", "Open"
    WON = "won", "Won"
    LOST = "lost", "Lost"


class PipelineStage(models.Model):
    """A column of the firm's pipeline. Defaults are seeded by migration 0003 (and on first use)."""

    name = models.CharField(max_length=60)
    position = models.PositiveSmallIntegerField(default=0)
    probability = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    kind = models.CharField(max_length=8, choices=StageKind.choices, default=StageKind.OPEN)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="crm_stage_name_unique_ci"),
            models.CheckConstraint(condition=models.Q(probability__lte=100), name="crm_stage_probability_lte_100"),
        ]

    def __str__(self) -> str:
        return self.name


class DealStatus(models.TextChoices):
    OPEN = "open", "Open"
    WON = "won", "Won"
    LOST = "lost", "Lost"


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    exclude=["search_document", "search_name"],
)
class Deal(models.Model):
    title = models.CharField(max_length=200)
    contact = models.ForeignKey(Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="deals")
    company = models.ForeignKey(Company, on_delete=models.SET_NULL, null=True, blank=True, related_name="deals")
    stage = models.ForeignKey(PipelineStage, on_delete=models.PROTECT, related_name="deals")
    amount = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, default="USD")
    probability = models.PositiveSmallIntegerField(default=0, validators=[MinValueValidator(0), MaxValueValidator(100)])
    expected_close = models.DateField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="owned_deals"
    )
    shared_with = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="shared_deals")
    status = models.CharField(max_length=8, choices=DealStatus.choices, default=DealStatus.OPEN)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=300, blank=True, default="")
    notes = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    search_document = models.GeneratedField(
        expression=deal_document(), output_field=SearchVectorField(), db_persist=True
    )
    search_name = models.GeneratedField(expression=folded("title"), output_field=models.TextField(), db_persist=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="crm_deal_amount_gte_0"),
            models.CheckConstraint(condition=models.Q(probability__lte=100), name="crm_deal_probability_lte_100"),
            models.CheckConstraint(
                condition=models.Q(status="open", closed_at__isnull=True)
                | (~models.Q(status="open") & models.Q(closed_at__isnull=False)),
                name="crm_deal_closed_at_matches_status",
            ),
        ]
        indexes = [
            GinIndex(fields=["search_document"], name="crm_deal_document"),
            GinIndex(OpClass("search_name", name="gin_trgm_ops"), name="crm_deal_title_trgm"),
            # the list's order (newest first)
            models.Index(F("created_at").desc(), F("id").desc(), name="crm_deal_recent_idx"),
            models.Index(fields=["status", "stage"], name="crm_deal_status_stage_idx"),
            # the dashboard's "open deals closing this month", soonest first (docs/decisions/1210)
            models.Index(
                fields=["expected_close", "id"], condition=models.Q(status="open"), name="crm_deal_open_close_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def weighted_amount(self) -> Decimal:
        return (self.amount * self.probability / Decimal(100)).quantize(Decimal("0.01"))


class DealStageChange(models.Model):
    """History of a deal's stage (and won/lost), one row per move; part of the client timeline."""

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.ForeignKey(PipelineStage, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    to_stage = models.ForeignKey(PipelineStage, on_delete=models.PROTECT, related_name="+")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    changed_at = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["-changed_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.deal_id}: {self.from_stage_id} -> {self.to_stage_id}"


class ActivityKind(models.TextChoices):
    NOTE = "note", "Note"
    CALL = "call", "Call"
    EMAIL = "email", "E-mail"
    MEETING = "meeting", "Meeting"
    TASK = "task", "Task"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent(), exclude=[])
class Activity(models.Model):
    """Something that happened (note, call, e-mail, meeting) or is to be done (task, with a due date)."""

    kind = models.CharField(max_length=8, choices=ActivityKind.choices, default=ActivityKind.NOTE)
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True, default="")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, null=True, blank=True, related_name="activities")
    company = models.ForeignKey(Company, on_delete=models.CASCADE, null=True, blank=True, related_name="activities")
    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, null=True, blank=True, related_name="activities")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="crm_activities"
    )
    occurred_at = models.DateTimeField(default=timezone.now)
    due_date = models.DateField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Who or what opened it: "" for people, "alert:<id>" for portfolio alerts, "merge", "import"...
    source = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-pk"]
        verbose_name_plural = "activities"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="task") | models.Q(due_date__isnull=True, completed_at__isnull=True),
                name="crm_activity_due_only_on_tasks",
            ),
        ]
        indexes = [
            models.Index(
                fields=["owner", "due_date"],
                condition=models.Q(kind="task", completed_at__isnull=True),
                name="crm_open_tasks_idx",
            ),
            # the list's order (latest first) and its ``search`` (subject or body, any case)
            models.Index(F("occurred_at").desc(), F("id").desc(), name="crm_activity_recent_idx"),
            GinIndex(OpClass(Upper("subject"), name="gin_trgm_ops"), name="crm_activity_subject_trgm"),
            GinIndex(OpClass(Upper("body"), name="gin_trgm_ops"), name="crm_activity_body_trgm"),
        ]

    def __str__(self) -> str:
        return self.subject

    @property
    def is_task(self) -> bool:
        return self.kind == ActivityKind.TASK

    @property
    def is_done(self) -> bool:
        return self.completed_at is not None


# --- Newsletter ------------------------------------------------------------------------------------


class SubscriberStatus(models.TextChoices):
    PENDING = "pending", "Pending confirmation"
    CONFIRMED = "confirmed", "Confirmed"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"


class Subscriber(models.Model):
    email = models.EmailField()
    contact = models.ForeignKey(Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="subscriptions")
    status = models.CharField(max_length=16, choices=SubscriberStatus.choices, default=SubscriberStatus.PENDING)
    source = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    confirmation_sent_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["email"]
        constraints = [models.UniqueConstraint(Lower("email"), name="crm_subscriber_email_unique_ci")]

    def __str__(self) -> str:
        return self.email


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    # Every delivery failed for good (no mail could be built or handed over): never left "sending".
    FAILED = "failed", "Failed"


class Campaign(models.Model):
    subject = models.CharField(max_length=200)
    body = models.TextField(help_text="Plain text. Blank lines separate paragraphs; links become clickable.")
    status = models.CharField(max_length=8, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    send_started_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.subject


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    # Claimed and handed to the mail backend; if the worker died there, we do not know whether it
    # went out, so it is never retried automatically (at most once; shown in the send report).
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


class Delivery(models.Model):
    """One recipient of one campaign. The row is claimed under a lock before mailing (exactly once)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="deliveries")
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="deliveries")
    email = models.EmailField()
    status = models.CharField(max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["campaign", "subscriber"], name="crm_delivery_once_per_subscriber"),
            models.CheckConstraint(
                condition=~models.Q(status="sent") | models.Q(sent_at__isnull=False), name="crm_delivery_sent_has_time"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} -> {self.email}"


# --- Imports ---------------------------------------------------------------------------------------


class ImportStatus(models.TextChoices):
    PENDING = "pending", "Waiting for review"
    IMPORTING = "importing", "Importing"  # the commit runs as a background job (decision 1001)
    COMMITTED = "committed", "Imported"
    CANCELLED = "cancelled", "Cancelled"


class ImportJob(models.Model):
    """An uploaded CSV held between preview and commit (codex.imports does the work)."""

    kind = models.CharField(max_length=40)  # "contacts", "companies", "deals", or another app's kind
    status = models.CharField(max_length=12, choices=ImportStatus.choices, default=ImportStatus.PENDING)
    filename = models.CharField(max_length=255, blank=True, default="")
    encoding = models.CharField(max_length=20, blank=True, default="")
    headers = models.JSONField(default=list)
    rows = models.JSONField(default=list)
    mapping = models.JSONField(default=dict)
    duplicates = models.CharField(max_length=8, default="skip")
    report = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    committed_at = models.DateTimeField(null=True, blank=True)
    # The last sign of life of the background commit: set when it is queued and each time a worker
    # takes it up. An ``importing`` job silent longer than IMPORT_JOB_STALE_SECONDS is swept back to
    # pending with the reason (crm.services.imports.import_jobs_sweep, decision 1220).
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.kind} import {self.filename}"
