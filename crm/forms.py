"""Forms of the CRM pages. They parse input; the services validate the rules and write."""

from __future__ import annotations

from typing import ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q

from codex.imports import DuplicateMode
from codex.tables import TableFilterForm
from tenants.accounts.models import User

from . import access
from .models import Activity, ActivityKind, Campaign, Company, Contact, Deal, PipelineStage


def apply_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form: field errors inline, the rest on top."""
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


class CommaListField(forms.CharField):
    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list | tuple) else value

    def to_python(self, value):
        value = super().to_python(value)
        return [v.strip() for v in (value or "").replace(";", ",").split(",") if v.strip()]


class _OwnedForm(forms.ModelForm):
    """Owner and sharing are offered to managers only (advisors own what they create)."""

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        members = User.objects.filter(is_active=True).order_by("email")
        if "owner" in self.fields:
            self.fields["owner"].queryset = members
            if not access.can_assign_owner(user):
                del self.fields["owner"]
        if "shared_with" in self.fields:
            self.fields["shared_with"].queryset = members
            self.fields["shared_with"].required = False
            self.fields["shared_with"].help_text = "Advisors who also see this record."


class ContactForm(_OwnedForm):
    tags = CommaListField(required=False, help_text="Separate tags with commas.")
    other_emails = CommaListField(required=False, label="Other e-mails", help_text="Separate with commas.")
    other_phones = CommaListField(required=False, label="Other phones", help_text="Separate with commas.")

    class Meta:
        model = Contact
        fields = [
            "first_name",
            "last_name",
            "email",
            "phone",
            "other_emails",
            "other_phones",
            "company",
            "job_title",
            "lifecycle",
            "owner",
            "shared_with",
            "tags",
            "source",
            "notes",
        ]
        widgets = {"notes": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, user=user, **kwargs)
        self.fields["company"].queryset = access.companies_for(user).order_by("name")

    def validate_unique(self):
        """The service checks e-mail uniqueness (case-insensitive, with a clear message)."""

    def validate_constraints(self):
        """Likewise: the service turns the unique-email constraint into a field error."""


class CompanyForm(_OwnedForm):
    tags = CommaListField(required=False, help_text="Separate tags with commas.")

    class Meta:
        model = Company
        fields = ["name", "domain", "website", "phone", "industry", "owner", "shared_with", "tags", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 4})}


class DealForm(_OwnedForm):
    class Meta:
        model = Deal
        fields = [
            "title",
            "contact",
            "company",
            "stage",
            "amount",
            "currency",
            "probability",
            "expected_close",
            "owner",
            "shared_with",
            "notes",
        ]
        widgets = {
            "expected_close": forms.DateInput(attrs={"type": "date"}),
            "notes": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, user=user, **kwargs)
        self.fields["contact"].queryset = access.contacts_for(user).order_by("last_name", "first_name")
        self.fields["company"].queryset = access.companies_for(user).order_by("name")
        self.fields["stage"].queryset = PipelineStage.objects.filter(is_active=True)
        self.fields["probability"].required = False
        self.fields["probability"].help_text = "Per cent; leave empty to use the stage's."
        if self.instance.pk:
            del self.fields["stage"]  # moving is its own action (history)


class PipelineStageForm(forms.ModelForm):
    class Meta:
        model = PipelineStage
        fields = ["name", "position", "probability", "kind", "is_active"]
        labels = {"probability": "Default probability (%)", "is_active": "In use"}

    def validate_unique(self):
        """The service checks names case-insensitively, with a clear message."""

    def validate_constraints(self):
        """Likewise."""


class DealMoveForm(forms.Form):
    stage = forms.ModelChoiceField(queryset=PipelineStage.objects.filter(is_active=True), empty_label=None)
    reason = forms.CharField(required=False, max_length=300, label="Reason (won/lost)")


class ActivityForm(forms.ModelForm):
    class Meta:
        model = Activity
        fields = ["kind", "subject", "body", "occurred_at", "due_date"]
        widgets = {
            "body": forms.Textarea(attrs={"rows": 3}),
            "occurred_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            "due_date": forms.DateInput(attrs={"type": "date"}),
        }
        labels = {"occurred_at": "When", "due_date": "Due (tasks)"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["occurred_at"].required = False

    def clean(self):
        data = super().clean()
        if data.get("due_date") and data.get("kind") != ActivityKind.TASK:
            self.add_error("due_date", "Only tasks have a due date.")
        return data


class TaskForm(forms.Form):
    subject = forms.CharField(max_length=200, label="Task")
    due_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    body = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Details")


class TaskFilterForm(TableFilterForm):
    """Filters of the task list (which tasks, words of the task), from the query string."""

    when = forms.ChoiceField(
        label="Tasks",
        required=False,
        choices=[
            ("", "Later or undated"),
            ("open", "All open"),
            ("overdue", "Overdue"),
            ("today", "Due today"),
            ("done", "Done"),
        ],
    )
    q = forms.CharField(label="Task or contact contains", max_length=100, required=False)

    lookups: ClassVar = {
        # "when" picks the selector's set of tasks in the view.
        "q": lambda qs, value: qs.filter(
            Q(subject__icontains=value)
            | Q(contact__first_name__icontains=value)
            | Q(contact__last_name__icontains=value)
        ),
    }


class MergeForm(forms.Form):
    other = forms.CharField(
        label="Duplicate to merge into this record",
        help_text="Its id or (for contacts) its e-mail address. It is deleted after its records move here.",
        max_length=254,
    )


class ImportUploadForm(forms.Form):
    kind = forms.ChoiceField(choices=[("contacts", "Contacts"), ("companies", "Companies")])
    file = forms.FileField(help_text="CSV, UTF-8 (Excel: “CSV UTF-8”), up to 20 MB, first row = column names.")


class ImportMappingForm(forms.Form):
    duplicates = forms.ChoiceField(
        choices=DuplicateMode.choices, label="When the e-mail (or name) already exists", initial=DuplicateMode.SKIP
    )

    def __init__(self, *args, headers=(), field_choices=(), mapping=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.headers = list(headers)
        mapping = mapping or {}
        for i, header in enumerate(self.headers):
            self.fields[f"col_{i}"] = forms.ChoiceField(
                label=f"Column “{header}”",
                choices=[("", "— do not import —"), *field_choices],
                required=False,
                initial=mapping.get(header, ""),
            )

    def mapping(self) -> dict[str, str]:
        return {h: self.cleaned_data.get(f"col_{i}", "") for i, h in enumerate(self.headers)}


class SubscriberForm(forms.Form):
    email = forms.EmailField(label="E-mail address")


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = ["subject", "body"]
        widgets = {"body": forms.Textarea(attrs={"rows": 14})}
