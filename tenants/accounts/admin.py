from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import ValidationError
from django_otp.plugins.otp_static.models import StaticDevice

from codex.admin import RefuseDeleteMixin, operator_site
from tenants.services import audit_record

from . import services
from .models import SealedTOTPDevice, User


@admin.register(User, site=operator_site)
class OperatorUserAdmin(RefuseDeleteMixin, BaseUserAdmin):
    """Operators' own accounts (public schema). Firm users are managed by firms on their team page.

    Operators are deactivated, never deleted (``services.operator_deactivate``)."""

    delete_refusal = (
        "Operators are not deleted: the audit trail names them, and firms' records refer to users. "
        'Use the action "Deactivate selected operators" instead.'
    )
    actions = ["deactivate", "reactivate"]

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

    @admin.action(description="Deactivate selected operators")
    def deactivate(self, request, queryset):
        done = 0
        for operator in queryset:
            try:
                services.operator_deactivate(actor=request.user, operator=operator)
                done += 1
            except ValidationError as exc:
                self.message_user(request, f"{operator.email}: {' '.join(exc.messages)}", messages.ERROR)
        self.message_user(request, f"{done} operator(s) deactivated.")

    @admin.action(description="Reactivate selected operators")
    def reactivate(self, request, queryset):
        for operator in queryset:
            services.operator_reactivate(actor=request.user, operator=operator)
        self.message_user(request, f"{queryset.count()} operator(s) reactivated.")


class _DeviceAdmin(admin.ModelAdmin):
    """Operators' own second factors: see them, delete one to let a locked-out operator enrol
    again. Keys and recovery codes are never shown."""

    list_display = ["user", "name", "confirmed"]
    list_select_related = ["user"]
    search_fields = ["user__email"]
    readonly_fields = ("user", "name", "confirmed")
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return bool(request.user.is_superuser)

    def delete_model(self, request, obj):

        audit_record(action="2fa.reset", actor=request.user.email, target=obj.user.email, details={"device": obj.name})
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset.select_related("user"):
            self.delete_model(request, obj)


# django-otp registers its own admins on Django's default site, which Codex does not serve.
operator_site.register(SealedTOTPDevice, _DeviceAdmin)
operator_site.register(StaticDevice, _DeviceAdmin)
