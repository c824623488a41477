from __future__ import annotations

from typing import ClassVar

from django import forms

from codex.tables import TableFilterForm
from portfolios.access import portfolios_visible_to
from portfolios.market.models import Instrument
from portfolios.models import Portfolio

from .models import RuleKind


class AlertRuleForm(forms.Form):
    kind = forms.ChoiceField(choices=RuleKind.choices, label="Alert when")
    instrument = forms.ModelChoiceField(
        queryset=Instrument.objects.filter(is_active=True).order_by("symbol"),
        required=False,
        help_text="For price and daily-move alerts.",
    )
    portfolio: forms.ModelChoiceField[Portfolio] = forms.ModelChoiceField(
        queryset=None, required=False, help_text="For drawdown alerts."
    )
    threshold = forms.CharField(
        max_length=40, help_text="A price in the instrument's currency, or a percentage for moves and drawdowns."
    )
    note = forms.CharField(max_length=200, required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["portfolio"].queryset = portfolios_visible_to(user, include_archived=False).order_by("name")


class AlertEventFilterForm(TableFilterForm):
    """Filters of the alerts that fired (the alerts page), from the query string."""

    kind = forms.ChoiceField(label="Alert kind", choices=[("", "All kinds"), *RuleKind.choices], required=False)
    state = forms.ChoiceField(
        label="State", choices=[("", "Read and unread"), ("unread", "Unread"), ("read", "Read")], required=False
    )
    date_from = forms.DateField(label="Price date from", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="to", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    lookups: ClassVar = {
        "kind": "rule__kind",
        "state": lambda qs, value: qs.filter(unread=value == "unread"),
        "date_from": "observed_on__gte",
        "date_to": "observed_on__lte",
    }

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data
