from django.apps import AppConfig


class FeesConfig(AppConfig):
    name = "fees"
    verbose_name = "Fees"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from codex.api.errors import Conflict, register_exception

        from .services import FeeStateConflict

        register_exception(FeeStateConflict, lambda exc: Conflict(exc.messages[0], details=exc.message_dict))

        from codex.api.schema import add_component_constraint

        # services.billing_group_create: a group holds at least one account; services.product_create:
        # a product has a flat fee, a fee schedule, or both.
        add_component_constraint("BillingGroupRequest", {"allOf": [{"properties": {"portfolios": {"minItems": 1}}}]})
        add_component_constraint(
            "FeeProductRequest",
            {
                "anyOf": [
                    {"required": ["flat_fee"], "properties": {"flat_fee": {"type": "string"}}},
                    {"required": ["fee_schedule"], "properties": {"fee_schedule": {"type": "integer"}}},
                ]
            },
        )

        # api.FeeRunJobStartSerializer: a preview names its period, an issue its run.
        add_component_constraint(
            "FeeRunJobStartRequest",
            {
                "oneOf": [
                    {
                        "required": ["kind", "period_start", "period_end", "frequency"],
                        "properties": {"kind": {"enum": ["preview"]}},
                    },
                    {"required": ["kind", "run"], "properties": {"kind": {"enum": ["issue"]}}},
                ]
            },
        )

        # crm sits below fees: it offers a registry and a signal, fed here (docs/architecture.md).
        from crm.record_sources import contact_merging, register_client_record_source

        from .client_record import client_fee_items, fees_follow_merged_contact

        register_client_record_source(timeline=client_fee_items, category="fees")
        contact_merging.connect(fees_follow_merged_contact, dispatch_uid="fees-follow-merged-contact")
