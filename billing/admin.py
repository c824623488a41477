from django.contrib import admin

from codex.admin import operator_site

from .models import Plan, Subscription


@admin.register(Plan, site=operator_site)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "price_month", "price_year", "currency", "max_seats", "max_portfolios"]
    search_fields = ["code", "name"]


@admin.register(Subscription, site=operator_site)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["tenant", "plan", "status", "interval", "current_period_end", "cancel_at_period_end"]
    list_filter = ["status", "plan", "interval"]
    search_fields = ["tenant__name", "tenant__slug"]
    list_select_related = ["tenant", "plan"]
