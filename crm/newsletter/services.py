"""The newsletter's writes: subscribers (double opt-in by signed links), campaigns, their delivery.

Keyword-only, validated, atomic; mail goes out on commit (confirmations) or from the
``crm.tasks.campaign_deliver`` task (campaigns). Errors: ``ValidationError`` with field messages,
``PermissionDenied``, ``crm.services.StateConflict``, ``billing.entitlements.PlanLimitExceeded``
(a plan without the newsletter).
"""

from __future__ import annotations

import datetime as dt
import logging
import unicodedata

from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMultiAlternatives, send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.html import escape, linebreaks, urlize
from django.utils.safestring import mark_safe

from billing.entitlements import check_feature
from codex.db import current_schema
from tenants.links import firm_page_url

from .. import access
from ..models import (
    Campaign,
    CampaignStatus,
    Contact,
    Delivery,
    DeliveryStatus,
    Subscriber,
    SubscriberStatus,
)
from ..services.common import StateConflict, _actor_user, _full_clean

# Named as before the move out of crm.services: log configuration and searches keep working.
logger = logging.getLogger("crm.services")

TOKEN_SALT = "crm.newsletter"  # noqa: S105 - a signing salt, not a secret
CONFIRM_MAX_AGE = 7 * 24 * 3600
RESEND_AFTER = dt.timedelta(minutes=10)


def newsletter_token(*, subscriber: Subscriber, action: str) -> str:
    """A signed token for ``confirm`` or ``unsubscribe``, bound to this firm's schema."""
    return signing.dumps({"f": current_schema(), "s": subscriber.pk, "a": action}, salt=TOKEN_SALT)


def subscriber_from_token(token: str, action: str) -> Subscriber:
    """The subscriber a signed link is for (``confirm`` links expire after 7 days). Raises
    ValidationError for a tampered, expired, other-firm or other-action token."""
    return _subscriber_from_token(token, action, CONFIRM_MAX_AGE if action == "confirm" else None)


