from django.apps import AppConfig
from django.db.backends.signals import connection_created


def set_trigram_threshold(sender, connection, **kwargs) -> None:
    """CRM search's typo threshold for pg_trgm's ``<%`` operator, on every new database connection
    (a session setting; decision 0201). Set before pg_trgm is loaded, it is kept as a placeholder
    that the extension adopts when a search first uses it."""
    if connection.vendor != "postgresql":
        return
    from .selectors import WORD_SIMILARITY_THRESHOLD

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('pg_trgm.word_similarity_threshold', %s, false)", [str(WORD_SIMILARITY_THRESHOLD)]
        )


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "CRM"

    def ready(self) -> None:
        connection_created.connect(set_trigram_threshold, dispatch_uid="crm-trigram-threshold")

        # Imports here, not at the top: app modules load models, which need the app registry ready.
        from codex.api.errors import Conflict, register_exception

        from .services import NameTaken, StateConflict

        # A duplicate name conflicts with a stored row: 409 with the field's error, not a 400.
        register_exception(
            NameTaken, lambda exc: Conflict(exc.messages[0], details=exc.message_dict, code="name_taken")
        )
        # So does a change the record's state no longer allows (a finished import...).
        register_exception(
            StateConflict,
            lambda exc: Conflict(
                exc.messages[0],
                details=exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages},
            ),
        )

        from codex.api.schema import add_component_constraint

        from .models import ActivityKind

        # Only tasks have a due date (services.activity_log): the created activity's kind says
        # whether ``due_date`` may be given.
        others = sorted(str(kind.value) for kind in ActivityKind if kind != ActivityKind.TASK)
        add_component_constraint(
            "ActivityRequest",
            {
                "oneOf": [
                    {"properties": {"kind": {"enum": [str(ActivityKind.TASK.value)]}}},
                    {"properties": {"kind": {"enum": others}, "due_date": {"nullable": True, "enum": [None]}}},
                ]
            },
        )

        # billing limits contacts per plan and counts them through the counter crm registers.
        from billing.entitlements import register_resource_counter

        from .models import Contact

        register_resource_counter("contacts", Contact.objects.count)
