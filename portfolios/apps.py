from django.apps import AppConfig


class PortfoliosConfig(AppConfig):
    name = "portfolios"
    verbose_name = "Portfolios"

    def ready(self) -> None:
        from codex.api.errors import Conflict, register_exception
        from portfolios.market.services import prices_imported

        from .analytics import AnalyticsError
        from .valuation_services import valuations_enqueue_for_import

        # A figure that cannot be computed from the data as stored (e.g. no FX rate for a
        # currency the portfolio holds) is a data problem the caller can fix: 409, not a 500.
        register_exception(AnalyticsError, lambda exc: Conflict(str(exc), code="cannot_compute"))

        # After a price or FX import commits, every firm revalues the portfolios it touches from
        # the import's first date, in the background (docs/analytics.md, "Stored valuations").
        prices_imported.connect(valuations_enqueue_for_import, dispatch_uid="portfolios.valuations_for_import")
