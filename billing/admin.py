"""The price book in the admin: staff add a price with the month it applies from (history is kept)."""

from django.contrib import admin

from billing.models import Price


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = ["kind", "instance_type", "unit_price", "currency", "effective_from", "created_at"]
    list_filter = ["kind", "effective_from", "currency"]
    search_fields = ["instance_type"]
    ordering = ["kind", "instance_type", "-effective_from"]
    date_hierarchy = "effective_from"
