"""The portal's household binding, returns gross and net of fees, fee statements among the client's
documents, transaction paging (issue 22's follow-ups; docs/decisions/1020-1022)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import schema_context

from fees import services as fee_services
from fees.models import FeeStatement
from portal import services
from portal.models import ClientAccess
from portfolios import services as portfolio_services
from tenants.accounts.models import Role, User
from tenants.models import AuditEvent
from tests.conftest import PASSWORD, FirmClient
from tests.portfolios.factories import ContactFactory, PortfolioFactory

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _account(advisor, client, deposits: dict[date, str], name: str):
    portfolio = PortfolioFactory(name=name, advisor=advisor, client=client, base_currency="USD")
    for day, amount in sorted(deposits.items()):
        portfolio_services.transaction_record(portfolio=portfolio, kind="deposit", trade_date=day, amount=amount)
    return portfolio


def _user(contact, email: str, household=None) -> User:
    user = User.objects.create_user(email, PASSWORD, role=Role.CLIENT, first_name=contact.first_name)
    ClientAccess.objects.create(user=user, contact=contact, household=household)
    return user


def _audit(action):
    with schema_context("public"):
        return list(AuditEvent.objects.filter(action=action).order_by("-id").values("actor", "target", "details"))


@pytest.fixture
def alan(firm, advisor):
    """Ada's spouse: his own contact and account, billed in Ada's household."""
    return ContactFactory(owner=advisor, first_name="Alan", last_name="Lovelace", lifecycle="client")


@pytest.fixture
def homes(firm, advisor, advisor2, ada, alan, bob):
    """Ada's household (her account and Alan's), and Bob's household (another one of the firm)."""
    ada_main = _account(advisor, ada, {date(2026, 6, 1): "1000000", date(2026, 9, 1): "920000"}, "Ada main")
    alan_ira = _account(advisor, alan, {date(2026, 6, 1): "500000"}, "Alan IRA")
    bob_main = _account(advisor2, bob, {date(2026, 6, 1): "700000"}, "Bob main")
    lovelace = fee_services.billing_group_create(name="Lovelace household", client=ada, portfolios=[ada_main, alan_ira])
    others = fee_services.billing_group_create(name="Other household", client=bob, portfolios=[bob_main])
    return {"ada_main": ada_main, "alan_ira": alan_ira, "bob_main": bob_main, "lovelace": lovelace, "others": others}


@pytest.fixture
def issued(owner, homes):
    """Q3 2026 fees issued on 1 October: Ada's household deducted from the accounts, Bob's invoiced."""
    schedule = fee_services.fee_schedule_create(
        name="Standard", effective_from=date(2020, 1, 1), method="tiered", tiers=[{"upto": None, "bps": "100"}]
    )
    product = fee_services.product_create(name="Wealth management", fee_schedule=schedule)
    fee_services.subscription_create(
        group=homes["lovelace"], product=product, starts_on=date(2026, 6, 1), collection="deduct"
    )
    fee_services.subscription_create(group=homes["others"], product=product, starts_on=date(2026, 6, 1))
    run = fee_services.fee_run_preview(
        actor=owner, period_start=date(2026, 7, 1), period_end=date(2026, 9, 30), frequency="quarterly"
    )
    fee_services.fee_run_approve(run=run, actor=owner)
    counts = fee_services.fee_run_issue(run=run, issued_on=date(2026, 10, 1))
    assert counts.ready == 2
    return {
        "lovelace": FeeStatement.objects.get(invoice__group=homes["lovelace"]),
        "others": FeeStatement.objects.get(invoice__group=homes["others"]),
    }


# --- household binding ---------------------------------------------------------------------------------------
def test_a_household_user_sees_every_portfolio_of_the_household(settings_fast, firm, ada, homes, client_for):
    household_user = _user(ada, "ada.home@client.test", homes["lovelace"])
    c = client_for(household_user)
    overview = c.get("/api/v1/portal/overview/").json()
    assert {p["name"] for p in overview["portfolios"]} == {"Ada main", "Alan IRA"}
    assert overview["household"] == "Lovelace household"
    assert Decimal(overview["total_value"]) == Decimal("2420000")
    assert c.get("/api/v1/portal/me/").json()["household"] == "Lovelace household"
    alan_ira = homes["alan_ira"].pk
    assert c.get(f"/api/v1/portal/portfolios/{alan_ira}/").json()["name"] == "Alan IRA"
    assert c.get(f"/api/v1/portal/portfolios/{alan_ira}/transactions/").json()["count"] == 1
    # bound to Ada alone (no household): her own account only; Alan's is not found
    own = client_for(_user(ada, "ada.own@client.test"))
    assert [p["name"] for p in own.get("/api/v1/portal/overview/").json()["portfolios"]] == ["Ada main"]
    assert own.get(f"/api/v1/portal/portfolios/{alan_ira}/").status_code == 404


