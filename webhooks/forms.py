from typing import ClassVar

from django import forms

from codex.outbox.catalogue import CATALOGUE, SUBSCRIBABLE
from codex.tables import TableFilterForm

from .models import DeliveryStatus


class EndpointForm(forms.Form):
    url = forms.URLField(
        label="URL", max_length=500, help_text="An https:// address of your system, reachable from the internet."
    )
    description = forms.CharField(max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        label="Events",
        choices=[(name, f"{name} — {CATALOGUE[name].description}") for name in SUBSCRIBABLE],
        widget=forms.CheckboxSelectMultiple,
    )
    enabled = forms.BooleanField(required=False, initial=True)


class DeliveryFilterForm(TableFilterForm):
    """Filters of an endpoint's delivery log, from the query string."""

    status = forms.ChoiceField(label="Status", choices=[("", "Any status"), *DeliveryStatus.choices], required=False)
    event_type = forms.ChoiceField(
        label="Event", choices=[("", "Any event"), *((name, name) for name in sorted(CATALOGUE))], required=False
    )
    date_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    lookups: ClassVar = {
        "status": "status",
        "event_type": "event__type",
        "date_from": "created_at__date__gte",
        "date_to": "created_at__date__lte",
    }

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data
