from django.apps import AppConfig


class PortfoliosConfig(AppConfig):
    name = "portfolios"
    verbose_name = "Portfolios"

    def ready(self) -> None:
        from codex.api.errors import Conflict, register_exception

        from .analytics import AnalyticsError

        # A figure that cannot be computed from the data as stored (e.g. no FX rate for a
        # currency the portfolio holds) is a data problem the caller can fix: 409, not a 500.
        register_exception(AnalyticsError, lambda exc: Conflict(str(exc), code="cannot_compute"))

        from .selectors import NoTransactionsYet
        from .services import LedgerStateConflict

        register_exception(LedgerStateConflict, lambda exc: Conflict(exc.messages[0], details=exc.message_dict))
        register_exception(
            NoTransactionsYet,
            lambda exc: Conflict(exc.messages[0], details=exc.message_dict, code="no_transactions"),
        )