def _subscriber_from_token(token: str, action: str, max_age: int | None) -> Subscriber:
    try:
        data = signing.loads(token, salt=TOKEN_SALT, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise ValidationError("This link has expired. Subscribe again to get a new one.") from exc
    except signing.BadSignature as exc:
        raise ValidationError("This link is not valid.") from exc
    if data.get("f") != current_schema() or data.get("a") != action:
        raise ValidationError("This link is not valid.")
    subscriber = Subscriber.objects.filter(pk=data.get("s")).first()
    if subscriber is None:
        raise ValidationError("This link is not valid.")
    return subscriber


def newsletter_links(*, tenant, subscriber: Subscriber) -> dict[str, str]:
    """Absolute confirm and unsubscribe links, from configuration (``tenants.links``): the same
    whichever host or URLconf served the request that asked for them."""
    return {
        "confirm": firm_page_url(
            tenant.slug,
            "crm:newsletter-confirm",
            args=[newsletter_token(subscriber=subscriber, action="confirm")],
        ),
        "unsubscribe": firm_page_url(
            tenant.slug,
            "crm:newsletter-unsubscribe",
            args=[newsletter_token(subscriber=subscriber, action="unsubscribe")],
        ),
    }


def _send_confirmation(*, tenant, subscriber: Subscriber) -> None:
    links = newsletter_links(tenant=tenant, subscriber=subscriber)
    send_mail(
        subject=f"Confirm your subscription to {tenant.name}",
        message=(
            f"Please confirm that you want to receive the newsletter of {tenant.name}:\n\n{links['confirm']}\n\n"
            "If you did not ask for it, ignore this message: you will not be subscribed."
        ),
        from_email=None,
        recipient_list=[subscriber.email],
    )


def subscriber_add(
    *, actor=None, tenant, email: str, contact: Contact | None = None, source: str = "", send_confirmation: bool = True
) -> Subscriber:
    """Add an address to the list, pending until its owner confirms through the signed link (double
    opt-in). Adding a known address again re-sends the confirmation if still pending, and changes
    nothing for a confirmed one; an unsubscribed address must opt in again (pending). ``actor`` None
    is the public sign-up form."""
    if actor is not None:
        access.require_manager_or_key(actor)
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationError({"email": "Enter a valid e-mail address."}) from exc
    check_feature(tenant=tenant, feature="newsletter")
    with transaction.atomic():
        if contact is None:
            contact = Contact.objects.filter(email__iexact=email).first()
        subscriber = Subscriber.objects.select_for_update().filter(email__iexact=email).first()
        if subscriber is None:
            try:
                with transaction.atomic():
                    subscriber = Subscriber.objects.create(email=email, contact=contact, source=source)
            except IntegrityError:
                subscriber = Subscriber.objects.select_for_update().get(email__iexact=email)
        if subscriber.status == SubscriberStatus.CONFIRMED:
            return subscriber
        subscriber.status = SubscriberStatus.PENDING
        subscriber.unsubscribed_at = None
        if contact is not None and subscriber.contact_id is None:
            subscriber.contact = contact
        recently = subscriber.confirmation_sent_at and timezone.now() - subscriber.confirmation_sent_at < RESEND_AFTER
        # Not again within minutes: the public form must not become a way to flood someone's inbox.
        if send_confirmation and not recently:
            subscriber.confirmation_sent_at = timezone.now()
            transaction.on_commit(lambda: _send_confirmation(tenant=tenant, subscriber=subscriber))
        subscriber.save()
    return subscriber


def subscriber_confirm(*, token: str) -> Subscriber:
    """Confirm from the signed link (valid 7 days). Idempotent; an unsubscribed address stays out."""
    subscriber = _subscriber_from_token(token, "confirm", CONFIRM_MAX_AGE)
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        if subscriber.status == SubscriberStatus.PENDING:
            subscriber.status = SubscriberStatus.CONFIRMED
            subscriber.confirmed_at = timezone.now()
            subscriber.save(update_fields=["status", "confirmed_at"])
    return subscriber


def subscriber_unsubscribe(*, token: str | None = None, subscriber: Subscriber | None = None, actor=None) -> Subscriber:
    """Unsubscribe from the signed link in every mail (no expiry) or by a manager. Idempotent."""
    if token is not None:
        subscriber = _subscriber_from_token(token, "unsubscribe", None)
    elif actor is not None:
        access.require_manager_or_key(actor)
    else:
        raise PermissionDenied("Unsubscribing needs the signed link.")
    if subscriber is None:  # a caller's mistake: a manager names the subscriber
        raise TypeError("subscriber_unsubscribe needs a token or a subscriber")
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        if subscriber.status != SubscriberStatus.UNSUBSCRIBED:
            subscriber.status = SubscriberStatus.UNSUBSCRIBED
            subscriber.unsubscribed_at = timezone.now()
            subscriber.save(update_fields=["status", "unsubscribed_at"])
    return subscriber


# Line breaks (``\n``, ``\r``, ``\x0b``, ``\x1c``, ``\x85``, ``\u2028``...) and other control
# characters: a mail header cannot carry them (a line break there is header injection; Django
# refuses it with BadHeaderError at send time, too late), so a subject with one is refused at input.
_HEADER_UNSAFE_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def subject_error(subject: str) -> str | None:
    """Why ``subject`` cannot be a mail's Subject header, or None when it can."""
    bad = next((ch for ch in subject if unicodedata.category(ch) in _HEADER_UNSAFE_CATEGORIES), None)
    if bad is None:
        return None
    return f"The subject must be one line, without control characters (found U+{ord(bad):04X})."


def campaign_save(*, actor, campaign: Campaign | None = None, subject: str, body: str) -> Campaign:
    """Create or change a draft. Raises ValidationError naming ``subject`` for a subject with a line
    break or another control character; StateConflict naming ``status`` for a campaign no longer a
    draft."""
    access.require_manager_or_key(actor)
    campaign = campaign or Campaign(created_by=_actor_user(actor))
    if campaign.status != CampaignStatus.DRAFT:
        raise StateConflict({"status": "Only a draft can be changed."})
    if message := subject_error(subject or ""):
        raise ValidationError({"subject": message})
    campaign.subject = (subject or "").strip()
    campaign.body = body or ""
    _full_clean(campaign)
    campaign.save()
    return campaign


def campaign_send(*, actor, tenant, campaign: Campaign) -> Campaign:
    """Start sending: one Delivery row per confirmed subscriber is created now, in one transaction,
    then a background task mails them (crm.tasks.campaign_deliver). Sending a campaign that is
    already sending or sent does not create rows again (the unique constraint also forbids it).
    A draft whose subject cannot be a mail header (written before the rule) is refused, naming
    ``subject``: it stays a draft with no delivery row."""
    access.require_manager_or_key(actor)
    check_feature(tenant=tenant, feature="newsletter")
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status == CampaignStatus.DRAFT and (message := subject_error(campaign.subject)):
            raise ValidationError({"subject": message})
        if campaign.status == CampaignStatus.DRAFT:
            recipients = Subscriber.objects.filter(status=SubscriberStatus.CONFIRMED).values_list("pk", "email")
            Delivery.objects.bulk_create(
                [Delivery(campaign=campaign, subscriber_id=pk, email=email) for pk, email in recipients],
                ignore_conflicts=True,
                batch_size=1000,
            )
            campaign.status = CampaignStatus.SENDING
            campaign.send_started_at = timezone.now()
            campaign.save(update_fields=["status", "send_started_at"])
        if campaign.status == CampaignStatus.SENDING:
            # function-level: tasks import services: cycle listed in the acyclic contract
            from ..tasks import campaign_deliver

            campaign_id = campaign.pk
            transaction.on_commit(lambda: campaign_deliver.delay(campaign_id))
    return campaign


def _claim_delivery(campaign: Campaign) -> Delivery | None:
    """Take one pending delivery: lock it (skipping rows other workers hold) and mark it ``sending``
    in its own committed transaction, so no other run can take it again."""
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True)
            .select_related("subscriber")
            .filter(campaign=campaign, status=DeliveryStatus.PENDING)
            .order_by("pk")
            .first()
        )
        if delivery is None:
            return None
        if delivery.subscriber.status != SubscriberStatus.CONFIRMED:
            delivery.status = DeliveryStatus.SKIPPED
            delivery.error = f"subscriber is {delivery.subscriber.status}"
        else:
            delivery.status = DeliveryStatus.SENDING
            delivery.attempts += 1
        delivery.save(update_fields=["status", "attempts", "error"])
    return delivery if delivery.status == DeliveryStatus.SENDING else _claim_delivery(campaign)


