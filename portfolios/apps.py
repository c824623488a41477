from django.apps import AppConfig


class PortfoliosConfig(AppConfig):
    name = "portfolios"
    verbose_name = "Portfolios"

    def ready(self) -> None:
        # Imports here, not at the top: app modules load models, which need the app registry ready.
        from codex.api.errors import Conflict, register_exception
        from portfolios.market.services import prices_imported

        from .analytics import AnalyticsError
        from .valuation_services import valuations_enqueue_for_import

        # A figure that cannot be computed from the data as stored (e.g. no FX rate for a
        # currency the portfolio holds) is a data problem the caller can fix: 409, not a 500.
        register_exception(AnalyticsError, lambda exc: Conflict(str(exc), code="cannot_compute"))

        from .corporate_actions import ActionNotPending
        from .selectors import NoTransactionsYet
        from .services import LedgerStateConflict

        register_exception(LedgerStateConflict, lambda exc: Conflict(exc.messages[0], details=exc.message_dict))
        register_exception(
            ActionNotPending,
            lambda exc: Conflict(exc.messages[0], details=exc.message_dict, code="action_not_pending"),
        )
        register_exception(
            NoTransactionsYet,
            lambda exc: Conflict(exc.messages[0], details=exc.message_dict, code="no_transactions"),
        )
        # The client record in crm shows portfolio figures and transactions; a contact merge moves
        # portfolios. crm cannot import portfolios (it sits below it): it offers a registry and a
        # signal, fed here (crm.record_sources, docs/architecture.md).
        from crm.record_sources import (
            contact_merging,
            register_client_list_source,
            register_client_record_source,
            register_search_source,
        )

        from .client_record import (
            client_list_figures,
            client_portfolio_figures,
            client_transaction_items,
            portfolios_follow_merged_contact,
        )

        register_client_record_source(
            figures=client_portfolio_figures, timeline=client_transaction_items, category="transactions"
        )
        register_client_list_source(client_list_figures)
        # The search page finds portfolios and tickers too (decision 1260).
        from .selectors.search import instrument_search_hits, portfolio_search_hits

        register_search_source(portfolio_search_hits)
        register_search_source(instrument_search_hits)
        contact_merging.connect(portfolios_follow_merged_contact, dispatch_uid="portfolios-follow-merged-contact")

        # billing limits portfolios per plan and counts them through the counter registered here.
        from billing.entitlements import register_resource_counter

        from .models import Portfolio

        register_resource_counter("portfolios", Portfolio.objects.count)
        # After a price or FX import commits, every firm revalues the portfolios it touches from
        # the import's first date, in the background (docs/analytics.md, "Stored valuations").
        prices_imported.connect(valuations_enqueue_for_import, dispatch_uid="portfolios.valuations_for_import")
