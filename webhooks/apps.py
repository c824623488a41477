from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from codex.outbox.services import subscribe

        from .services import events_fan_out

        # Every committed business event is offered to the firm's endpoints.
        subscribe(events_fan_out)
