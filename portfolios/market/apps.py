from django.apps import AppConfig


class MarketConfig(AppConfig):
    name = "portfolios.market"
    label = "market"
    verbose_name = "Market data"

    def ready(self) -> None:
        # Imports here, not at the top: the services module loads models, which need the registry ready.
        from codex.api.errors import Conflict, register_exception
        from codex.status import checks

        from .selectors import feed_health_check
        from .services import SymbolTaken

        # Operators see the feeds' health beside the other services on the platform status page.
        checks.register("market_feeds", "Market-data feeds", feed_health_check)

        # A symbol the firm already uses is a conflict with what is stored, not malformed input.
        register_exception(
            SymbolTaken, lambda exc: Conflict(exc.messages[0], details=exc.message_dict, code="symbol_taken")
        )
