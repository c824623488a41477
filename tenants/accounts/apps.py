from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "tenants.accounts"
    label = "accounts"
    verbose_name = "Users"

    def ready(self) -> None:
        # Session clocks at sign-in.
        from codex.security import signals  # noqa: F401
