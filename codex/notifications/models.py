from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class NotificationKind(models.TextChoices):
    ALERT = "alert", "Alert fired"
    IMPORT = "import", "Import finished"
    TASK = "task", "Task assigned"
    WEBHOOK = "webhook", "Webhook endpoint"
    FEE_RUN = "fee_run", "Fee run ready"
    REPORT = "report", "Report ready"


class Notification(models.Model):
    """One notice for one member of the firm; ``read_at`` is that member's own state."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=16, choices=NotificationKind.choices)
    title = models.CharField(max_length=200)
    body = models.CharField(max_length=500, blank=True, default="")
    url = models.CharField(max_length=300, blank=True, default="", help_text="A path on the firm's host.")
    source = models.CharField(
        max_length=120,
        blank=True,
        default="",
        help_text="What raised it (e.g. alert:12); a source notifies each member once.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "source"], condition=~Q(source=""), name="notification_once_per_source"
            ),
            models.CheckConstraint(condition=Q(kind__in=NotificationKind.values), name="notification_kind_valid"),
            models.CheckConstraint(
                condition=Q(url="") | (Q(url__startswith="/") & ~Q(url__startswith="//")),
                name="notification_url_is_a_path",
            ),
        ]
        indexes = [
            models.Index(fields=["recipient", "-created_at", "-id"], name="notification_recipient_idx"),
            models.Index(fields=["recipient"], condition=Q(read_at__isnull=True), name="notification_unread_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.title}"

    @property
    def unread(self) -> bool:
        return self.read_at is None
