"""Forms of the fee pages. They parse input; the rules (tiers, exclusions, currencies, one group
per account) live in ``fees.services``, whose errors are shown next to the field they name."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError

from crm import access as crm_access
from crm.models import Contact
from portfolios.market.models import AssetClass, Instrument
from portfolios.models import Portfolio

from .models import BillingGroup, Collection, DayCount, FeeMethod, FeeSchedule, Frequency, Product, Timing

DATE = forms.DateInput(attrs={"type": "date"})
TIER_ROWS = 6
_TIER_ERROR = re.compile(r"^tiers\[(\d+)\](?:\.(upto|bps))?$")
_LIST_ERROR = re.compile(r"^(excluded_instruments|excluded_asset_classes)\[\d+\]$")


def _money(**kwargs) -> forms.DecimalField:
    return forms.DecimalField(max_digits=18, decimal_places=2, min_value=Decimal(0), **kwargs)


class ExclusionsMixin(forms.Form):
    """What a version excludes from the billable value (dated with the version, decision 1200)."""

    exclude_cash = forms.BooleanField(required=False, label="Exclude cash from the billable value")
    excluded_asset_classes = forms.MultipleChoiceField(
        choices=AssetClass.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Positions in these asset classes are not billed.",
    )
    excluded_instruments: forms.ModelMultipleChoiceField[Instrument] = forms.ModelMultipleChoiceField(
        queryset=Instrument.objects.filter(is_active=True).order_by("symbol"),
        required=False,
        help_text="Positions in these instruments are not billed (e.g. a client's legacy holding).",
    )


class ScheduleForm(ExclusionsMixin):
    name = forms.CharField(max_length=200)
    currency = forms.CharField(max_length=3, initial="USD", help_text="Three-letter ISO code, e.g. USD.")

    field_order = ["name", "currency"]

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:  # the currency is fixed (its products bill in it); exclusions are dated (TermsForm)
            for name in ("currency", "exclude_cash", "excluded_asset_classes", "excluded_instruments"):
                del self.fields[name]


class TermsForm(ExclusionsMixin):
    effective_from = forms.DateField(
        widget=DATE,
        help_text="Terms apply to periods whose first billed day is on or after it; exclusions apply "
        "from this day (docs/fees.md, Exclusions).",
    )
    method = forms.ChoiceField(choices=FeeMethod.choices, initial=FeeMethod.TIERED)
    flat_annual = _money(required=False, label="Flat annual fee")
    minimum_annual = _money(required=False, label="Minimum a year")
    maximum_annual = _money(required=False, label="Maximum a year")

    field_order = ["effective_from", "method", "flat_annual", "minimum_annual", "maximum_annual"]

    def __init__(self, *args, exclusions: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not exclusions:  # a new schedule's first exclusions are on its ScheduleForm
            for name in ("exclude_cash", "excluded_asset_classes", "excluded_instruments"):
                del self.fields[name]


class TiersForm(forms.Form):
    """The tiers table: up to ``TIER_ROWS`` rows of (up to, bps); blank rows are ignored, a blank
    "up to" is the open last tier."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for i in range(TIER_ROWS):
            self.fields[f"upto_{i}"] = forms.CharField(required=False, label=f"Tier {i + 1} up to")
            self.fields[f"bps_{i}"] = forms.CharField(required=False, label=f"Tier {i + 1} rate (bps a year)")
        self.rows: list[int] = []

    def clean(self):
        data = super().clean()
        tiers = []
        for i in range(TIER_ROWS):
            upto, bps = (data.get(f"upto_{i}") or "").strip(), (data.get(f"bps_{i}") or "").strip()
            if not upto and not bps:
                continue
            if not bps:
                self.add_error(f"bps_{i}", "Give the tier's rate in bps a year.")
                continue
            self.rows.append(i)
            tiers.append({"upto": upto or None, "bps": bps})
        if not tiers and not self.errors:
            self.add_error("bps_0", "At least one tier is required.")
        data["tiers"] = tiers
        return data

    def row(self, i: int) -> tuple:
        return self[f"upto_{i}"], self[f"bps_{i}"]

    def table(self) -> list[tuple]:
        return [self.row(i) for i in range(TIER_ROWS)]


class ProductForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    currency = forms.CharField(max_length=3, initial="USD", help_text="Three-letter ISO code, e.g. USD.")
    flat_fee = _money(required=False, label="Flat fee per billing period")
    fee_schedule: forms.ModelChoiceField[FeeSchedule] = forms.ModelChoiceField(
        queryset=FeeSchedule.objects.filter(archived=False), required=False, help_text="The fee on assets."
    )

    def __init__(self, *args, editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:  # the price of a product is fixed; a new price is a new product
            for name in ("currency", "flat_fee", "fee_schedule"):
                del self.fields[name]


class GroupForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="E.g. the household's name.")
    client: forms.ModelChoiceField[Contact] = forms.ModelChoiceField(
        queryset=None, help_text="Whom the invoices are addressed to."
    )
    currency = forms.CharField(
        max_length=3, required=False, help_text="Needed when the accounts are in several currencies."
    )
    portfolios: forms.ModelMultipleChoiceField[Portfolio] = forms.ModelMultipleChoiceField(
        queryset=None, label="Accounts", help_text="Accounts billed together; an account is in one group only."
    )

    def __init__(self, *args, user, group: BillingGroup | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        client_field = self.fields["client"]
        assert isinstance(client_field, forms.ModelChoiceField)  # noqa: S101 (declared above)
        client_field.queryset = crm_access.contacts_for(user).order_by("last_name", "first_name")
        free = Portfolio.objects.filter(archived=False, billing_account__isnull=True)
        if group is not None:
            free = free | Portfolio.objects.filter(billing_account__group=group)
            del self.fields["client"], self.fields["currency"]
        accounts = self.fields["portfolios"]
        assert isinstance(accounts, forms.ModelMultipleChoiceField)  # noqa: S101 (declared above)
        accounts.queryset = free.select_related("client").order_by("name", "id")


class SubscriptionForm(forms.Form):
    group: forms.ModelChoiceField[BillingGroup] = forms.ModelChoiceField(queryset=None, label="Billing group")
    product: forms.ModelChoiceField[Product] = forms.ModelChoiceField(queryset=Product.objects.filter(archived=False))
    starts_on = forms.DateField(widget=DATE)
    ends_on = forms.DateField(widget=DATE, required=False)
    frequency = forms.ChoiceField(choices=Frequency.choices, initial=Frequency.QUARTERLY)
    timing = forms.ChoiceField(choices=Timing.choices, initial=Timing.ARREARS_ADB)
    day_count = forms.ChoiceField(choices=DayCount.choices, initial=DayCount.ACTUAL_365)
    collection = forms.ChoiceField(choices=Collection.choices, initial=Collection.INVOICE)

    def __init__(self, *args, groups, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["group"].queryset = groups


class EndForm(forms.Form):
    ends_on = forms.DateField(widget=DATE, label="Ends on", help_text="Billed to this day, inclusive.")


class VoidForm(forms.Form):
    reason = forms.CharField(max_length=500, help_text="Shown in the invoice's history.")


def apply_errors(exc: ValidationError, *forms_: forms.Form, tiers: TiersForm | None = None) -> None:
    """A service's ``ValidationError`` on the page: each message next to the field it names
    (``tiers[1].upto`` on the tiers table's row, ``excluded_instruments[0]`` on its list), the
    rest on top of the first form."""
    if not hasattr(exc, "error_dict"):
        forms_[0].add_error(None, exc.messages)
        return
    for name, errors in exc.message_dict.items():
        match = _TIER_ERROR.match(name)
        if tiers is not None and (match or name == "tiers"):
            row = tiers.rows[int(match.group(1))] if match and int(match.group(1)) < len(tiers.rows) else 0
            tiers.add_error(f"{(match and match.group(2)) or 'bps'}_{row}", errors)
            continue
        list_match = _LIST_ERROR.match(name)
        field = list_match.group(1) if list_match else name
        target = next((f for f in forms_ if field in f.fields), None)
        if target is not None:
            target.add_error(field, errors)
        else:
            forms_[0].add_error(None, errors)
