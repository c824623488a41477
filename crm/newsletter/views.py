"""The newsletter's pages on a firm's host (managed by owners and admins) and its public links."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from billing.entitlements import PlanLimitExceeded
from codex.idempotent_forms import idempotent_form

from .. import access, forms, selectors
from ..models import CampaignStatus
from ..views.common import _page
from . import services


def _newsletter_manager(request) -> None:
    if not access.sees_whole_firm(request.user):
        raise PermissionDenied("The newsletter is managed by the firm's owners and admins.")


SUBSCRIBER_SORTS = {
    "email": "email",
    "contact": ("contact__last_name", "contact__first_name"),
    "status": "status",
    "since": ("confirmed_at", "created_at"),
}


@login_required
@idempotent_form
def newsletter(request):
    _newsletter_manager(request)
    form = forms.SubscriberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.subscriber_add(
                actor=request.user, tenant=request.tenant, email=form.cleaned_data["email"], source="added by staff"
            )
        except ValidationError as exc:
            forms.apply_errors(form, exc)
        except (PermissionDenied, PlanLimitExceeded) as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "A confirmation link was sent; the address joins the list once confirmed.")
            return redirect("crm:newsletter")
    status = request.GET.get("status", "")
    subscribers = access.subscribers_for(request.user).select_related("contact")
    if status:
        subscribers = subscribers.filter(status=status)
    return render(
        request,
        "crm/newsletter.html",
        {
            "form": form,
            "counts": selectors.newsletter_overview(),
            "page": _page(request, subscribers, sorts=SUBSCRIBER_SORTS, default="email"),
            "status": status,
            "campaigns": access.campaigns_for(request.user)[:50],
            "can_manage": access.can_assign_owner(request.user),
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def subscriber_unsubscribe(request, pk: int):
    subscriber = access.subscriber_for_user(request.user, pk, write=True)
    services.subscriber_unsubscribe(subscriber=subscriber, actor=request.user)
    messages.success(request, f"{subscriber.email} is unsubscribed.")
    return redirect("crm:newsletter")


@login_required
@idempotent_form
def campaign_edit(request, pk: int | None = None):
    _newsletter_manager(request)
    campaign = access.campaign_for_user(request.user, pk) if pk else None
    form = forms.CampaignForm(request.POST or None, instance=campaign)
    if request.method == "POST":
        access.require_manager_or_key(request.user)
        if form.is_valid():
            try:
                campaign = services.campaign_save(
                    actor=request.user,
                    campaign=campaign,
                    subject=form.cleaned_data["subject"],
                    body=form.cleaned_data["body"],
                )
            except ValidationError as exc:
                forms.apply_errors(form, exc)
            else:
                messages.success(request, "Draft saved.")
                return redirect("crm:campaign-edit", campaign.pk)
    context: dict[str, object] = {
        "form": form,
        "campaign": campaign,
        "can_manage": access.can_assign_owner(request.user),
    }
    if campaign is not None:
        _text, html = services.campaign_render(campaign=campaign)
        context |= {
            "preview_html": html,
            "report": selectors.campaign_report(campaign=campaign),
            "deliveries": campaign.deliveries.order_by("status", "email")[:200],
            "recipients": selectors.newsletter_overview()["confirmed"],
            "is_draft": campaign.status == CampaignStatus.DRAFT,
        }
    return render(request, "crm/campaign.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def campaign_send(request, pk: int):
    campaign = access.campaign_for_user(request.user, pk, write=True)
    try:
        services.campaign_send(actor=request.user, tenant=request.tenant, campaign=campaign)
    except PlanLimitExceeded as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Sending has started. The report below fills in as mails go out.")
    return redirect("crm:campaign-edit", campaign.pk)


# Public pages (no login): subscribe, confirm and unsubscribe from the signed links. GET shows a
# button, POST acts, so that link scanners that fetch URLs in mails do not confirm or unsubscribe.


def public_subscribe(request):
    form = forms.SubscriberForm(request.POST or None)
    done = False
    if request.method == "POST" and form.is_valid():
        try:
            services.subscriber_add(tenant=request.tenant, email=form.cleaned_data["email"], source="web form")
        except ValidationError as exc:
            forms.apply_errors(form, exc)
        except PlanLimitExceeded:
            form.add_error(None, "This newsletter is not available.")
        else:
            done = True
    return render(request, "crm/public_subscribe.html", {"form": form, "done": done})


def public_confirm(request, token: str):
    try:
        if request.method == "POST":
            subscriber = services.subscriber_confirm(token=token)
            return render(
                request,
                "crm/public_message.html",
                {
                    "title": "Subscription confirmed",
                    "body": f"{subscriber.email} will receive the newsletter. Every issue has a link to unsubscribe.",
                },
            )
        services.subscriber_from_token(token, "confirm")
    except ValidationError as exc:
        return render(
            request, "crm/public_message.html", {"title": "Link not valid", "body": " ".join(exc.messages)}, status=400
        )
    return render(
        request, "crm/public_action.html", {"title": "Confirm your subscription", "button": "Yes, subscribe me"}
    )


def public_unsubscribe(request, token: str):
    try:
        if request.method == "POST":
            subscriber = services.subscriber_unsubscribe(token=token)
            return render(
                request,
                "crm/public_message.html",
                {"title": "Unsubscribed", "body": f"{subscriber.email} will not receive the newsletter any more."},
            )
        services.subscriber_from_token(token, "unsubscribe")
    except ValidationError as exc:
        return render(
            request, "crm/public_message.html", {"title": "Link not valid", "body": " ".join(exc.messages)}, status=400
        )
    return render(
        request, "crm/public_action.html", {"title": "Unsubscribe from the newsletter", "button": "Unsubscribe"}
    )
