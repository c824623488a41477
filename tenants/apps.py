from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Firms"

    def ready(self) -> None:
        # Imports here, not at the top: app modules load models, which need the app registry ready.
        from codex.admin import register_operator_admins
        from codex.metrics import register_scrape_collector

        from . import signals  # noqa: F401  (host cache invalidation, audit of sign-ins)
        from .metrics import FIRMS_BY_STATUS

        register_operator_admins()
        register_scrape_collector(FIRMS_BY_STATUS)
