from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "elbia.accounts"
    label = "accounts"
    verbose_name = "Accounts and API tokens"

    def ready(self) -> None:
        # Renewals keep ApiToken current; token_cache forgets cached tokens whenever one ends.
        from elbia.accounts import signals, token_cache  # noqa: F401
