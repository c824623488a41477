"""Company pages: list, create, detail, edit, merge."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse

from codex.idempotent_forms import idempotent_form

from .. import access, forms, selectors, services
from .common import _find_other, _page, _querystring

# --- companies --------------------------------------------------------------------------------------


COMPANY_SORTS = {
    "name": "name",
    "industry": "industry",
    "domain": "domain",
    "contacts": "contact_count",
    "owner": ("owner__last_name", "owner__first_name", "owner__email"),
}


@login_required
def company_list(request):
    q = request.GET.get("q", "").strip()
    return render(
        request,
        "crm/company_list.html",
        {
            "page": _page(request, selectors.company_list(user=request.user, q=q), sorts=COMPANY_SORTS, default="name"),
            "q": q,
            "qs": _querystring(request),
            "can_write": access.can_write(request.user),
        },
    )


@login_required
@idempotent_form
def company_create(request):
    access.require_write(request.user)
    form = forms.CompanyForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        shared = data.pop("shared_with", None) or ()
        try:
            company = services.company_create(actor=request.user, shared_with=shared, **data)
        except ValidationError as exc:
            forms.apply_errors(form, exc)
        else:
            messages.success(request, f"{company} was added.")
            return redirect("crm:company-detail", company.pk)
    return render(
        request, "crm/form.html", {"form": form, "title": "New company", "cancel": reverse("crm:company-list")}
    )


@login_required
def company_detail(request, pk: int):
    company = access.company_for_user(request.user, pk)
    return render(
        request,
        "crm/company_detail.html",
        {
            "company": company,
            "contacts": access.contacts_for(request.user).filter(company=company).select_related("owner"),
            "deals": access.deals_for(request.user).filter(company=company).select_related("stage"),
            "activities": access.activities_for(request.user).filter(company=company).select_related("owner")[:50],
            "merge_form": forms.MergeForm(),
            "can_write": access.can_write(request.user),
        },
    )


@login_required
def company_edit(request, pk: int):
    company = access.company_for_user(request.user, pk, write=True)
    form = forms.CompanyForm(request.POST or None, instance=company, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        shared = data.pop("shared_with", None)
        try:
            services.company_update(actor=request.user, company=company, shared_with=shared, **data)
        except ValidationError as exc:
            forms.apply_errors(form, exc)
        else:
            messages.success(request, "Saved.")
            return redirect("crm:company-detail", company.pk)
    return render(
        request,
        "crm/form.html",
        {"form": form, "title": f"Edit {company}", "cancel": reverse("crm:company-detail", args=[company.pk])},
    )


@login_required
def company_merge(request, pk: int):
    survivor = access.company_for_user(request.user, pk, write=True)
    form = forms.MergeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            loser = _find_other(request, form.cleaned_data["other"], finder=access.company_for_user)
            services.company_merge(actor=request.user, survivor=survivor, loser=loser)
        except ValidationError as exc:
            forms.apply_errors(form, exc)
        else:
            messages.success(request, f"Merged into {survivor}.")
            return redirect("crm:company-detail", survivor.pk)
    duplicates = access.companies_for(request.user).filter(name__iexact=survivor.name).exclude(pk=survivor.pk)[:10]
    return render(
        request,
        "crm/merge.html",
        {"form": form, "survivor": survivor, "duplicates": duplicates, "kind": "company"},
        status=400 if form.errors else 200,
    )
