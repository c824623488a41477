"""The create forms carry an idempotency key: a second submission of the same form does not record
a second transaction (codex.idempotent_forms)."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone

from crm.models import Contact
from portfolios.models import Transaction

pytestmark = pytest.mark.django_db


def _key(page) -> str:
    match = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', page.content.decode())
    assert match, "the form carries a fresh key"
    return match.group(1)


def _deposit(amount: str, key: str) -> dict:
    return {"kind": "deposit", "trade_date": timezone.localdate().isoformat(), "amount": amount, "idempotency_key": key}


def test_the_same_form_sent_twice_records_one_transaction(advisor_client, portfolio):
    url = f"/portfolios/{portfolio.pk}/transactions/new/"
    key = _key(advisor_client.get(url))
    first = advisor_client.post(url, _deposit("500", key))
    again = advisor_client.post(url, _deposit("500", key))
    assert first.status_code == again.status_code == 302
    assert again["Location"] == first["Location"] and again["Idempotent-Replayed"] == "true"
    assert Transaction.objects.filter(portfolio=portfolio).count() == 1


def test_the_same_key_with_other_values_is_refused(advisor_client, portfolio):
    url = f"/portfolios/{portfolio.pk}/transactions/new/"
    key = _key(advisor_client.get(url))
    assert advisor_client.post(url, _deposit("500", key)).status_code == 302
    other = advisor_client.post(url, _deposit("900", key))
    assert other.status_code == 422 and "already sent with other values" in other.content.decode()
    assert list(Transaction.objects.filter(portfolio=portfolio).values_list("amount", flat=True)) == [500]


def test_a_form_with_errors_keeps_its_key_for_the_corrected_submission(advisor_client, portfolio):
    url = f"/portfolios/{portfolio.pk}/transactions/new/"
    key = _key(advisor_client.get(url))
    bad = advisor_client.post(url, {**_deposit("500", key), "trade_date": ""})
    assert bad.status_code == 200 and _key(bad) == key
    assert advisor_client.post(url, _deposit("500", key)).status_code == 302
    assert Transaction.objects.filter(portfolio=portfolio).count() == 1


def test_each_user_has_their_own_keys(advisor_client, owner_client, portfolio):
    url = f"/portfolios/{portfolio.pk}/transactions/new/"
    assert advisor_client.post(url, _deposit("500", "k" * 32)).status_code == 302
    assert owner_client.post(url, _deposit("500", "k" * 32)).status_code == 302
    assert Transaction.objects.filter(portfolio=portfolio).count() == 2


def test_contact_form_sent_twice_adds_one_contact(owner_client):
    key = _key(owner_client.get("/crm/contacts/new/"))
    data = {"first_name": "Grace", "last_name": "Hopper", "lifecycle": "lead", "idempotency_key": key}
    assert owner_client.post("/crm/contacts/new/", data).status_code == 302
    assert owner_client.post("/crm/contacts/new/", data).status_code == 302
    assert Contact.objects.filter(first_name="Grace", last_name="Hopper").count() == 1
