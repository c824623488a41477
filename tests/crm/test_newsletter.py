"""Newsletter: double opt-in, signed links bound to the firm, sending exactly once per recipient."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django_tenants.utils import schema_context

from crm.models import Campaign, Delivery, Subscriber
from crm.newsletter import services

from .factories import ContactFactory, SubscriberFactory

API = "/api/v1"


def _link(body: str, kind: str) -> str:
    return re.search(rf"http://acme\.localhost(?::\d+)?(/crm/newsletter/{kind}/\S+/)", body).group(1)


def test_double_opt_in_through_the_public_pages(firm, anon_client, django_capture_on_commit_callbacks):
    contact = ContactFactory(email="reader@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        r = anon_client.post("/crm/newsletter/subscribe/", {"email": "Reader@Example.com"})
    assert r.status_code == 200 and b"Check your inbox" in r.content
    sub = Subscriber.objects.get()
    assert sub.status == "pending" and sub.contact == contact
    assert len(mail.outbox) == 1
    link = _link(mail.outbox[0].body, "confirm")
    # GET only asks (link scanners must not confirm); POST confirms.
    assert anon_client.get(link).status_code == 200
    assert Subscriber.objects.get().status == "pending"
    r = anon_client.post(link)
    assert r.status_code == 200 and b"confirmed" in r.content
    sub.refresh_from_db()
    assert sub.status == "confirmed" and sub.confirmed_at is not None


def test_confirm_link_of_another_firm_is_not_valid_here(firm, other_firm, anon_client):
    with schema_context(other_firm.schema_name):
        other = Subscriber.objects.create(email="x@example.com")
        token = services.newsletter_token(subscriber=other, action="confirm")
    connection.set_tenant(firm)
    r = anon_client.post(f"/crm/newsletter/confirm/{token}/")
    assert r.status_code == 400
    with schema_context(other_firm.schema_name):
        assert Subscriber.objects.get(pk=other.pk).status == "pending"


def test_tampered_and_wrong_purpose_tokens_are_refused(firm, anon_client):
    sub = Subscriber.objects.create(email="y@example.com")
    unsubscribe_token = services.newsletter_token(subscriber=sub, action="unsubscribe")
    assert anon_client.post(f"/crm/newsletter/confirm/{unsubscribe_token}/").status_code == 400
    assert anon_client.post(f"/crm/newsletter/confirm/{unsubscribe_token}x/").status_code == 400
    assert Subscriber.objects.get(pk=sub.pk).status == "pending"


def test_unsubscribe_link_works_without_login_and_is_idempotent(firm, anon_client):
    sub = SubscriberFactory()
    token = services.newsletter_token(subscriber=sub, action="unsubscribe")
    assert anon_client.post(f"/crm/newsletter/unsubscribe/{token}/").status_code == 200
    assert anon_client.post(f"/crm/newsletter/unsubscribe/{token}/").status_code == 200
    sub.refresh_from_db()
    assert sub.status == "unsubscribed" and sub.unsubscribed_at is not None


def test_confirm_after_unsubscribe_does_not_resubscribe(firm):
    sub = Subscriber.objects.create(email="z@example.com")
    confirm = services.newsletter_token(subscriber=sub, action="confirm")
    services.subscriber_unsubscribe(token=services.newsletter_token(subscriber=sub, action="unsubscribe"))
    assert services.subscriber_confirm(token=confirm).status == "unsubscribed"


def test_newsletter_needs_the_feature(firm, owner, monkeypatch):
    from billing import entitlements

    def no(*, tenant, feature):
        raise entitlements.PlanLimitExceeded("no newsletter", limit=feature, code="feature_not_in_plan")

    monkeypatch.setattr(services, "check_feature", no)
    with pytest.raises(entitlements.PlanLimitExceeded):
        services.subscriber_add(actor=owner, tenant=firm, email="a@example.com")
    assert not Subscriber.objects.exists()


def _campaign(n_confirmed=3, pending=1, unsubscribed=1):
    for i in range(n_confirmed):
        SubscriberFactory(email=f"c{i}@example.com", status="confirmed")
    for i in range(pending):
        SubscriberFactory(email=f"p{i}@example.com", status="pending")
    for i in range(unsubscribed):
        SubscriberFactory(email=f"u{i}@example.com", status="unsubscribed")
    return Campaign.objects.create(subject="Quarterly letter", body="Markets <b>rose</b>.\n\nSee https://example.com")


def test_send_mails_confirmed_only_once_each_and_rerun_sends_nothing(firm, owner, django_capture_on_commit_callbacks):
    campaign = _campaign()
    with django_capture_on_commit_callbacks(execute=True):
        services.campaign_send(actor=owner, tenant=firm, campaign=campaign)
    assert sorted(m.to[0] for m in mail.outbox) == ["c0@example.com", "c1@example.com", "c2@example.com"]
    campaign.refresh_from_db()
    assert campaign.status == "sent" and campaign.sent_at is not None
    assert Delivery.objects.filter(campaign=campaign, status="sent").count() == 3
    html = mail.outbox[0].alternatives[0][0]
    assert "&lt;b&gt;rose&lt;/b&gt;" in html and "<b>" not in html and 'href="https://example.com"' in html
    assert "/crm/newsletter/unsubscribe/" in mail.outbox[0].body
    assert mail.outbox[0].extra_headers["List-Unsubscribe"].startswith("<http://acme.localhost")
    # A re-run of the task and a second "send" do not mail anyone again.
    services.campaign_deliver(campaign_id=campaign.pk, tenant=firm)
    with django_capture_on_commit_callbacks(execute=True):
        services.campaign_send(actor=owner, tenant=firm, campaign=campaign)
    assert len(mail.outbox) == 3


def test_someone_who_unsubscribes_mid_send_is_skipped(firm, owner):
    campaign = _campaign(n_confirmed=2, pending=0, unsubscribed=0)
    services.campaign_send(actor=owner, tenant=firm, campaign=campaign)  # rows made, task not run yet
    Subscriber.objects.filter(email="c1@example.com").update(status="unsubscribed")
    services.campaign_deliver(campaign_id=campaign.pk, tenant=firm)
    assert [m.to[0] for m in mail.outbox] == ["c0@example.com"]
    assert Delivery.objects.get(email="c1@example.com").status == "skipped"


def test_a_claimed_row_is_never_sent_again_and_failures_retry(firm, owner, monkeypatch):
    campaign = _campaign(n_confirmed=2, pending=0, unsubscribed=0)
    services.campaign_send(actor=owner, tenant=firm, campaign=campaign)
    # A worker died after claiming c0: its row is "sending"; we cannot know if it went out.
    Delivery.objects.filter(email="c0@example.com").update(status="sending", attempts=1)
    from django.core.mail import EmailMultiAlternatives

    calls = {"n": 0}
    real_send = EmailMultiAlternatives.send

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("SMTP down")
        return real_send(self, *args, **kwargs)

    monkeypatch.setattr(EmailMultiAlternatives, "send", flaky)
    with pytest.raises(OSError):
        services.campaign_deliver(campaign_id=campaign.pk, tenant=firm)
    assert Delivery.objects.get(email="c1@example.com").status == "pending"  # back for the retry
    services.campaign_deliver(campaign_id=campaign.pk, tenant=firm)
    assert [m.to[0] for m in mail.outbox] == ["c1@example.com"]
    assert Delivery.objects.get(email="c0@example.com").status == "sending"
    campaign.refresh_from_db()
    assert campaign.status == "sent"


def test_campaign_api_send_and_report(owner_client, firm, django_capture_on_commit_callbacks):
    SubscriberFactory(email="one@example.com")
    r = owner_client.post(
        f"{API}/newsletter/campaigns/", {"subject": "Hi", "body": "Text"}, content_type="application/json"
    )
    assert r.status_code == 201
    pk = r.json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        r = owner_client.post(f"{API}/newsletter/campaigns/{pk}/send/")
    assert r.status_code == 202
    r = owner_client.get(f"{API}/newsletter/campaigns/{pk}/")
    assert r.json()["status"] == "sent" and r.json()["report"] == {"total": 1, "sent": 1}
    r = owner_client.patch(f"{API}/newsletter/campaigns/{pk}/", {"subject": "x"}, content_type="application/json")
    assert r.status_code == 409 and "status" in r.json()["error"]["details"]


def test_advisor_cannot_send_campaigns(advisor_client, firm):
    c = Campaign.objects.create(subject="s", body="b")
    assert advisor_client.post(f"{API}/newsletter/campaigns/{c.pk}/send/").status_code == 403
    assert Campaign.objects.get(pk=c.pk).status == "draft"


def test_subscriber_add_validates_and_is_idempotent(firm, owner):
    with pytest.raises(ValidationError) as err:
        services.subscriber_add(actor=owner, tenant=firm, email="nope", send_confirmation=False)
    assert "email" in err.value.message_dict
    a = services.subscriber_add(actor=owner, tenant=firm, email="A@x.com", send_confirmation=False)
    b = services.subscriber_add(actor=owner, tenant=firm, email="a@X.com", send_confirmation=False)
    assert a.pk == b.pk and Subscriber.objects.count() == 1


def test_newsletter_pages(owner_client, advisor_client, firm):
    c = Campaign.objects.create(subject="Draft <one>", body="Hello <script>x</script>")
    r = owner_client.get("/crm/newsletter/")
    assert r.status_code == 200 and b"Draft &lt;one&gt;" in r.content
    r = owner_client.get(f"/crm/newsletter/campaigns/{c.pk}/")
    assert r.status_code == 200 and b"&lt;script&gt;" in r.content and b"<script>x" not in r.content
    r = owner_client.post("/crm/newsletter/campaigns/new/", {"subject": "", "body": ""})
    assert r.status_code == 400 and b"This field is required" in r.content
    assert advisor_client.get("/crm/newsletter/").status_code == 403


def test_public_form_does_not_resend_within_minutes(firm, anon_client, django_capture_on_commit_callbacks):
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            anon_client.post("/crm/newsletter/subscribe/", {"email": "flood@example.com"})
    assert len(mail.outbox) == 1
    assert Subscriber.objects.get().status == "pending"


def test_a_campaign_left_sending_is_resumed_by_the_sweep_without_mailing_anyone_twice(firm, owner):
    """The delivery task is gone (worker killed, retries used up): rows stay pending and the
    campaign stays "sending". The periodic sweep (crm.tasks.campaigns_resume, Celery beat) sends
    the pending rows, never the sent or claimed ones, and only when no run makes progress."""
    import datetime as dt

    from django.conf import settings
    from django.utils import timezone

    from crm.tasks import campaigns_resume

    campaign = _campaign(n_confirmed=4, pending=0, unsubscribed=0)
    services.campaign_send(actor=owner, tenant=firm, campaign=campaign)  # on_commit not run: task lost
    # the lost run had mailed c0 and claimed c1 when its worker died
    Delivery.objects.filter(email="c0@example.com").update(status="sent", sent_at=timezone.now(), attempts=1)
    Delivery.objects.filter(email="c1@example.com").update(status="sending", attempts=1)
    # positive control for the grace period: just started and making progress, so left alone
    assert campaigns_resume.apply().get()["resumed"] == [] and mail.outbox == []
    later = timezone.now() + services.RESUME_AFTER + dt.timedelta(minutes=1)
    assert services.campaigns_to_resume(now=later) == [campaign.pk]
    Campaign.objects.filter(pk=campaign.pk).update(send_started_at=timezone.now() - dt.timedelta(hours=1))
    Delivery.objects.filter(email="c0@example.com").update(sent_at=timezone.now() - dt.timedelta(hours=1))
    assert campaigns_resume.apply().get()["resumed"] == [campaign.pk]  # eager here: delivered at once
    assert sorted(m.to[0] for m in mail.outbox) == ["c2@example.com", "c3@example.com"]
    campaign.refresh_from_db()
    assert campaign.status == "sent"
    assert Delivery.objects.get(email="c1@example.com").status == "sending"  # at most once: never resent
    # later sweeps find nothing to do and mail nobody again
    assert campaigns_resume.apply().get()["resumed"] == []
    assert services.campaigns_to_resume(now=later + dt.timedelta(days=1)) == []
    assert len(mail.outbox) == 2
    scheduled = {e["kwargs"]["task"] for e in settings.CELERY_BEAT_SCHEDULE.values() if e.get("kwargs")}
    assert "crm.tasks.campaigns_resume" in scheduled
