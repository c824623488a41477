"""Forms of the site's own pages (firm settings)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from portfolios.models import NegativeCash
from tenants.firm_settings import brand_color_normalise


class FirmSettingsForm(forms.Form):
    name = forms.CharField(label="Firm name", max_length=200)
    brand_color = forms.CharField(
        label="Brand colour",
        required=False,
        max_length=7,
        help_text="A colour like #1d4ed8 for the header and the firm's mark; leave empty for Codex blue.",
        widget=forms.TextInput(attrs={"placeholder": "#1d4ed8", "autocomplete": "off", "spellcheck": "false"}),
    )
    require_2fa = forms.BooleanField(
        label="Require two-factor sign-in for everyone",
        required=False,
        help_text="Members without an authenticator app are asked to set one up at their next sign-in.",
    )

    def clean_brand_color(self):

        try:
            return brand_color_normalise(self.cleaned_data.get("brand_color", ""))
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["brand_color"]) from exc


class LedgerSettingsForm(forms.Form):
    """The firm's ledger rules (``portfolios.services.ledger_settings_update``)."""

    negative_cash = forms.ChoiceField(
        label="When a transaction takes a cash balance below zero",
        choices=NegativeCash.choices,
        widget=forms.RadioSelect,
        help_text="Warn keeps the transaction and shows the balance in red with the reason; refuse rejects it.",
    )
    reconciliation_tolerance = forms.DecimalField(
        label="Reconciliation tolerance",
        min_value=0,
        max_digits=28,
        decimal_places=10,
        help_text="Differences with the custodian up to this many units (or cash) are not breaks.",
    )