def campaign_render(*, campaign: Campaign, unsubscribe_url: str = "") -> tuple[str, str]:
    """(plain text, HTML) of a campaign. The HTML is built from escaped text: paragraphs, line
    breaks and links only, so nothing written in the editor can inject markup."""

    text = campaign.body
    html = linebreaks(urlize(escape(text), nofollow=True, autoescape=False))
    if unsubscribe_url:
        text += f"\n\n--\nUnsubscribe: {unsubscribe_url}"
        html += f'<hr><p><a href="{escape(unsubscribe_url)}">Unsubscribe</a></p>'
    # Safe: every piece of the editor's text was escaped above.
    return text, mark_safe(html)  # noqa: S308


MAX_SEND_ATTEMPTS = 3


def campaign_deliver(*, campaign_id: int, tenant) -> dict:
    """Mail every pending delivery of a campaign, each at most once (see ``_claim_delivery``).

    A failed hand-off to the mail backend puts the row back to pending (up to 3 attempts), so a
    retried task tries it again; a row left in ``sending`` by a crash is never mailed again. A mail
    that cannot be built (``ValueError``: Django's ``BadHeaderError`` for a header with a line
    break) fails its row for good, logged, and the run goes on. When no pending row is left the
    campaign is ``sent``, or ``failed`` when rows failed and none was sent: never left ``sending``.
    Safe to run many times and concurrently."""

    campaign = Campaign.objects.get(pk=campaign_id)
    sent = failed = 0
    while (delivery := _claim_delivery(campaign)) is not None:
        unsubscribe = newsletter_links(tenant=tenant, subscriber=delivery.subscriber)["unsubscribe"]
        text, html = campaign_render(campaign=campaign, unsubscribe_url=unsubscribe)
        message = EmailMultiAlternatives(
            subject=campaign.subject,
            body=text,
            to=[delivery.email],
            headers={"List-Unsubscribe": f"<{unsubscribe}>"},
        )
        message.attach_alternative(html, "text/html")
        try:
            message.send()
        except ValueError as exc:  # BadHeaderError & co.: this mail can never be built; not retried
            logger.warning("campaign %s: delivery %s cannot be built: %s", campaign.pk, delivery.pk, exc)
            failed += 1
            delivery.status = DeliveryStatus.FAILED
            delivery.error = str(exc)[:300]
            delivery.save(update_fields=["status", "error"])
            continue
        except OSError as exc:  # smtplib errors are OSErrors: the message did not go out
            failed += 1
            delivery.status = DeliveryStatus.PENDING if delivery.attempts < MAX_SEND_ATTEMPTS else DeliveryStatus.FAILED
            delivery.error = str(exc)[:300]
            delivery.save(update_fields=["status", "error"])
            if delivery.status == DeliveryStatus.PENDING:
                raise
            continue
        Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.SENT, sent_at=timezone.now(), error="")
        sent += 1
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        if (
            campaign.status == CampaignStatus.SENDING
            and not campaign.deliveries.filter(status=DeliveryStatus.PENDING).exists()
        ):
            deliveries = campaign.deliveries
            all_failed = (
                deliveries.filter(status=DeliveryStatus.FAILED).exists()
                and not deliveries.filter(status=DeliveryStatus.SENT).exists()
            )
            campaign.status = CampaignStatus.FAILED if all_failed else CampaignStatus.SENT
            campaign.sent_at = timezone.now()
            campaign.save(update_fields=["status", "sent_at"])
    return {"sent": sent, "failed": failed}


