from django.apps import AppConfig


class PlatformStatusConfig(AppConfig):
    name = "codex.status"
    label = "platform_status"
    verbose_name = "Platform"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (beat's last run, recorded when it sends the check task)
