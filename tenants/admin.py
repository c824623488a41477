from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import path, reverse
from django.utils.html import format_html

from codex.admin import RefuseDeleteMixin, operator_site

from . import services
from .backup import ExportError
from .db_backup import backup_status
from .models import ApiKey, AuditEvent, Domain, Tenant
from .selectors import firm_overview, tenant_user_counts
from .support_admin import support_start_view
from .suspend_admin import suspend_confirm_view

# Sections of a firm's page in the console contributed by the apps above tenants, which tenants
# cannot import (billing: plan, MRR, usage against limits, open invoices): each a template and a
# function of the firm whose result the template shows as ``section``.
FIRM_SUMMARY_SECTIONS: list[tuple[str, Callable[[Tenant], object]]] = []


def register_firm_summary_section(template: str, compute: Callable[[Tenant], object]) -> None:
    FIRM_SUMMARY_SECTIONS.append((template, compute))


class DomainInline(admin.StackedInline):  # labelled fields (a tabular row has none)
    model = Domain
    extra = 0
    fields = ["domain", "is_primary", "created_at"]
    readonly_fields = ["created_at"]


class TenantCreationForm(forms.ModelForm):
    owner_email = forms.EmailField(help_text="The firm's first owner; they set a password via reset.")
    plan_code = forms.CharField(initial="starter")

    class Meta:
        model = Tenant
        fields = ["name", "slug"]


@admin.register(Tenant, site=operator_site)
class TenantAdmin(RefuseDeleteMixin, admin.ModelAdmin):
    delete_refusal = (
        'A firm is deleted in two steps that keep its data safe: the action "Close selected firms" '
        '(which exports it), then "Delete selected closed firms".'
    )
    list_display = ["name", "slug", "status", "users", "created_at", "support_link"]
    list_filter = ["status", "created_at"]
    search_fields = ["name", "slug", "domains__domain"]
    readonly_fields = ["schema_name", "slug", "status", "created_at", "status_changed_at"]
    fields = ["name", "slug", "schema_name", "status", "require_2fa", "brand_color", "created_at", "status_changed_at"]
    inlines = [DomainInline]
    actions = ["suspend", "reactivate", "close", "delete_exported"]
    list_per_page = 50

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        self._user_counts = tenant_user_counts(tenants=list(changelist.result_list))
        return changelist

    @admin.display(description="Users")
    def users(self, obj):
        return getattr(self, "_user_counts", {}).get(obj.pk, "–")

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # The firm's summary above its form: people, activity and domains here, billing from billing.
        if obj is not None and not add:
            context["firm_overview"] = firm_overview(tenant=obj)
            context["firm_sections"] = [(template, compute(obj)) for template, compute in FIRM_SUMMARY_SECTIONS]
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = TenantCreationForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ["name", "slug", "owner_email", "plan_code"] if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_inlines(self, request, obj):
        return [] if obj is None else self.inlines

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # New firms go through the provisioning service: schema clone, domain, owner, trial.
        try:
            tenant = services.tenant_provision(
                name=form.cleaned_data["name"],
                slug=form.cleaned_data["slug"],
                owner_email=form.cleaned_data["owner_email"],
                plan_code=form.cleaned_data["plan_code"],
                actor=request.user.email,
            )
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc
        obj.pk = tenant.pk
        obj.refresh_from_db()

    @admin.action(description="Suspend selected firms…")
    def suspend(self, request, queryset):
        """A confirmation page first, with the reason the firms' people will read (required)."""
        return suspend_confirm_view(self, request, queryset)

    @admin.action(description="Reactivate selected firms (each returns to its status before)")
    def reactivate(self, request, queryset):
        done = 0
        for tenant in queryset:
            try:
                tenant = services.tenant_reactivate(tenant=tenant, actor=request.user.email)
            except services.InvalidTransition as exc:
                self.message_user(request, f"{tenant.slug}: {exc}", messages.WARNING)
            else:
                done += 1
                self.message_user(
                    request, f"{tenant.name} ({tenant.slug}) is {tenant.get_status_display().lower()} again."
                )
        if not done:
            self.message_user(request, "No firm reactivated.", messages.WARNING)

    @admin.action(description="Close selected firms (each is exported; data kept)")
    def close(self, request, queryset):

        for tenant in queryset:
            try:
                tenant, result = services.tenant_close_with_export(
                    tenant=tenant, actor=request.user.email, reason="operator action"
                )
            except (services.InvalidTransition, ExportError) as exc:
                self.message_user(request, f"{tenant.slug}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{tenant.slug} closed; export {result.path} ({result.size} bytes).")

    @admin.action(description="Delete selected closed firms (needs their export; irreversible)")
    def delete_exported(self, request, queryset):
        # The only way to delete a firm: the model's own delete is disabled below.
        if not request.user.is_superuser:
            self.message_user(request, "Only superusers may delete firms.", messages.ERROR)
            return
        for tenant in queryset:
            try:
                export = services.tenant_delete(tenant=tenant, actor=request.user.email)
            except (services.InvalidTransition, services.ExportRequired) as exc:
                self.message_user(request, f"{tenant.slug}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{tenant.slug} deleted; its export is {export['path']}.")

    def get_urls(self):

        view = self.admin_site.admin_view(lambda request, object_id: support_start_view(self, request, object_id))
        return [path("<int:object_id>/support/", view, name="tenants_tenant_support"), *super().get_urls()]

    @admin.display(description="Support")
    def support_link(self, obj):

        url = reverse(f"{self.admin_site.name}:tenants_tenant_support", args=[obj.pk])
        return format_html('<a href="{}">Open read-only support session…</a>', url)


@admin.register(Domain, site=operator_site)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["domain", "tenant", "is_primary", "created_at"]
    search_fields = ["domain", "tenant__name", "tenant__slug"]
    list_filter = ["is_primary"]
    list_select_related = ["tenant"]
    autocomplete_fields = ["tenant"]

    def has_delete_permission(self, request, obj=None):
        # A firm's primary domain is where its users sign in: make another primary first.
        return obj is None or not obj.is_primary


@admin.register(ApiKey, site=operator_site)
class ApiKeyAdmin(admin.ModelAdmin):
    """Metadata only: the key itself is never stored."""

    list_display = ["name", "prefix", "tenant", "scope", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["scope", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "tenant__slug"]
    list_select_related = ["tenant"]
    readonly_fields = [
        "tenant",
        "name",
        "prefix",
        "scope",
        "created_by",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    exclude = ["hashed_key"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        for key in queryset.select_related("tenant"):
            services.api_key_revoke(key=key, actor=request.user.email)
        self.message_user(request, "Keys revoked.")


@admin.register(AuditEvent, site=operator_site)
class AuditEventAdmin(admin.ModelAdmin):
    """Append-only: nobody adds, edits or deletes audit events."""

    list_display = ["created_at", "action", "actor", "tenant_slug", "target", "ip"]
    list_filter = ["action", "created_at"]
    search_fields = ["actor", "target", "tenant_slug", "action"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# The console's first page shows the last database backup's age, alerting when it is too old.
operator_site.register_index_panel("backup", backup_status)
