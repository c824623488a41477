from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # Imports here, not at the top: app modules load models, which need the app registry ready.
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

        # tenants sits below billing and imports none of it: billing plugs into provisioning (the
        # plan must exist; the new firm's trial) and into adding seats (the plan's seat limit).
        from tenants.registry import register_provisioning, register_seat_check

        from .entitlements import check_can_add_seat
        from .services import plan_checked, subscription_start_trial_for_code

        register_provisioning(check=plan_checked, step=subscription_start_trial_for_code)
        register_seat_check(check_can_add_seat)

        # Lifting a suspension follows the subscription; a suspended firm's page names its unpaid invoice.
        from tenants.registry import register_blocked_page_source, register_status_source

        from .selectors import firm_status_from_subscription, unpaid_invoice_for_blocked_page

        register_status_source(firm_status_from_subscription)
        register_blocked_page_source(unpaid_invoice_for_blocked_page)
