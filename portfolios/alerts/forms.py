from __future__ import annotations

from django import forms

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
