from django.contrib.postgres.fields import ArrayField
from django.db import models

from codex.crypto import SealedTextField, seal, unseal


class WebhookEndpoint(models.Model):
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    event_types = ArrayField(models.CharField(max_length=64), default=list)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    # Signing secrets (``whsec_`` + base64). They must be readable to sign, so they are sealed at
    # rest (``codex.crypto``, decision 0930) and read through the ``secret`` / ``previous_secret``
    # properties; only owners and admins see them. After a rotation the previous secret also
    # signs until ``previous_secret_expires_at``.
    sealed_secret = SealedTextField(help_text="The signing secret, sealed with CODEX_ENCRYPTION_KEYS.")
    sealed_previous_secret = SealedTextField(
        blank=True, default="", help_text="The secret before the last rotation, sealed; empty if none."
    )
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.url

    @property
    def secret(self) -> str:
        return unseal(self.sealed_secret)

    @secret.setter
    def secret(self, value: str) -> None:
        self.sealed_secret = seal(value)

    @property
    def previous_secret(self) -> str:
        return unseal(self.sealed_previous_secret) if self.sealed_previous_secret else ""

    @previous_secret.setter
    def previous_secret(self, value: str) -> None:
        self.sealed_previous_secret = seal(value) if value else ""


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event for one endpoint: created once (unique), attempted until it succeeds or gives up."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey("outbox.OutboxEvent", on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # An attempt in flight holds the delivery until then: a second task for it does nothing.
    claimed_until = models.DateTimeField(null=True, blank=True)
    # The task queued for the next attempt: its id and when it was queued, written in the same
    # transaction that decides to queue it, cleared when a worker claims the delivery (the task was
    # taken) and when no task waits (a long backoff is left to the sweep). The sweep re-queues only
    # a delivery with no task, or whose task the broker's delivery ledger no longer holds (lost).
    task_id = models.CharField(max_length=64, blank=True, default="")
    queued_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="webhook_delivery_once")]
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_log"),
            models.Index(fields=["next_attempt_at"], name="webhook_delivery_due", condition=models.Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.endpoint_id}: {self.status}"


class WebhookAttempt(models.Model):
    """The delivery log: one row per HTTP attempt, with what was sent and what came back."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    request_headers = models.JSONField(default=dict)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)
    response_body = models.TextField(blank=True)  # the first 2 KB

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_number")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"
