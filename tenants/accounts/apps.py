from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "tenants.accounts"
    label = "accounts"
    verbose_name = "Users"

    def ready(self) -> None:
        # Imports here, not at the top: app modules load models, which need the app registry ready.
        # Session clocks at sign-in; deploy checks of the lean middlewares.
        from codex.security import checks, signals  # noqa: F401
