from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The client portal's server side: client users, the document vault, firm posts, reports."""

    name = "portal"
    label = "portal"
    default_auto_field = "django.db.models.BigAutoField"
