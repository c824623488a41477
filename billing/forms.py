from django import forms

from .models import BillingInterval, Plan


class PlanChangeForm(forms.Form):
    plan = forms.ModelChoiceField(queryset=Plan.objects.filter(is_public=True), to_field_name="code", empty_label=None)
    interval = forms.ChoiceField(choices=BillingInterval.choices, label="Billing")
