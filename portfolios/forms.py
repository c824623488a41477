"""Forms of the portfolio pages. They parse input; the rules live in ``portfolios.services``."""

from __future__ import annotations

import json

from django import forms

from crm.models import Contact
from portfolios.market.models import Instrument
from tenants.accounts.models import Role, User

from .access import sees_whole_firm
from .models import Kind, LotMethod


class PortfolioForm(forms.Form):
    name = forms.CharField(max_length=200)
    client: forms.ModelChoiceField[Contact] = forms.ModelChoiceField(
        queryset=None, required=False, help_text="The CRM contact this portfolio is for."
    )
    advisor: forms.ModelChoiceField[User] = forms.ModelChoiceField(queryset=None)
    base_currency = forms.CharField(max_length=3, initial="USD", help_text="Three-letter ISO code, e.g. USD.")
    benchmark = forms.ModelChoiceField(queryset=Instrument.objects.filter(is_active=True), required=False)
    lot_method = forms.ChoiceField(choices=LotMethod.choices, initial=LotMethod.FIFO)
    shared_with: forms.ModelMultipleChoiceField[User] = forms.ModelMultipleChoiceField(
        queryset=None, required=False, help_text="Colleagues who may see it."
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)

        people = User.objects.filter(is_active=True).order_by("email")
        self.fields["advisor"].queryset = people.filter(role__in=[Role.OWNER, Role.ADMIN, Role.ADVISOR])
        self.fields["shared_with"].queryset = people
        contacts = Contact.objects.order_by("last_name", "first_name")
        if not sees_whole_firm(user):
            contacts = contacts.filter(owner=user) | contacts.filter(shared_with=user)
        self.fields["client"].queryset = contacts.distinct()
        if user.pk and not self.initial.get("advisor"):
            self.initial["advisor"] = user.pk


class TransactionForm(forms.Form):
    kind = forms.ChoiceField(choices=Kind.choices)
    trade_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    instrument = forms.ModelChoiceField(
        queryset=Instrument.objects.filter(is_active=True), required=False, help_text="For trades, splits, transfers."
    )
    quantity = forms.DecimalField(required=False, help_text="Units; for a split the ratio (2 = 2-for-1).")
    price = forms.DecimalField(required=False, help_text="Per unit, in the trade currency.")
    fees = forms.DecimalField(required=False, initial=0)
    amount = forms.DecimalField(required=False, help_text="Cash amount of a dividend, deposit, fee...")
    currency = forms.CharField(max_length=3, required=False, help_text="Blank: the instrument's or base currency.")
    fx_rate = forms.DecimalField(required=False, help_text="1 unit of the currency in base. Blank: market rate.")
    lots = forms.CharField(
        required=False,
        help_text='Specific lots to sell, e.g. [{"lot": 12, "quantity": "5"}]. Blank: the portfolio\'s method.',
    )
    acquired_on = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), help_text="Transfer in: original purchase."
    )
    note = forms.CharField(max_length=500, required=False)
    counter_currency = forms.CharField(
        max_length=3,
        required=False,
        label="Other currency",
        help_text="Conversion: the currency bought. Buy/sell: settle from this currency's cash instead.",
    )
    counter_amount = forms.DecimalField(
        required=False, label="Other currency amount", help_text="How much of the other currency."
    )

    def clean_lots(self):
        raw = self.cleaned_data.get("lots")
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError('Write the lots as JSON, e.g. [{"lot": 12, "quantity": "5"}].') from exc

    def to_service(self) -> dict:
        data = dict(self.cleaned_data)
        for f in ("quantity", "price", "fees"):
            if data.get(f) is None:
                data[f] = 0
        return data


class ImportForm(forms.Form):
    file = forms.FileField(help_text="CSV, UTF-8, with a header row (see the format below).")

    def clean_file(self):
        f = self.cleaned_data["file"]
        if f.size > 20 * 1024 * 1024:
            raise forms.ValidationError("The file is larger than 20 MB; split it.")
        return f


class ExposureForm(forms.Form):
    currency = forms.CharField(max_length=3, required=False, initial="USD", help_text="Reporting currency.")

    def clean_currency(self):
        code = (self.cleaned_data.get("currency") or "USD").strip().upper()
        if len(code) != 3 or not code.isalpha():
            raise forms.ValidationError("Enter a three-letter ISO currency code, e.g. USD.")
        return code
