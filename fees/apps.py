from django.apps import AppConfig


class FeesConfig(AppConfig):
    name = "fees"
    verbose_name = "Fees"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # crm sits below fees: it offers a registry and a signal, fed here (docs/architecture.md).
        from crm.record_sources import contact_merging, register_client_record_source

        from .client_record import client_fee_items, fees_follow_merged_contact

        register_client_record_source(timeline=client_fee_items)
        contact_merging.connect(fees_follow_merged_contact, dispatch_uid="fees-follow-merged-contact")
