import uuid

from django.db import models


class OutboxEvent(models.Model):
    """One business event of the firm, written in the transaction of the change it describes."""

    # The Standard Webhooks message id (``webhook-id``) is derived from it: stable across retries.
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=64)
    data = models.JSONField()
    # "<kind>:<id>" of the record the event is about; deliveries of one resource are ordered by id.
    resource = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set once the relay handed the event to every subscriber; the sweep relays the rest.
    relayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["created_at"], name="outbox_unrelayed", condition=models.Q(relayed_at__isnull=True)),
            models.Index(fields=["created_at"], name="outbox_created"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.uid}"

    @property
    def message_id(self) -> str:
        return f"msg_{self.uid.hex}"

    def envelope(self) -> dict:
        """The body sent to receivers (Standard Webhooks: type, timestamp, data)."""
        return {"type": self.type, "timestamp": self.created_at.isoformat(), "data": self.data}
