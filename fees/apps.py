from django.apps import AppConfig


class FeesConfig(AppConfig):
    name = "fees"
    verbose_name = "Fees"
    default_auto_field = "django.db.models.BigAutoField"
