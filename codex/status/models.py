from django.db import models


class State(models.TextChoices):
    OK = "ok", "Operational"
    DEGRADED = "degraded", "Degraded"
    DOWN = "down", "Down"


class ServiceCheck(models.Model):
    """One check of one service, recorded every minute by beat (public schema, 90 days kept)."""

    checked_at = models.DateTimeField(db_index=True)
    service = models.CharField(max_length=32)
    state = models.CharField(max_length=10, choices=State.choices)
    latency_ms = models.PositiveIntegerField(default=0)
    detail = models.CharField(max_length=300, blank=True)  # for operators only

    class Meta:
        verbose_name = "platform status"
        verbose_name_plural = "platform status"
        indexes = [models.Index(fields=["service", "-checked_at"], name="service_check_latest")]

    def __str__(self) -> str:
        return f"{self.service} {self.state} at {self.checked_at:%Y-%m-%d %H:%M}"
