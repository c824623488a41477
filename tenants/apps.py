from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Firms"

    def ready(self) -> None:
        # Imports here, not at the top: app modules load models, which need the app registry ready.
        from codex.admin import register_operator_admins

        from . import signals  # noqa: F401  (host cache invalidation, audit of sign-ins)

        register_operator_admins()
