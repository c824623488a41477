"""The contact's "Suitability" page: risk tolerance, objectives, time horizon, KYC (crm.suitability)."""

from __future__ import annotations

from django import forms as django_forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse

from . import access, forms
from .models import KycStatus, Objective, RiskTolerance, TimeHorizon
from .suitability import contact_suitability_update


class SuitabilityForm(django_forms.Form):
    risk_tolerance = django_forms.ChoiceField(choices=[("", "—"), *RiskTolerance.choices], required=False)
    objectives = django_forms.MultipleChoiceField(
        choices=Objective.choices, required=False, widget=django_forms.CheckboxSelectMultiple
    )
    time_horizon = django_forms.ChoiceField(choices=[("", "—"), *TimeHorizon.choices], required=False)
    kyc_status = django_forms.ChoiceField(label="KYC status", choices=KycStatus.choices)
    kyc_reviewed_on = django_forms.DateField(
        label="KYC reviewed on", required=False, widget=django_forms.DateInput(attrs={"type": "date"})
    )
    kyc_review_due_on = django_forms.DateField(
        label="Next KYC review due on",
        required=False,
        widget=django_forms.DateInput(attrs={"type": "date"}),
        help_text="The contact's owner gets a task on that day.",
    )


@login_required
def contact_suitability(request, pk: int):
    contact = access.contact_for_user(request.user, pk, write=request.method == "POST")
    initial = {name: getattr(contact, name) for name in SuitabilityForm.base_fields}
    form = SuitabilityForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            contact_suitability_update(actor=request.user, contact=contact, **form.cleaned_data)
        except ValidationError as exc:
            forms.apply_errors(form, exc)
        else:
            messages.success(request, "Suitability saved.")
            return redirect("crm:contact-detail", contact.pk)
    return render(
        request,
        "crm/form.html",
        {
            "form": form,
            "title": f"Suitability of {contact}",
            "cancel": reverse("crm:contact-detail", args=[contact.pk]),
        },
    )
