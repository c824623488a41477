"""Client users, the portal API, the vault, posts: behaviour, isolation, bad input (issue 22)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail, signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django_tenants.utils import schema_context

from portal import services
from portal.models import ClientAccess, Document, Post
from portfolios import selectors as portfolio_selectors
from tenants.accounts.models import Invitation, Role, User
from tenants.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _audit(action):
    with schema_context("public"):
        return list(AuditEvent.objects.filter(action=action).order_by("-id").values("actor", "target", "details"))


def _token_from_mail():
    body = mail.outbox[-1].body
    return body.split("/portal/invitation/")[1].split("/")[0]


# --- client users ------------------------------------------------------------------------------------------
def test_advisor_invites_client_who_sets_a_password_and_lands_in_the_portal(
    settings_fast, firm, advisor, ada, client_for, anon_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        page = client_for(advisor).post(f"/client-portal/clients/{ada.pk}/", {"action": "invite", "email": ""})
    assert page.status_code == 302
    assert mail.outbox[-1].to == ["ada@client.test"]
    token = _token_from_mail()
    # the staff acceptance page hands a client invitation to the portal's
    response = anon_client.get(f"/accounts/invitation/{token}/")
    assert response.status_code == 302 and response["Location"] == f"/portal/invitation/{token}/"
    response = anon_client.post(
        f"/portal/invitation/{token}/", {"password": "a-Long-pass-phrase-7", "password_again": "a-Long-pass-phrase-7"}
    )
    assert response.status_code == 302 and response["Location"] == "/portal/"
    connection.set_tenant(firm)
    user = User.objects.get(email="ada@client.test")
    assert user.role == Role.CLIENT and ClientAccess.objects.get(user=user).contact == ada
    me = anon_client.get("/api/v1/portal/me/")
    assert me.status_code == 200 and me.json()["contact_id"] == ada.pk
    # reused: refused, clearly, and audited
    again = anon_client.post(
        f"/portal/invitation/{token}/", {"password": "a-Long-pass-phrase-7", "password_again": "a-Long-pass-phrase-7"}
    )
    assert again.status_code == 400 and b"already been used" in again.content
    assert _audit("portal.invitation_refused")


def test_expired_and_tampered_invitations_are_refused_and_audited(settings_fast, firm, advisor, ada, anon_client):
    invitation = services.client_invite(actor=advisor, contact=ada, tenant=firm)
    from tenants.accounts.services import invitation_token

    token = invitation_token(invitation)
    settings_fast.CODEX_INVITATION_MAX_AGE = -1
    response = anon_client.get(f"/portal/invitation/{token}/")
    assert response.status_code == 400 and b"expired" in response.content
    settings_fast.CODEX_INVITATION_MAX_AGE = 3600
    response = anon_client.get(f"/portal/invitation/{token[:-2]}xx/")
    assert response.status_code == 400 and b"not valid" in response.content
    reasons = [e["details"]["reason"] for e in _audit("portal.invitation_refused")[:2]]
    assert any("expired" in r for r in reasons) and any("not valid" in r for r in reasons)


def test_former_client_cannot_accept_nor_use_the_portal(settings_fast, firm, advisor, ada, ada_user, client_for):
    invitation = services.client_invite(actor=advisor, contact=ada, tenant=firm, email="second@client.test")
    from tenants.accounts.services import invitation_token

    token = invitation_token(invitation)
    ada.lifecycle = "former"
    ada.save()
    with pytest.raises(Exception, match="no longer valid"):
        services.client_invitation_accept(token=token, password="a-Long-pass-phrase-7", tenant=firm)
    response = client_for(ada_user).get("/api/v1/portal/overview/")
    assert response.status_code == 403 and "ended" in response.json()["error"]["message"]
    assert not Invitation.objects.get(pk=invitation.pk).accepted_at


def test_client_invitation_needs_the_contact_in_the_inviters_book(settings_fast, firm, advisor, bob, client_for):
    response = client_for(advisor).post(f"/client-portal/clients/{bob.pk}/", {"action": "invite"})
    assert response.status_code == 404


def test_team_invitation_cannot_make_a_client(firm, owner):
    from django.core.exceptions import ValidationError

    from tenants.accounts.services import invitation_create

    with pytest.raises(ValidationError):
        invitation_create(actor=owner, email="x@y.test", role=Role.CLIENT, tenant=firm, accept_url_builder=str)


def test_clients_are_not_seats(firm, ada_user):
    from billing.counters import seats_count

    before = seats_count()
    User.objects.create_user("another.client@client.test", PASSWORD, role=Role.CLIENT)
    assert seats_count() == before


@pytest.mark.parametrize(
    "path",
    [
        "/portfolios/",
        "/crm/contacts/",
        "/billing/",
        "/accounts/team/",
        "/client-portal/posts/",
        "/settings/",
        "/api/v1/portfolios/",
        "/api/v1/contacts/",
        "/api/v1/me/",
    ],
)
def test_staff_pages_and_api_refuse_client_users(settings_fast, firm, ada_user, client_for, path):
    response = client_for(ada_user).get(path)
    assert response.status_code == 404


def test_client_home_is_the_portal_and_bearer_tokens_are_refused(
    settings_fast, firm, ada_user, client_for, anon_client
):
    assert client_for(ada_user).get("/")["Location"] == "/portal/"
    token = anon_client.post(
        "/api/v1/auth/token/", {"email": ada_user.email, "password": PASSWORD}, content_type="application/json"
    )
    if token.status_code == 200:
        response = anon_client.get("/api/v1/portal/me/", HTTP_AUTHORIZATION=f"Bearer {token.json()['access']}")
        assert response.status_code == 401
    else:
        assert token.status_code in (401, 403)


def test_sign_out_everywhere_ends_the_client_session(settings_fast, firm, ada_user, client_for):
    c = client_for(ada_user)
    other = client_for(ada_user)
    assert c.post("/accounts/logout/everywhere/").status_code == 302
    assert other.get("/api/v1/portal/me/").status_code in (401, 403)


# --- the portal API ----------------------------------------------------------------------------------------
def test_portfolio_figures_equal_the_staff_page(settings_fast, firm, ada_portfolio, ada_user, client_for):
    response = client_for(ada_user).get(f"/api/v1/portal/portfolios/{ada_portfolio.pk}/")
    assert response.status_code == 200
    data = response.json()
    dash = portfolio_selectors.portfolio_dashboard(portfolio=ada_portfolio)
    assert Decimal(data["total_value"]) == dash.snapshot.total_value
    si = next(r for r in data["returns"] if r["period"] == "SI")
    staff_si = next(r for r in dash.returns if r.preset == "SI")
    assert Decimal(si["twr"]["value"]) == staff_si.twr.value.quantize(Decimal("1e-10"))
    assert Decimal(si["mwr"]["value"]) == staff_si.mwr.value.quantize(Decimal("1e-10"))
    assert data["holdings"][0]["symbol"] == "PORTX"
    # the staff API reads the same value
    staff = client_for(ada_portfolio.advisor).get(f"/api/v1/portfolios/{ada_portfolio.pk}/holdings/").json()
    assert Decimal(staff["total_value"]) == Decimal(data["total_value"])
    overview = client_for(ada_user).get("/api/v1/portal/overview/").json()
    assert Decimal(overview["total_value"]) == dash.snapshot.total_value
    assert overview["portfolios"][0]["id"] == ada_portfolio.pk
    staff_allocation = dash.allocations["asset_class"]
    assert {a["bucket"]: Decimal(a["weight"]) for a in overview["allocation"]} == {
        b: w.quantize(Decimal("1e-10")) for b, w in staff_allocation.items()
    }


@pytest.mark.parametrize("rng", ["1M", "3M", "YTD", "1Y", "3Y", "ALL"])
def test_value_series_ranges(settings_fast, firm, ada_portfolio, ada_user, client_for, rng):
    response = client_for(ada_user).get(f"/api/v1/portal/portfolios/{ada_portfolio.pk}/value-series/?range={rng}")
    assert response.status_code == 200, response.content
    assert response.json()["points"]


def test_value_series_refuses_an_unknown_range(settings_fast, firm, ada_portfolio, ada_user, client_for):
    response = client_for(ada_user).get(f"/api/v1/portal/portfolios/{ada_portfolio.pk}/value-series/?range=5Y")
    assert response.status_code == 400 and "range" in response.json()["error"]["details"]


def test_transactions_filter_and_csv(settings_fast, firm, ada_portfolio, ada_user, client_for):
    c = client_for(ada_user)
    listed = c.get(f"/api/v1/portal/portfolios/{ada_portfolio.pk}/transactions/?kind=buy").json()
    assert [t["kind"] for t in listed["results"]] == ["buy"] and "note" not in listed["results"][0]
    csv_response = c.get(f"/api/v1/portal/portfolios/{ada_portfolio.pk}/transactions/export/?kind=deposit")
    body = b"".join(csv_response.streaming_content).decode()
    assert body.splitlines()[0].startswith("trade_date,kind") and "deposit" in body and ",buy," not in body


def test_another_client_of_the_firm_gets_404_on_everything(
    settings_fast, firm, ada_portfolio, bob_portfolio, ada_user, bob_user, client_for, advisor
):
    doc = services.document_upload(
        actor=advisor,
        tenant=firm,
        upload=SimpleUploadedFile("s.pdf", PDF, "application/pdf"),
        title="Ada statement",
        contact=ada_portfolio.client,
        kind="statement",
        visibility="shared",
    )
    bob_c = client_for(bob_user)
    for path in (
        f"/api/v1/portal/portfolios/{ada_portfolio.pk}/",
        f"/api/v1/portal/portfolios/{ada_portfolio.pk}/value-series/",
        f"/api/v1/portal/portfolios/{ada_portfolio.pk}/transactions/",
        f"/api/v1/portal/portfolios/{ada_portfolio.pk}/transactions/export/",
        f"/api/v1/portal/documents/{doc.pk}/",
    ):
        assert bob_c.get(path).status_code == 404, path
    assert doc.pk not in [d["id"] for d in bob_c.get("/api/v1/portal/documents/").json()["results"]]
    # and the owner of the data reaches it
    assert client_for(ada_user).get(f"/api/v1/portal/documents/{doc.pk}/").status_code == 200


def test_staff_and_other_firms_get_nothing_from_the_portal_api(
    settings_fast, firm, ada_portfolio, owner, client_for, outsider, other_firm
):
    assert client_for(owner).get(f"/api/v1/portal/portfolios/{ada_portfolio.pk}/").status_code == 404
    assert client_for(owner).get("/api/v1/portal/overview/").status_code == 404
    outsider_c = client_for(outsider, other_firm)
    assert outsider_c.get(f"/api/v1/portal/portfolios/{ada_portfolio.pk}/").status_code == 404


# --- the vault ----------------------------------------------------------------------------------------------
def test_upload_share_and_signed_download_audited(settings_fast, firm, advisor, ada, ada_user, client_for, vault_dir):
    staff = client_for(advisor)
    response = staff.post(
        f"/client-portal/clients/{ada.pk}/",
        {
            "action": "upload",
            "title": "Q3 statement",
            "kind": "statement",
            "visibility": "internal",
            "file": SimpleUploadedFile("q3.pdf", PDF, "application/pdf"),
        },
    )
    assert response.status_code == 302, response.content[:500]
    document = Document.objects.get(title="Q3 statement")
    client = client_for(ada_user)
    assert client.get(f"/api/v1/portal/documents/{document.pk}/").status_code == 404  # internal
    staff.post(f"/client-portal/documents/{document.pk}/visibility/", {"visibility": "shared"})
    detail = client.get(f"/api/v1/portal/documents/{document.pk}/").json()
    download = client.get(detail["download_url"])
    assert download.status_code == 200 and b"".join(download.streaming_content) == PDF
    assert download["Cache-Control"] == "private, no-store"
    assert _audit("portal.document_viewed")[0]["target"] == f"document:{document.pk}"
    assert _audit("portal.document_downloaded")[0]["actor"] == ada_user.email
    # a tampered link, another user's link, an expired one: 404, nothing leaked, audited
    tampered = detail["download_url"].rstrip("/")[:-3] + "abc/"
    assert client.get(tampered).status_code == 404
    assert client_for(User.objects.get(email="advisor2@acme.test")).get(detail["download_url"]).status_code == 404
    settings_fast.CODEX_DOWNLOAD_LINK_MAX_AGE = -1
    expired = client.get(detail["download_url"])
    # the title, not "Q3" alone: a random CSP nonce or CSRF token on the page may hold those two characters
    assert expired.status_code == 404 and b"Q3 statement" not in expired.content
    reasons = [e["details"]["reason"] for e in _audit("portal.download_refused")[:3]]
    assert {"tampered or forged link", "link of another user or firm", "expired link"} <= set(reasons)
    # made internal again: the old link stops working
    settings_fast.CODEX_DOWNLOAD_LINK_MAX_AGE = 300
    staff.post(f"/client-portal/documents/{document.pk}/visibility/", {"visibility": "internal"})
    assert client.get(detail["download_url"]).status_code == 404


def test_a_forged_link_for_another_clients_document_is_refused(
    settings_fast, firm, advisor2, bob, ada_user, client_for
):
    doc = services.document_upload(
        actor=advisor2,
        tenant=firm,
        upload=SimpleUploadedFile("b.pdf", PDF, "application/pdf"),
        title="Bob only",
        contact=bob,
        visibility="shared",
    )
    token = services.download_token(document=doc, user=ada_user)  # even a validly signed one
    assert client_for(ada_user).get(f"/portal/files/{token}/").status_code == 404
    assert _audit("portal.download_refused")[0]["details"]["reason"] == "document not accessible to this user"


@pytest.mark.parametrize(
    "upload, message",
    [
        (SimpleUploadedFile("big.pdf", PDF + b"0" * 2048, "application/pdf"), "at most"),
        (SimpleUploadedFile("fake.pdf", b"MZ\x90\x00 not a pdf", "application/pdf"), "content is not PDF"),
        (SimpleUploadedFile("virus.exe", b"MZ", "application/octet-stream"), "PDF, CSV or PNG"),
        (SimpleUploadedFile("doc.pdf", PDF, "text/html"), "was expected"),
    ],
)
def test_bad_uploads_are_refused_audited_and_leave_nothing(
    settings_fast, firm, advisor, ada, vault_dir, upload, message
):
    from django.core.exceptions import ValidationError

    settings_fast.CODEX_VAULT_MAX_BYTES = 1024 * 1024 if "big" not in upload.name else 1024
    with pytest.raises(ValidationError) as exc:
        services.document_upload(actor=advisor, tenant=firm, upload=upload, title="x", contact=ada)
    assert message in str(exc.value.message_dict["file"])
    assert not Document.objects.exists() or not Document.objects.filter(title="x").exists()
    assert not any(vault_dir.rglob("*.*"))
    assert _audit("portal.upload_refused")[0]["target"] == upload.name


def test_download_link_token_is_bound_to_the_firm(firm, ada_user, advisor, ada, vault_dir):
    doc = services.document_upload(
        actor=advisor,
        tenant=firm,
        upload=SimpleUploadedFile("s.pdf", PDF, "application/pdf"),
        title="S",
        contact=ada,
        visibility="shared",
    )
    token = services.download_token(document=doc, user=ada_user)
    assert signing.loads(token, salt=services.DOWNLOAD_SALT)["s"] == firm.schema_name


# --- posts ----------------------------------------------------------------------------------------------------
def test_posts_are_sanitised_and_reach_their_audience(settings_fast, firm, owner, advisor, ada, ada_user, client_for):
    ada.tags = ["growth"]
    ada.save()
    services.post_save(
        actor=owner,
        tenant=firm,
        title="Outlook",
        publish=True,
        body="# Q4\n\n**Calm** markets. <script>alert(1)</script> [x](javascript:alert(1))"
        " <img src=x onerror=alert(1)>",
    )
    services.post_save(
        actor=owner, tenant=firm, title="Income only", body="text", audience="tag", audience_tag="income", publish=True
    )
    services.post_save(actor=owner, tenant=firm, title="Draft", body="text")
    posts = client_for(ada_user).get("/api/v1/portal/posts/").json()["results"]
    assert [p["title"] for p in posts] == ["Outlook"]
    html = posts[0]["body_html"]
    assert "<strong>Calm</strong>" in html and "<script" not in html and "javascript:" not in html
    assert "onerror" not in html
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.post_save(actor=advisor, tenant=firm, title="t", body="b")
    assert Post.objects.count() == 3


@pytest.mark.parametrize("path", ["/api/v1/portal/documents/", "/api/v1/portal/posts/"])
def test_portal_lists_refuse_unknown_ordering(settings_fast, firm, ada_user, client_for, path):
    response = client_for(ada_user).get(f"{path}?ordering=not_a_field")
    assert response.status_code == 400 and "ordering" in response.json()["error"]["details"]


def test_transactions_refuse_unknown_ordering_and_bad_dates(settings_fast, firm, ada_portfolio, ada_user, client_for):
    base = f"/api/v1/portal/portfolios/{ada_portfolio.pk}/transactions/"
    c = client_for(ada_user)
    assert c.get(f"{base}?ordering=note").status_code == 400
    bad = c.get(f"{base}?start=31-12-2025")
    assert bad.status_code == 400 and "start" in bad.json()["error"]["details"]


def test_a_firm_that_requires_two_factor_requires_it_of_client_users(settings_fast, firm, ada_user, client_for):
    from tenants.models import Tenant

    with schema_context("public"):
        Tenant.objects.filter(pk=firm.pk).update(require_2fa=True)
    connection.set_tenant(firm)
    c = client_for(ada_user)
    page = c.get("/portal/")
    assert page.status_code == 302 and "/accounts/security/2fa/" in page["Location"]
    assert c.get("/api/v1/portal/overview/").status_code in (401, 403)
    # the set-up page itself is open to them (their only way in)
    assert c.get("/accounts/security/2fa/setup/").status_code == 200
