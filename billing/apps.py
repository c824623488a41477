from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from codex.api.errors import PlanLimitExceeded as ApiPlanLimit
        from codex.api.errors import register_exception

        from .entitlements import PlanLimitExceeded

        register_exception(
            PlanLimitExceeded,
            lambda exc: ApiPlanLimit(
                str(exc),
                {"limit": exc.limit, "allowed": exc.allowed, "used": exc.used, "billing_url": exc.billing_url},
                code=exc.code,
            ),
        )
