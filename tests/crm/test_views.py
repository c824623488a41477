"""CRM pages: lists, details, forms with inline errors, the board, tasks, search; query counts."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Contact, Deal

from .factories import ActivityFactory, CompanyFactory, ContactFactory, DealFactory, TaskFactory, stage


@pytest.mark.parametrize(
    "url",
    [
        "/crm/contacts/",
        "/crm/contacts/new/",
        "/crm/companies/",
        "/crm/companies/new/",
        "/crm/deals/",
        "/crm/deals/new/",
        "/crm/pipeline/",
        "/crm/tasks/",
        "/crm/search/?q=ann",
        "/crm/import/",
        "/crm/newsletter/",
        "/crm/newsletter/campaigns/new/",
    ],
)
def test_pages_render_for_the_owner(owner_client, url):
    r = owner_client.get(url)
    assert r.status_code == 200, url


def test_pages_need_login(anon_client):
    r = anon_client.get("/crm/contacts/")
    assert r.status_code == 302 and "/accounts/login/" in r["Location"]


def test_contact_form_shows_inline_errors_and_writes_nothing(owner_client):
    ContactFactory(email="taken@example.com")
    r = owner_client.post("/crm/contacts/new/", {"first_name": "", "email": "TAKEN@example.com", "lifecycle": "lead"})
    assert r.status_code == 200
    html = r.content.decode()
    assert 'id="id_first_name_error"' in html
    r = owner_client.post(
        "/crm/contacts/new/", {"first_name": "Tom", "email": "TAKEN@example.com", "lifecycle": "lead"}
    )
    assert "Another contact already has this e-mail address." in r.content.decode()
    assert Contact.objects.count() == 1


def test_create_contact_through_the_form(owner_client, owner):
    r = owner_client.post(
        "/crm/contacts/new/",
        {"first_name": "Tom", "last_name": "Ford", "email": "tom@example.com", "lifecycle": "prospect", "tags": "a, b"},
    )
    c = Contact.objects.get(email="tom@example.com")
    assert r.status_code == 302 and r["Location"] == f"/crm/contacts/{c.pk}/"
    assert c.tags == ["a", "b"] and c.owner == owner


def test_advisor_form_has_no_owner_field(advisor_client):
    assert b'name="owner"' not in advisor_client.get("/crm/contacts/new/").content


def test_log_activity_and_task_on_the_client_page(owner_client):
    c = ContactFactory()
    r = owner_client.post(f"/crm/contacts/{c.pk}/log/", {"kind": "call", "subject": "Called"})
    assert r.status_code == 302
    r = owner_client.post(f"/crm/contacts/{c.pk}/log/", {"kind": "note", "subject": "x", "due_date": "2026-01-01"})
    assert r.status_code == 400 and b"Only tasks have a due date." in r.content
    assert c.activities.count() == 1


def test_board_moves_a_deal_with_a_plain_form(owner_client, owner):
    deal = DealFactory(title="Pension transfer", amount="5000", owner=owner)
    r = owner_client.get("/crm/pipeline/")
    html = r.content.decode()
    assert "Pension transfer" in html and f'action="/crm/deals/{deal.pk}/move/"' in html and "weighted" in html
    r = owner_client.post(f"/crm/deals/{deal.pk}/move/", {"stage": stage("Proposal").pk})
    assert r.status_code == 302 and r["Location"].endswith(f"#deal-{deal.pk}")
    assert Deal.objects.get(pk=deal.pk).stage.name == "Proposal"
    r = owner_client.post(f"/crm/deals/{deal.pk}/move/", {"stage": stage("Lost").pk}, follow=True)
    assert "Say why the deal was lost." in r.content.decode()
    assert Deal.objects.get(pk=deal.pk).status == "open"


def test_board_totals_per_stage_and_won_this_month(firm, owner):
    from crm import selectors, services

    DealFactory(amount="1000", probability=10, currency="USD")
    DealFactory(amount="3000", probability=10, currency="USD")
    DealFactory(amount="500", probability=10, currency="EUR")
    won = DealFactory(amount="7000")
    services.deal_move(actor=owner, deal=won, stage=stage("Won"))
    board = selectors.pipeline_board(user=owner)
    lead = next(c for c in board.columns if c.stage.name == "Lead")
    from decimal import Decimal

    assert lead.count == 3
    assert lead.value == {"USD": Decimal("4000.00"), "EUR": Decimal("500.00")}
    assert lead.weighted == {"USD": Decimal("400.00"), "EUR": Decimal("50.00")}
    assert board.won_this_month == {"USD": Decimal("7000.00")} and board.won_count == 1


def test_board_script_is_served_with_the_nonce(owner_client):
    html = owner_client.get("/crm/pipeline/").content.decode()
    assert 'src="/static/crm/pipeline.js"' in html and 'nonce="' in html


def test_viewer_sees_the_board_without_move_forms(viewer_client, advisor):
    DealFactory(owner=advisor, title="Visible")
    html = viewer_client.get("/crm/pipeline/").content.decode()
    assert "Visible" in html and "move-form" not in html
    assert viewer_client.post("/crm/contacts/new/", {"first_name": "x"}).status_code == 403


def test_tasks_page_lists_overdue_and_today_and_completes(owner_client, owner):
    today = dt.date.today()
    t1 = TaskFactory(owner=owner, subject="Send KYC pack", due_date=today - dt.timedelta(days=2))
    TaskFactory(owner=owner, subject="Rebalance", due_date=today)
    html = owner_client.get("/crm/tasks/").content.decode()
    assert "Send KYC pack" in html and "Rebalance" in html
    r = owner_client.post(f"/crm/tasks/{t1.pk}/complete/", {"done": "1"})
    assert r.status_code == 302
    overdue = owner_client.get("/crm/tasks/").context["overdue"]
    assert overdue == []


def test_tasks_due_for_selector(firm, advisor, advisor2):
    from crm.selectors import tasks_due_for

    today = dt.date(2026, 3, 10)
    TaskFactory(owner=advisor, subject="late", due_date=dt.date(2026, 3, 1))
    TaskFactory(owner=advisor, subject="now", due_date=today)
    TaskFactory(owner=advisor, subject="later", due_date=dt.date(2026, 4, 1))
    TaskFactory(owner=advisor2, subject="other", due_date=today)
    assert [t.subject for t in tasks_due_for(advisor, today=today)] == ["late", "now"]
    assert [t.subject for t in tasks_due_for(advisor, due="today", today=today)] == ["now"]


def test_advisor_gets_404_for_contacts_outside_their_book(advisor_client, advisor2):
    c = ContactFactory(owner=advisor2)
    assert advisor_client.get(f"/crm/contacts/{c.pk}/").status_code == 404
    assert advisor_client.get(f"/crm/contacts/{c.pk}/edit/").status_code == 404


def test_other_firm_cannot_open_a_contact_page(owner_client, outsider_client):
    c = ContactFactory()
    assert owner_client.get(f"/crm/contacts/{c.pk}/").status_code == 200
    assert outsider_client.get(f"/crm/contacts/{c.pk}/").status_code == 404


def test_merge_page(owner_client):
    a = ContactFactory(first_name="Ann", last_name="Lee")
    b = ContactFactory(first_name="Ann", last_name="Lee", email="ann2@example.com")
    r = owner_client.get(f"/crm/contacts/{a.pk}/merge/")
    assert b"ann2@example.com" in r.content
    r = owner_client.post(f"/crm/contacts/{a.pk}/merge/", {"other": "ANN2@example.com"})
    assert r.status_code == 302 and not Contact.objects.filter(pk=b.pk).exists()
    r = owner_client.post(f"/crm/contacts/{a.pk}/merge/", {"other": str(a.pk)})
    assert r.status_code == 400


def test_company_pages(owner_client, owner):
    co = CompanyFactory(name="Initech")
    ContactFactory(company=co, first_name="Peter")
    ActivityFactory(company=co, subject="Intro call")
    html = owner_client.get(f"/crm/companies/{co.pk}/").content.decode()
    assert "Peter" in html and "Intro call" in html


def test_exports_are_scoped_to_the_book(advisor_client, advisor, advisor2):
    ContactFactory(owner=advisor, email="mine@example.com")
    ContactFactory(owner=advisor2, email="theirs@example.com")
    text = b"".join(advisor_client.get("/crm/export/contacts.csv").streaming_content).decode()
    assert "mine@example.com" in text and "theirs@example.com" not in text
    assert advisor_client.get("/crm/export/deals.csv").status_code == 200


@pytest.mark.parametrize(
    ("url", "make"),
    [
        ("/crm/contacts/", lambda o: ActivityFactory(contact=ContactFactory(owner=o, company=CompanyFactory()))),
        ("/crm/companies/", lambda o: ContactFactory(company=CompanyFactory(owner=o))),
        ("/crm/deals/", lambda o: DealFactory(owner=o, contact=ContactFactory(), company=CompanyFactory())),
        ("/crm/pipeline/", lambda o: DealFactory(owner=o, contact=ContactFactory())),
        ("/crm/tasks/", lambda o: TaskFactory(owner=o, contact=ContactFactory())),
    ],
)
def test_page_query_count_does_not_grow_with_rows(owner_client, owner, url, make):
    make(owner)
    owner_client.get(url)
    with CaptureQueriesContext(connection) as few:
        assert owner_client.get(url).status_code == 200
    for _ in range(8):
        make(owner)
    with CaptureQueriesContext(connection) as many:
        assert owner_client.get(url).status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


def test_client_page_query_count_does_not_grow_with_timeline(owner_client, owner):
    c = ContactFactory()
    ActivityFactory(contact=c)
    DealFactory(contact=c)
    owner_client.get(f"/crm/contacts/{c.pk}/")
    with CaptureQueriesContext(connection) as few:
        owner_client.get(f"/crm/contacts/{c.pk}/")
    for _ in range(5):
        ActivityFactory(contact=c, owner=owner)
        DealFactory(contact=c)
    with CaptureQueriesContext(connection) as many:
        owner_client.get(f"/crm/contacts/{c.pk}/")
    assert len(many) == len(few)


def test_pipeline_stages_page_managers_configure_others_read(owner_client, advisor_client):
    from crm.models import PipelineStage

    assert b"Negotiation" in advisor_client.get("/crm/pipeline/stages/").content
    r = advisor_client.post(
        "/crm/pipeline/stages/",
        {"snew-name": "Onboarding", "snew-position": "5", "snew-probability": "90", "snew-kind": "open"},
    )
    assert r.status_code == 403
    r = owner_client.post(
        "/crm/pipeline/stages/",
        {
            "snew-name": "Onboarding",
            "snew-position": "5",
            "snew-probability": "90",
            "snew-kind": "open",
            "snew-is_active": "on",
        },
    )
    assert r.status_code == 302 and PipelineStage.objects.filter(name="Onboarding", probability=90).exists()
    r = owner_client.post(
        "/crm/pipeline/stages/",
        {"snew-name": "onboarding", "snew-position": "6", "snew-probability": "50", "snew-kind": "open"},
    )
    assert r.status_code == 400 and "A stage with this name exists." in r.content.decode()
    lead = PipelineStage.objects.get(name="Lead")
    from .factories import DealFactory

    DealFactory(stage=lead)
    r = owner_client.post(
        f"/crm/pipeline/stages/{lead.pk}/",
        {
            f"s{lead.pk}-name": "Lead",
            f"s{lead.pk}-position": "1",
            f"s{lead.pk}-probability": "10",
            f"s{lead.pk}-kind": "open",
        },
    )
    assert r.status_code == 400 and "Move this stage&#x27;s open deals first." in r.content.decode()
    assert PipelineStage.objects.get(pk=lead.pk).is_active


def test_board_totals_name_each_currency_apart_never_in_one_string(owner_client, owner):
    DealFactory(title="Dollar mandate", amount="1000", probability=50, currency="USD", owner=owner)
    DealFactory(title="Euro mandate", amount="500", probability=50, currency="EUR", owner=owner)
    html = owner_client.get("/crm/pipeline/").content.decode()
    lead = html[html.index('data-name="Lead"') :]
    lead = lead[: lead.index("</dl>")]
    assert "<li>$1,000.00</li>" in lead and "<li>€500.00</li>" in lead  # value
    assert "<li>$500.00</li>" in lead and "<li>€250.00</li>" in lead  # probability-weighted
    assert not re.search(r"\$[\d,.]+\s*[;,]\s*€", html)  # never "$1,000.00; €500.00"


def test_board_keeps_the_plain_move_form_as_fallback_inside_details(owner_client, owner):
    deal = DealFactory(title="Fallback deal", owner=owner)
    html = owner_client.get("/crm/pipeline/").content.decode()
    card = html[html.index(f'id="deal-{deal.pk}"') :]
    card = card[: card.index("</article>")]
    assert 'draggable="true"' in card.split(">")[0] and 'tabindex="0"' in card.split(">")[0]
    assert '<details class="move">' in card and f'action="/crm/deals/{deal.pk}/move/"' in card
    assert card.index("<details") < card.index("<form")
    assert 'id="reason-dialog"' in html  # the Lost reason is asked for before a drag moves a deal


def test_viewer_board_has_nothing_to_drag(viewer_client, advisor):
    DealFactory(owner=advisor, title="Look only")
    html = viewer_client.get("/crm/pipeline/").content.decode()
    assert "Look only" in html and 'draggable="true"' not in html and "reason-dialog" not in html
