"""The notification centre: what feeds it, the bell, the page, the API, read state, isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from codex.live.tokens import stream_token_verify
from codex.notifications import services
from codex.notifications.models import Notification, NotificationKind
from crm import services as crm_services
from crm.models import ActivityKind
from portfolios.alerts import services as alert_services
from portfolios.alerts.models import AlertNotification
from tests.alerts.test_evaluate import rule_for
from tests.conftest import FirmClient

pytestmark = pytest.mark.django_db


def notify(user, title="Import of contacts finished", source="", kind=NotificationKind.IMPORT, url="/crm/contacts/"):
    return services.notification_send(recipients=[user], kind=kind, title=title, url=url, source=source)


def test_a_source_notifies_each_member_once(firm, owner, advisor):
    assert len(services.notification_send(recipients=[owner, advisor], kind="task", title="T", source="task:1")) == 2
    assert services.notification_send(recipients=[owner, advisor.pk], kind="task", title="T", source="task:1") == []
    assert Notification.objects.filter(source="task:1").count() == 2


def test_bad_input_names_the_field(firm, owner):
    with pytest.raises(ValidationError) as kind:
        services.notification_send(recipients=[owner], kind="party", title="x")
    assert "kind" in kind.value.message_dict
    with pytest.raises(ValidationError) as url:
        services.notification_send(recipients=[owner], kind="task", title="x", url="https://evil.example/")
    assert "url" in url.value.message_dict
    with pytest.raises(ValidationError) as title:
        services.notification_send(recipients=[owner], kind="task", title="  ")
    assert "title" in title.value.message_dict
    assert not Notification.objects.exists()


def test_a_rolled_back_change_notifies_nobody(firm, owner, django_capture_on_commit_callbacks, monkeypatch):
    pushed = []
    monkeypatch.setattr(services, "live_publish", lambda **kw: pushed.append(kw))
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        notify(owner)
        raise RuntimeError("the change failed")
    assert not Notification.objects.exists() and pushed == []
    with django_capture_on_commit_callbacks(execute=True):
        notify(owner)
    assert [(p["event"], p["user_ids"], p["data"]["unread_count"]) for p in pushed] == [("notification", [owner.pk], 1)]
    assert pushed[0]["schema"] == firm.schema_name


def test_bell_shows_the_unread_count_and_the_page_lists_own_notices_only(firm, owner, advisor, client_for):
    notify(owner, title="Owner's notice")
    notify(advisor, title="Advisor's notice")
    page = client_for(owner).get("/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "data-live-count>1</span>" in body and "data-stream=" in body
    listing = client_for(owner).get("/notifications/").content.decode()
    assert "Owner&#x27;s notice" in listing and "Advisor" not in listing


def test_mark_read_on_the_page_and_open_follows_the_link(firm, owner, client_for):
    first, second = notify(owner, title="One")[0], notify(owner, title="Two", url="/crm/tasks/")[0]
    client = client_for(owner)
    opened = client.post(f"/notifications/{second.pk}/open/")
    assert opened.status_code == 302 and opened["Location"] == "/crm/tasks/"
    second.refresh_from_db()
    first.refresh_from_db()
    assert second.read_at is not None and first.read_at is None
    client.post("/notifications/read/")
    first.refresh_from_db()
    assert first.read_at is not None
    assert "data-live-count hidden>0</span>" in client.get("/").content.decode()


def test_a_member_cannot_open_another_members_notice(firm, owner, advisor, client_for):
    theirs = notify(owner, title="Owner only")[0]
    assert client_for(advisor).post(f"/notifications/{theirs.pk}/open/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_api_lists_counts_and_marks_read(firm, owner, client_for):
    ids = [notify(owner, title=f"N{i}")[0].pk for i in range(3)]
    client = client_for(owner)
    listed = client.get("/api/v1/notifications/?unread=true").json()
    assert [n["id"] for n in listed["results"]] == ids[::-1]
    assert client.get("/api/v1/notifications/unread-count/").json() == {"unread": 3}
    marked = client.post("/api/v1/notifications/mark-read/", {"ids": [ids[0]]}, content_type="application/json")
    assert marked.json() == {"marked": 1}
    bad = client.post("/api/v1/notifications/mark-read/", {"ids": ["x"]}, content_type="application/json")
    assert bad.status_code == 400 and "ids" in bad.json()["error"]["details"]
    assert client.post("/api/v1/notifications/mark-read/", {}, content_type="application/json").json() == {"marked": 2}
    assert client.get("/api/v1/notifications/unread-count/").json() == {"unread": 0}


def test_live_endpoint_polls_news_and_hands_a_stream_token_for_this_firm_and_member(firm, owner, client_for):
    old = notify(owner, title="Old")[0]
    new = notify(owner, title="New")[0]
    answer = client_for(owner).get(f"/api/v1/notifications/live/?after={old.pk}").json()
    assert answer["unread"] == 2 and [n["title"] for n in answer["items"]] == ["New"]
    assert answer["items"][0]["id"] == new.pk
    token = answer["stream_url"].split("token=", 1)[1]
    grant = stream_token_verify(token)
    assert (grant.schema, grant.user_id) == (firm.schema_name, owner.pk)
    assert client_for(owner).get("/api/v1/notifications/live/?after=x").status_code == 400


def test_live_after_is_a_whole_number_in_the_range_the_schema_states(firm, owner, client_for):
    client = client_for(owner)
    notify(owner, title="Any")
    assert [n["title"] for n in client.get("/api/v1/notifications/live/?after=0").json()["items"]] == ["Any"]
    for bad in ("-1", str(2**63), "1.5"):
        response = client.get(f"/api/v1/notifications/live/?after={bad}")
        assert response.status_code == 400, (bad, response.status_code)
        assert "after" in response.content.decode()


def test_a_forged_stream_token_is_refused(firm, owner):
    token = signing.dumps({"s": firm.schema_name, "u": owner.pk, "t": 0}, salt="another.salt")
    with pytest.raises(Exception, match="bad signature"):
        stream_token_verify(token)


def test_another_firms_session_and_key_get_nothing(firm, owner, outsider, other_firm, api_key_for):
    notify(owner, title="ACME ONLY")
    foreign = FirmClient(firm)
    foreign.tenant = other_firm
    foreign.force_login(outsider)  # a globex session carried to acme's host
    page = foreign.get("/notifications/")
    assert page.status_code == 302 and "/accounts/login/" in page["Location"]
    api = foreign.get("/api/v1/notifications/")
    assert api.status_code in (401, 403)
    key = api_key_for(other_firm, "read")
    assert FirmClient(firm).get("/api/v1/notifications/", HTTP_X_API_KEY=key).status_code == 401
    own_key = api_key_for(firm, "read")
    as_key = FirmClient(firm).get("/api/v1/notifications/live/", HTTP_X_API_KEY=own_key).json()
    assert as_key["items"] == [] and as_key["stream_url"] == ""  # a key is no member: no notices


def test_a_task_assigned_to_someone_else_notifies_them(firm, owner, advisor):
    crm_services.activity_create(actor=owner, kind=ActivityKind.TASK, subject="Call the Smiths", owner=advisor)
    crm_services.activity_create(actor=owner, kind=ActivityKind.TASK, subject="My own task")
    assert list(Notification.objects.values_list("recipient_id", "kind", "title")) == [
        (advisor.pk, "task", "New task: Call the Smiths")
    ]
    crm_services.task_create(owner=advisor, title="KYC review due", source="kyc:1")
    assert Notification.objects.filter(recipient=advisor, title="New task: KYC review due").exists()


def test_an_alert_fires_into_the_bell_and_read_state_is_shared(firm, owner, aapl, import_closes, client_for):
    from tests.alerts.conftest import DAY

    rule_for(owner, firm, aapl)
    import_closes(aapl, {DAY: 105})
    notice = Notification.objects.get(recipient=owner, kind=NotificationKind.ALERT)
    alert_note = AlertNotification.objects.get(recipient=owner)
    assert notice.source == f"alert:{alert_note.event_id}" and notice.url == "/portfolios/alerts/"
    # read under the bell -> read on the alerts page
    services.notifications_mark_read(user=owner, ids=[notice.pk])
    alert_note.refresh_from_db()
    assert alert_note.read_at is not None
    # and the other way round
    import_closes(aapl, {DAY + timedelta(days=1): 90})  # clears: the rule re-arms
    import_closes(aapl, {DAY + timedelta(days=2): 110})  # fires again
    second = Notification.objects.filter(recipient=owner, kind=NotificationKind.ALERT, read_at=None).get()
    alert_services.alert_notifications_mark_read(user=owner)
    second.refresh_from_db()
    assert second.read_at is not None and second.read_at <= timezone.now()


def test_a_disabled_webhook_endpoint_notifies_the_managers(firm, owner, admin_user, advisor, settings):
    from tests.webhooks.test_webhooks import _endpoint, _make_due
    from webhooks import services as webhook_services

    settings.WEBHOOKS_DISABLE_AFTER_FAILURES = 1
    settings.WEBHOOKS_DISABLE_AFTER_SECONDS = 0
    endpoint = _endpoint(firm, "http://127.0.0.1:9/hook")  # nothing listens there: connection refused
    delivery = webhook_services.endpoint_send_test(tenant=firm, endpoint=endpoint)
    webhook_services.delivery_attempt(delivery_id=delivery.pk)
    _make_due(delivery)
    recipients = set(Notification.objects.filter(kind=NotificationKind.WEBHOOK).values_list("recipient_id", flat=True))
    assert recipients == {owner.pk, admin_user.pk}
    assert advisor.pk not in recipients


def test_a_valuation_rebuild_tells_open_pages_to_refresh_that_portfolios_figures(
    firm, owner, django_capture_on_commit_callbacks, monkeypatch
):
    from portfolios import valuation_services
    from tests.portfolios.factories import PortfolioFactory

    portfolio = PortfolioFactory(advisor=owner)
    pushed = []
    monkeypatch.setattr(valuation_services, "live_publish", lambda **kw: pushed.append(kw))
    with django_capture_on_commit_callbacks(execute=True):
        valuation_services.valuations_rebuild(portfolio=portfolio)
    assert pushed == [{"schema": firm.schema_name, "event": "figures", "data": {"portfolio_id": portfolio.pk}}]
    # the pages that listen: the portfolio page and the dashboard carry their hook
    from tests.conftest import FirmClient

    client = FirmClient(firm)
    client.force_login(owner)
    assert f'data-live-figures="{portfolio.pk}"' in client.get(f"/portfolios/{portfolio.pk}/").content.decode()
    assert 'data-live-figures="firm"' in client.get("/").content.decode()
