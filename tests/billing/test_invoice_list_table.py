"""The firm's invoices on its billing page: sorted, filtered and paged on the server (issue 25 point
2), query count flat, another firm's invoices never shown."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from billing.models import Invoice, InvoiceStatus
from tenants.models import Tenant

from .conftest import activate
from .test_console_firm_page import open_invoice

pytestmark = pytest.mark.django_db


@pytest.fixture
def bill(firm):
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        tenant = Tenant.objects.get(pk=firm.pk)
    sub = activate(tenant, code="pro")

    def make(n: int, *, total: str | None = None, status: str = InvoiceStatus.OPEN) -> Invoice:
        invoice = open_invoice(tenant, sub, n, total or str(100 + n))
        if status != InvoiceStatus.OPEN:
            with schema_context(settings.PUBLIC_SCHEMA_NAME):
                Invoice.objects.filter(pk=invoice.pk).update(status=status)
        return invoice

    return make


def order_of(html: str, markers: list[str]) -> list[str]:
    assert all(m in html for m in markers), [m for m in markers if m not in html]
    return sorted(markers, key=html.index)


def test_sorts_by_total_both_ways_and_pages(owner_client, bill):
    for n in range(12):
        bill(n)
    up = owner_client.get("/billing/?sort=total&per_page=10").content.decode()
    assert order_of(up, ["TEST-0000", "TEST-0001", "TEST-0009"]) == ["TEST-0000", "TEST-0001", "TEST-0009"]
    assert "TEST-0010" not in up
    down = owner_client.get("/billing/?sort=-total&per_page=10").content.decode()
    assert order_of(down, ["TEST-0011", "TEST-0010", "TEST-0002"]) == ["TEST-0011", "TEST-0010", "TEST-0002"]
    second = owner_client.get("/billing/?sort=total&per_page=10&page=2").content.decode()
    assert order_of(second, ["TEST-0010", "TEST-0011"]) == ["TEST-0010", "TEST-0011"] and "TEST-0000" not in second


def test_filters_by_status_and_names_a_bad_one(owner_client, bill):
    bill(1, status=InvoiceStatus.PAID)
    bill(2)
    paid = owner_client.get("/billing/?status=paid").content.decode()
    assert "TEST-0001" in paid and "TEST-0002" not in paid
    drafts = owner_client.get("/billing/?status=draft").content.decode()  # drafts are the operators' business
    assert 'id="filter_status_error"' in drafts and "TEST-0002" in drafts


def test_query_count_does_not_grow_with_rows(owner_client, bill):
    bill(0)
    owner_client.get("/billing/?sort=status")
    with CaptureQueriesContext(connection) as few:
        owner_client.get("/billing/?sort=status")
    for n in range(1, 12):
        bill(n)
    with CaptureQueriesContext(connection) as many:
        assert "TEST-0011" in owner_client.get("/billing/?sort=status").content.decode()
    assert len(many) == len(few)


def test_another_firm_never_sees_the_invoices(owner_client, outsider_client, bill):
    bill(1)
    assert "TEST-0001" in owner_client.get("/billing/").content.decode()
    assert "TEST-0001" not in outsider_client.get("/billing/?sort=number").content.decode()
