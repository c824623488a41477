from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from codex.api.errors import PlanLimitExceeded as ApiPlanLimit
        from codex.api.errors import register_exception
        from codex.api.throttles import register_plan_code_source

        from .entitlements import PlanLimitExceeded, plan_code_of

        register_exception(
            PlanLimitExceeded,
            lambda exc: ApiPlanLimit(
                str(exc),
                {"limit": exc.limit, "allowed": exc.allowed, "used": exc.used, "billing_url": exc.billing_url},
                code=exc.code,
            ),
        )
        # The API throttle scales each firm's rate by its plan; it asks billing through this source.
        register_plan_code_source(plan_code_of)
