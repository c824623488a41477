from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The client portal's server side: client users, the document vault, firm posts, reports."""

    name = "portal"
    label = "portal"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The client record in crm lists the client's documents on its timeline; crm sits below
        # portal and offers a registry (crm.record_sources), fed here.
        from crm.record_sources import register_client_record_source

        from .client_record import client_document_items

        register_client_record_source(timeline=client_document_items, category="documents")
