"""Services: contacts, companies, deals and the pipeline, activities and tasks, merge."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from crm import services
from crm.models import Activity, Contact, Deal, DealStageChange, PipelineStage, Subscriber

from .factories import ActivityFactory, CompanyFactory, ContactFactory, DealFactory, stage


def test_default_pipeline_stages_exist_in_a_firm(firm):
    names = list(PipelineStage.objects.values_list("name", flat=True))
    assert names == ["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]


def test_contact_email_is_unique_case_insensitively(firm, owner):
    services.contact_create(actor=owner, tenant=firm, first_name="Ann", email="Ann@Example.com")
    with pytest.raises(ValidationError) as err:
        services.contact_create(actor=owner, tenant=firm, first_name="Other", email="ann@example.COM")
    assert "email" in err.value.message_dict
    assert Contact.objects.filter(email__iexact="ann@example.com").count() == 1


def test_database_rejects_a_case_variant_duplicate_email(firm):
    ContactFactory(email="dup@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        ContactFactory(email="DUP@example.com")


def test_contacts_without_email_may_coexist(firm, owner):
    services.contact_create(actor=owner, tenant=firm, first_name="A")
    services.contact_create(actor=owner, tenant=firm, first_name="B")
    assert Contact.objects.filter(email="").count() == 2


def test_advisor_owns_what_they_create_and_cannot_give_it_away(firm, advisor, advisor2):
    c = services.contact_create(actor=advisor, tenant=firm, first_name="Mine")
    assert c.owner == advisor
    with pytest.raises(ValidationError) as err:
        services.contact_create(actor=advisor, tenant=firm, first_name="Theirs", owner=advisor2)
    assert "owner" in err.value.message_dict


def test_viewer_cannot_create(firm, viewer):
    with pytest.raises(PermissionDenied):
        services.contact_create(actor=viewer, tenant=firm, first_name="No")


def test_invalid_extra_email_is_a_field_error(firm, owner):
    with pytest.raises(ValidationError) as err:
        services.contact_create(actor=owner, tenant=firm, first_name="X", other_emails=["not-an-email"])
    assert "other_emails" in err.value.message_dict


def test_contact_limit_of_the_plan_is_enforced(firm, owner, monkeypatch):
    from billing import entitlements

    def full(*, tenant, resource, adding=1):
        raise entitlements.PlanLimitExceeded("full", limit=resource, allowed=0, used=0)

    monkeypatch.setattr(services.contacts, "check_can_add", full)
    with pytest.raises(entitlements.PlanLimitExceeded):
        services.contact_create(actor=owner, tenant=firm, first_name="Over")
    assert not Contact.objects.filter(first_name="Over").exists()


def test_deal_moves_are_recorded_and_won_lost_close_the_deal(firm, owner):
    deal = services.deal_create(actor=owner, title="Mandate", amount="250000", currency="usd")
    assert deal.currency == "USD" and deal.probability == 10 and deal.status == "open"
    deal = services.deal_move(actor=owner, deal=deal, stage=stage("Proposal"))
    assert deal.probability == 50
    with pytest.raises(ValidationError) as err:
        services.deal_move(actor=owner, deal=deal, stage=stage("Lost"))
    assert "reason" in err.value.message_dict
    deal = services.deal_move(actor=owner, deal=deal, stage=stage("Lost"), reason="Went with a robo-advisor")
    assert deal.status == "lost" and deal.closed_at is not None and deal.close_reason == "Went with a robo-advisor"
    deal = services.deal_move(actor=owner, deal=deal, stage=stage("Negotiation"))
    assert deal.status == "open" and deal.closed_at is None
    moves = list(DealStageChange.objects.filter(deal=deal).order_by("pk").values_list("to_stage__name", flat=True))
    assert moves == ["Lead", "Proposal", "Lost", "Negotiation"]


def test_deal_close_won(firm, owner):
    deal = services.deal_create(actor=owner, title="Won one", amount="10")
    deal = services.deal_close(actor=owner, deal=deal, won=True, reason="signed")
    assert deal.status == "won" and deal.stage.name == "Won" and deal.probability == 100


def test_deal_rejects_bad_money(firm, owner):
    with pytest.raises(ValidationError) as err:
        services.deal_create(actor=owner, title="Bad", amount="-5")
    assert "amount" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        services.deal_create(actor=owner, title="Bad", amount="5", currency="dollars")
    assert "currency" in err.value.message_dict
    assert not Deal.objects.filter(title="Bad").exists()


def test_advisor_cannot_link_a_deal_to_a_contact_outside_their_book(firm, advisor, advisor2):
    theirs = ContactFactory(owner=advisor2)
    with pytest.raises(ValidationError) as err:
        services.deal_create(actor=advisor, title="Poach", contact=theirs)
    assert "contact" in err.value.message_dict


def test_task_create_is_idempotent_per_source_and_only_tasks_have_due_dates(firm, advisor):
    contact = ContactFactory(owner=advisor)
    t1 = services.task_create(owner=advisor, title="Call about drawdown", contact=contact, source="alert:7")
    t2 = services.task_create(owner=advisor, title="Call about drawdown", contact=contact, source="alert:7")
    assert t1.pk == t2.pk and t1.kind == "task"
    services.task_complete(actor=advisor, task=t1)
    t3 = services.task_create(owner=advisor, title="Call again", source="alert:7")
    assert t3.pk != t1.pk
    with pytest.raises(ValidationError):
        services.activity_create(actor=advisor, kind="note", subject="x", due_date=dt.date.today())
    with pytest.raises(IntegrityError), transaction.atomic():
        Activity.objects.create(kind="call", subject="x", due_date=dt.date.today())


def test_merge_contacts_moves_everything_and_records_it(firm, owner):
    company = CompanyFactory()
    survivor = ContactFactory(first_name="Ann", last_name="Lee", email="ann@x.com", phone="")
    loser = ContactFactory(
        first_name="Ann", last_name="Lee", email="ann.lee@y.com", phone="+41 1", company=company, tags=["vip"]
    )
    ActivityFactory(contact=loser, subject="Lunch")
    deal = DealFactory(contact=loser)
    sub = Subscriber.objects.create(email="ann.lee@y.com", contact=loser, status="confirmed")
    merged = services.contact_merge(actor=owner, survivor=survivor, loser=loser)
    assert not Contact.objects.filter(pk=loser.pk).exists()
    assert merged.phone == "+41 1" and merged.company == company and merged.tags == ["vip"]
    assert "ann.lee@y.com" in merged.other_emails
    assert Deal.objects.get(pk=deal.pk).contact_id == survivor.pk
    assert Activity.objects.filter(contact=survivor, subject="Lunch").exists()
    assert Subscriber.objects.get(pk=sub.pk).contact_id == survivor.pk
    note = Activity.objects.get(contact=survivor, source="merge")
    assert "ann.lee@y.com" in note.subject


def test_merge_moves_portfolios(firm, owner):
    from portfolios.models import Portfolio

    survivor, loser = ContactFactory(), ContactFactory()
    p = Portfolio.objects.create(name="Growth", client=loser, advisor=owner)
    services.contact_merge(actor=owner, survivor=survivor, loser=loser)
    p.refresh_from_db()
    assert p.client_id == survivor.pk


def test_merge_is_atomic(firm, owner):
    from crm.record_sources import contact_merging

    survivor, loser = ContactFactory(), ContactFactory()
    ActivityFactory(contact=loser)

    def boom(sender, **kwargs):
        raise ValidationError("portfolio move failed")

    contact_merging.connect(boom, dispatch_uid="test-merge-boom")
    try:
        with pytest.raises(ValidationError):
            services.contact_merge(actor=owner, survivor=survivor, loser=loser)
    finally:
        contact_merging.disconnect(dispatch_uid="test-merge-boom")
    assert Contact.objects.filter(pk=loser.pk).exists()
    assert Activity.objects.filter(contact=loser).count() == 1


def test_merge_companies(firm, owner):
    a, b = CompanyFactory(name="Acme AG"), CompanyFactory(name="ACME AG", industry="Banking")
    c = ContactFactory(company=b)
    services.company_merge(actor=owner, survivor=a, loser=b)
    a.refresh_from_db()
    c.refresh_from_db()
    assert c.company_id == a.pk and a.industry == "Banking"
    assert Activity.objects.filter(company=a, source="merge").exists()


def test_weighted_amount(firm):
    d = DealFactory(amount=Decimal("1000.00"), probability=25)
    assert d.weighted_amount == Decimal("250.00")
