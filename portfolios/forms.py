"""Forms of the portfolio pages. They parse input; the rules live in ``portfolios.services``."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import ClassVar

from django import forms

from codex.tables import TableFilterForm
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


#: The fields each kind of transaction uses beside kind, date and note (issue 25, point 5): the
#: page shows these and hides the rest (static/portfolios/transaction-form.js); without JavaScript
#: every field shows (the plain form) and the service names any that does not fit.
_TRADE = ("instrument", "quantity", "price", "fees", "currency", "fx_rate", "counter_currency", "counter_amount")
_INCOME = ("instrument", "amount", "currency", "fx_rate")
_CASH = ("amount", "currency", "fx_rate")
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    Kind.BUY: _TRADE,
    Kind.SELL: (*_TRADE, "lots"),
    Kind.DIVIDEND: _INCOME,
    Kind.INTEREST: _INCOME,
    Kind.FEE: _INCOME,
    Kind.TAX: _INCOME,
    Kind.DEPOSIT: _CASH,
    Kind.WITHDRAWAL: _CASH,
    Kind.SPLIT: ("instrument", "quantity"),
    Kind.TRANSFER_IN: ("instrument", "quantity", "price", "acquired_on", "currency", "fx_rate"),
    Kind.TRANSFER_OUT: ("instrument", "quantity", "price", "lots"),
    Kind.CONVERSION: ("amount", "currency", "counter_currency", "counter_amount", "fx_rate"),
}
ALWAYS = ("kind", "trade_date", "note")
LOT_PREFIX = "lot_"


class InstrumentChoiceField(forms.ModelChoiceField):
    """Instruments the firm may use (shared and its own), each shown with its name and exchange."""

    def label_from_instance(self, obj) -> str:
        where = f", {obj.exchange}" if obj.exchange else ""
        return f"{obj.symbol} · {obj.name} ({obj.currency}{where})"


class TransactionForm(forms.Form):
    kind = forms.ChoiceField(choices=Kind.choices)
    trade_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    instrument = InstrumentChoiceField(
        queryset=Instrument.objects.filter(is_active=True).order_by("symbol", "exchange"),
        required=False,
        help_text="Type a ticker or a name to search.",
    )
    quantity = forms.DecimalField(required=False, help_text="Units; for a split the ratio (2 = 2-for-1).")
    price = forms.DecimalField(required=False, help_text="Per unit, in the trade currency.")
    fees = forms.DecimalField(required=False, initial=0)
    amount = forms.DecimalField(required=False, help_text="Cash amount of a dividend, deposit, fee...")
    currency = forms.CharField(max_length=3, required=False, help_text="Blank: the instrument's or base currency.")
    fx_rate = forms.DecimalField(required=False, help_text="1 unit of the currency in base. Blank: market rate.")
    # Specific lots come from the lot table (one ``lot_<id>`` input per open lot); this hidden field
    # still takes the JSON list the API takes, for scripts that post the form.
    lots = forms.CharField(required=False, widget=forms.HiddenInput)
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

    def __init__(self, *args, open_lots=(), chosen_lots=None, **kwargs):
        super().__init__(*args, **kwargs)
        #: The lot table's rows (``open_lots``: ``Lot`` rows with their instrument), each with the
        #: units typed, or for an edited sell the units it names (``chosen_lots``, the ledger's list).
        self.open_lots = list(open_lots)
        chosen = {
            int(item["lot"]): str(item["quantity"])
            for item in chosen_lots or []
            if isinstance(item, dict) and "lot" in item and "quantity" in item
        }
        self.lot_rows = [
            {
                "lot": lot,
                "name": f"{LOT_PREFIX}{lot.opened_by_id}",
                "value": self.data.get(f"{LOT_PREFIX}{lot.opened_by_id}", "")
                if self.is_bound
                else chosen.get(lot.opened_by_id, ""),
            }
            for lot in self.open_lots
        ]

    def field_rows(self):
        """Each visible field with the kinds that use it (``data-kinds`` on its wrapper)."""
        for field in self.visible_fields():
            kinds = (
                "" if field.name in ALWAYS else " ".join(k for k, names in KIND_FIELDS.items() if field.name in names)
            )
            yield field, kinds

    def clean_lots(self):
        typed = {
            key[len(LOT_PREFIX) :]: value.strip()
            for key, value in self.data.items()
            if key.startswith(LOT_PREFIX) and isinstance(value, str) and value.strip()
        }
        if typed:
            lots, bad = [], []
            for lot_id, quantity in typed.items():
                try:
                    number = Decimal(quantity.replace(",", ""))
                except InvalidOperation:
                    bad.append(quantity)
                    continue
                if not lot_id.isdigit() or not number.is_finite() or number < 0:
                    bad.append(quantity)
                elif number > 0:
                    lots.append({"lot": int(lot_id), "quantity": str(number)})
            if bad:
                raise forms.ValidationError(f"Enter a number of units for each lot ({', '.join(bad)} is not one).")
            return lots or None
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


class LedgerFilterForm(TableFilterForm):
    """Filters of a portfolio's transactions (its page's ledger), from the query string."""

    kind = forms.ChoiceField(label="Kind", choices=[("", "All kinds"), *Kind.choices], required=False)
    symbol = forms.CharField(label="Instrument", max_length=32, required=False)
    date_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    lookups: ClassVar = {
        "kind": "kind",
        "symbol": "instrument__symbol__istartswith",
        "date_from": "trade_date__gte",
        "date_to": "trade_date__lte",
    }

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return data