# A campaign whose delivery task is gone (worker killed, Celery's retries used up while the mail
# server was down, message lost) would stay "sending" with pending rows for ever. The periodic sweep
# (crm.tasks.campaigns_resume, Celery beat through codex.for_each_firm) queues the task again for a
# campaign started more than RESUME_AFTER ago that mailed nobody within it (no run is making
# progress). Resuming is safe: campaign_deliver claims rows one at a time, so a sent or claimed row
# is never mailed again, and a second run beside a live one only shares out the pending rows.
RESUME_AFTER = dt.timedelta(minutes=10)


def campaigns_to_resume(*, now: dt.datetime | None = None) -> list[int]:
    """Ids of the firm's campaigns still ``sending``, started before ``now - RESUME_AFTER``, with
    no delivery sent since then."""
    since = (now or timezone.now()) - RESUME_AFTER
    return list(
        Campaign.objects.filter(status=CampaignStatus.SENDING, send_started_at__lt=since)
        .exclude(deliveries__sent_at__gte=since)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def campaigns_resume(*, now: dt.datetime | None = None) -> list[int]:
    """Queue ``crm.tasks.campaign_deliver`` again for every campaign of ``campaigns_to_resume``.
    Finishes them too: the task marks a campaign ``sent`` once no row is pending."""
    from ..tasks import campaign_deliver  # function-level: tasks import services: cycle listed in the acyclic contract

    campaign_ids = campaigns_to_resume(now=now)
    for campaign_id in campaign_ids:
        campaign_deliver.delay(campaign_id)
    return campaign_ids
