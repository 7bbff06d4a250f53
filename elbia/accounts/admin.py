"""Staff views of API tokens: read everything, change only a token's own rate limit."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from elbia.accounts.models import ApiToken
from elbia.accounts.services import token_set_rate_limit, validate_rate_limit


class ApiTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["rate_limit"]

    def clean_rate_limit(self) -> str:
        value = self.cleaned_data["rate_limit"].strip()
        try:
            validate_rate_limit(value)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["rate_limit"]) from None
        return value


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = ["name", "account", "user", "scopes", "rate_limit", "expires_at", "last_used_at", "revoked_at"]
    list_select_related = ["account", "user"]
    search_fields = ["name", "user__username", "account__name"]
    fields = ["name", "account", "user", "scopes", "rate_limit", "created_at", "expires_at", "last_used_at"]
    readonly_fields = ["name", "account", "user", "scopes", "created_at", "expires_at", "last_used_at"]

    def has_add_permission(self, request) -> bool:
        return False  # tokens are issued by token_issue (dashboard, issue_token), the only time their secret exists

    def save_model(self, request, obj, form, change) -> None:
        token_set_rate_limit(api_token=obj, rate_limit=form.cleaned_data["rate_limit"])
