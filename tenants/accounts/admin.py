from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from codex.admin import operator_site

from .models import User


@admin.register(User, site=operator_site)
class OperatorUserAdmin(BaseUserAdmin):
    """Operators' own accounts (public schema). Firm users are managed by firms on their team page."""

    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_staff", "is_superuser", "is_active", "last_login"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
