from typing import ClassVar

from django import forms

from codex.tables import TableFilterForm

from .models import BillingInterval, InvoiceStatus, Plan


class PlanChangeForm(forms.Form):
    plan = forms.ModelChoiceField(queryset=Plan.objects.filter(is_public=True), to_field_name="code", empty_label=None)
    interval = forms.ChoiceField(choices=BillingInterval.choices, label="Billing")


class InvoiceFilterForm(TableFilterForm):
    """Filters of the firm's invoices on its billing page, from the query string."""

    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[("", "Any status"), *((v, label) for v, label in InvoiceStatus.choices if v != InvoiceStatus.DRAFT)],
    )
    date_from = forms.DateField(label="Period from", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="to", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    lookups: ClassVar = {
        "status": "status",
        "date_from": "period_end__date__gt",
        "date_to": "period_start__date__lte",
    }

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data