def test_a_household_user_sees_the_households_documents_not_another_households(
    settings_fast, firm, advisor, advisor2, ada, alan, bob, homes, client_for, vault_dir
):
    def shared(contact, title, actor=advisor):
        upload = SimpleUploadedFile(f"{title}.pdf", PDF, "application/pdf")
        return services.document_upload(
            actor=actor, tenant=firm, upload=upload, title=title, contact=contact, visibility="shared"
        )

    alans, bobs = shared(alan, "Alan tax"), shared(bob, "Bob tax", advisor2)
    c = client_for(_user(ada, "ada.home@client.test", homes["lovelace"]))
    titles = {d["title"] for d in c.get("/api/v1/portal/documents/").json()["results"]}
    assert "Alan tax" in titles and "Bob tax" not in titles
    assert c.get(f"/api/v1/portal/documents/{alans.pk}/").status_code == 200
    assert c.get(f"/api/v1/portal/documents/{bobs.pk}/").status_code == 404


def test_another_household_of_the_firm_gets_404_on_everything(settings_fast, firm, ada, bob, homes, client_for):
    bob_home = client_for(_user(bob, "bob.home@client.test", homes["others"]))
    for key in ("ada_main", "alan_ira"):
        pk = homes[key].pk
        for path in (
            f"/api/v1/portal/portfolios/{pk}/",
            f"/api/v1/portal/portfolios/{pk}/value-series/",
            f"/api/v1/portal/portfolios/{pk}/transactions/",
            f"/api/v1/portal/portfolios/{pk}/transactions/export/",
        ):
            assert bob_home.get(path).status_code == 404, path
    assert [p["name"] for p in bob_home.get("/api/v1/portal/overview/").json()["portfolios"]] == ["Bob main"]
    # the owner of the data reaches it (so the check above can fail)
    ada_home = client_for(_user(ada, "ada.home@client.test", homes["lovelace"]))
    assert ada_home.get(f"/api/v1/portal/portfolios/{homes['alan_ira'].pk}/").status_code == 200


def test_another_firm_gets_404_on_a_households_portfolios(
    settings_fast, firm, ada, homes, client_for, outsider, other_firm
):
    household_user = _user(ada, "ada.home@client.test", homes["lovelace"])
    pk = homes["alan_ira"].pk
    assert client_for(outsider, other_firm).get(f"/api/v1/portal/portfolios/{pk}/").status_code == 404
    home = client_for(household_user)
    assert home.get(f"/api/v1/portal/portfolios/{pk}/").status_code == 200
    # the household user's session cookie means nothing at the other firm's host
    abroad = FirmClient(other_firm)
    abroad.cookies = home.cookies
    assert abroad.get(f"/api/v1/portal/portfolios/{pk}/").status_code in (401, 403)


def test_an_invitation_can_bind_the_client_to_their_household(
    settings_fast, firm, advisor, ada, bob, homes, client_for
):
    page = client_for(advisor).get(f"/client-portal/clients/{ada.pk}/").content.decode()
    assert "Lovelace household" in page and "Other household" not in page
    with pytest.raises(ValidationError) as exc:
        services.client_invite(actor=advisor, contact=ada, tenant=firm, household=homes["others"])
    assert "household" in exc.value.message_dict
    invitation = services.client_invite(actor=advisor, contact=ada, tenant=firm, household=homes["lovelace"])
    from tenants.accounts.services import invitation_token

    user = services.client_invitation_accept(
        token=invitation_token(invitation), password="a-Long-pass-phrase-7", tenant=firm
    )
    assert ClientAccess.objects.get(user=user).household == homes["lovelace"]
    names = {p["name"] for p in client_for(user).get("/api/v1/portal/overview/").json()["portfolios"]}
    assert names == {"Ada main", "Alan IRA"}


# --- returns gross and net of fees ------------------------------------------------------------------------------
def test_portal_returns_net_and_gross_equal_the_staff_fee_returns(
    settings_fast, firm, owner, ada, homes, issued, client_for
):
    c = client_for(_user(ada, "ada.home@client.test", homes["lovelace"]))
    staff = client_for(owner)
    pk = homes["ada_main"].pk
    detail = c.get(f"/api/v1/portal/portfolios/{pk}/").json()
    compared = 0
    for row in detail["returns"]:
        fee = row["fee_return"]
        if row["twr"] is None:
            assert fee is None
            continue
        start = date.fromisoformat(row["twr"]["base_date"]).toordinal() + 1
        params = f"start={date.fromordinal(start).isoformat()}&end={row['twr']['end']}"
        expected = staff.get(f"/api/v1/portfolios/{pk}/fee-returns/?{params}").json()
        assert Decimal(fee["net"]["cumulative"]) == Decimal(expected["net"]), row["period"]
        assert Decimal(fee["gross"]["cumulative"]) == Decimal(expected["gross"]), row["period"]
        assert Decimal(fee["fees"]) == Decimal(expected["fees"]), row["period"]
        compared += 1
    si = next(r for r in detail["returns"] if r["period"] == "SI")
    # the 1 October fee was deducted from the account: gross is above net by it
    assert Decimal(si["fee_return"]["fees"]) > 0
    assert Decimal(si["fee_return"]["gross"]["cumulative"]) > Decimal(si["fee_return"]["net"]["cumulative"])
    assert compared >= 2
    # the overview's since-inception figures are the same computation
    line = next(p for p in c.get("/api/v1/portal/overview/").json()["portfolios"] if p["id"] == pk)
    si_fee = line["since_inception_fee_return"]
    start = date.fromordinal(date.fromisoformat(si_fee["net"]["base_date"]).toordinal() + 1)
    expected = staff.get(f"/api/v1/portfolios/{pk}/fee-returns/?start={start}&end={si_fee['net']['end']}").json()
    assert Decimal(si_fee["net"]["cumulative"]) == Decimal(expected["net"])
    assert Decimal(si_fee["gross"]["cumulative"]) == Decimal(expected["gross"])


