from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "elbia.accounts"
    label = "accounts"
    verbose_name = "Accounts and API tokens"

    def ready(self) -> None:
        from elbia.accounts import signals  # noqa: F401
