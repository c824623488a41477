from django.apps import AppConfig


class MarketConfig(AppConfig):
    name = "portfolios.market"
    label = "market"
    verbose_name = "Market data"

    def ready(self) -> None:
        # Imports here, not at the top: the services module loads models, which need the registry ready.
        from codex.api.errors import Conflict, register_exception

        from .services import SymbolTaken

        # A symbol the firm already uses is a conflict with what is stored, not malformed input.
        register_exception(
            SymbolTaken, lambda exc: Conflict(exc.messages[0], details=exc.message_dict, code="symbol_taken")
        )