# --- fee statements among the client's documents ------------------------------------------------------------------
def test_issued_fee_statements_are_listed_and_download_through_signed_links(
    settings_fast, firm, ada, bob, homes, issued, client_for
):
    statement = issued["lovelace"]
    c = client_for(_user(ada, "ada.home@client.test", homes["lovelace"]))
    listed = c.get("/api/v1/portal/documents/").json()
    entries = [(d["source"], d["id"]) for d in listed["results"]]
    assert ("fee_statement", statement.pk) in entries
    assert ("fee_statement", issued["others"].pk) not in entries
    entry = next(d for d in listed["results"] if d["source"] == "fee_statement")
    assert entry["kind"] == "statement" and entry["title"] == f"Fee statement {statement.invoice.number}"
    detail = c.get(f"/api/v1/portal/fee-statements/{statement.pk}/").json()
    download = c.get(detail["download_url"])
    assert download.status_code == 200
    body = b"".join(download.streaming_content)
    with statement.file.open("rb") as f:
        assert body == f.read() and body.startswith(b"%PDF-")
    assert _audit("portal.document_viewed")[0]["target"] == f"fee_statement:{statement.pk}"
    assert _audit("portal.document_downloaded")[0]["target"] == f"fee_statement:{statement.pk}"
    # filters apply to the statements too
    assert not [d for d in c.get("/api/v1/portal/documents/?kind=tax").json()["results"] if d["source"] != "vault"]
    assert [d["id"] for d in c.get("/api/v1/portal/documents/?kind=statement").json()["results"]] == [statement.pk]
    assert c.get(f"/api/v1/portal/documents/?search={statement.invoice.number}").json()["count"] == 1
    # another household: not listed, not found, and a link made for it opens nothing
    bob_home = client_for(_user(bob, "bob.home@client.test", homes["others"]))
    assert bob_home.get(f"/api/v1/portal/fee-statements/{statement.pk}/").status_code == 404
    assert statement.pk not in [
        d["id"] for d in bob_home.get("/api/v1/portal/documents/").json()["results"] if d["source"] != "vault"
    ]
    bob_user = User.objects.get(email="bob.home@client.test")
    forged = services.download_token(fee_statement=statement, user=bob_user)
    assert bob_home.get(f"/portal/files/{forged}/").status_code == 404
    # voided: withdrawn from the list, and the link given before stops working
    fee_services.fee_invoice_void(invoice=statement.invoice, reason="wrong schedule")
    assert c.get(f"/api/v1/portal/fee-statements/{statement.pk}/").status_code == 404
    assert c.get(detail["download_url"]).status_code == 404


def test_a_contact_bound_client_sees_their_own_fee_statements(settings_fast, firm, ada, homes, issued, client_for):
    c = client_for(_user(ada, "ada.own@client.test"))
    listed = c.get("/api/v1/portal/documents/?ordering=-period_end").json()
    assert [d["id"] for d in listed["results"] if d["source"] == "fee_statement"] == [issued["lovelace"].pk]
    assert c.get(f"/api/v1/portal/fee-statements/{issued['others'].pk}/").status_code == 404
    assert c.get("/api/v1/portal/documents/?ordering=size").status_code == 400


# --- transaction paging -------------------------------------------------------------------------------------------
def test_transactions_page_beyond_25_rows(settings_fast, firm, advisor, ada, client_for):
    portfolio = _account(advisor, ada, {date(2026, 1, 1 + i): "100" for i in range(30)}, "Ada savings")
    c = client_for(_user(ada, "ada.own@client.test"))
    first = c.get(f"/api/v1/portal/portfolios/{portfolio.pk}/transactions/").json()
    assert first["count"] == 30 and len(first["results"]) == 25 and first["previous"] is None
    next_url = urlsplit(first["next"])
    second = c.get(f"{next_url.path}?{next_url.query}").json()
    assert len(second["results"]) == 5 and second["next"] is None
    seen = [t["trade_date"] for t in first["results"] + second["results"]]
    assert len(set(seen)) == 30 and seen == sorted(seen, reverse=True)
