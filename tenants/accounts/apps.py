from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "tenants.accounts"
    label = "accounts"
    verbose_name = "Users"

    def ready(self) -> None:
        from codex.security import signals  # noqa: F401  (session clocks at sign-in)
