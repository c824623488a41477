"""Tables (sort, filter, paginate, empty states) and confirmation of destructive actions,
on the team and API-key pages."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from codex.tables import table_page
from tenants.accounts.models import Invitation, Role, User
from tenants.models import ApiKey

pytestmark = pytest.mark.django_db


def test_table_page_sorts_only_whitelisted_keys_and_recovers_from_bad_input(firm):
    qs = User.objects.all()
    sorts = {"email": "email", "role": "role"}
    req = RequestFactory().get("/", {"sort": "-email", "page": "1", "per_page": "10"})
    table = table_page(req, qs, sorts=sorts, default="email")
    emails = [u.email for u in table.rows]
    assert emails == sorted(emails, reverse=True) and table.sort == "-email" and table.per_page == 10
    bad = RequestFactory().get("/", {"sort": "password", "page": "999", "per_page": "7"})
    table = table_page(bad, qs, sorts=sorts, default="email")
    assert table.sort == "email" and table.per_page == 25 and table.page.number == table.page.paginator.num_pages
    junk = RequestFactory().get("/", {"page": "abc", "per_page": "x"})
    assert table_page(junk, qs, sorts=sorts, default="role").page.number == 1


def test_team_table_sorts_filters_and_keeps_the_filter_in_links(owner_client):
    html = owner_client.get("/accounts/team/?sort=-email").content.decode()
    assert html.index("viewer@acme.test") < html.index("admin@acme.test")
    assert 'aria-sort="descending"' in html
    html = owner_client.get("/accounts/team/?role=advisor&sort=email").content.decode()
    assert "advisor@acme.test" in html and "advisor2@acme.test" in html and "viewer@acme.test" not in html
    assert 'href="?role=advisor&amp;sort=-email"' in html
    html = owner_client.get("/accounts/team/?q=nobody-here").content.decode()
    assert "Nothing matches these filters." in html and "Clear the filters" in html


def test_team_page_query_count_does_not_grow_with_members(owner_client, firm):
    owner_client.get("/accounts/team/")
    with CaptureQueriesContext(connection) as few:
        owner_client.get("/accounts/team/")
    for i in range(30):
        User.objects.create_user(f"extra{i}@acme.test", None, role=Role.VIEWER)
        Invitation.objects.create(email=f"invited{i}@acme.test", role=Role.ADVISOR)
    with CaptureQueriesContext(connection) as many:
        html = owner_client.get("/accounts/team/").content.decode()
    assert len(many) == len(few)
    assert 'rel="next"' in html  # 35 members: two pages


def test_deactivating_a_member_needs_confirmation(owner_client, viewer):
    response = owner_client.post(f"/accounts/team/{viewer.pk}/deactivate/")
    assert response.status_code == 200
    assert b"Deactivate viewer@acme.test?" in response.content
    assert b'name="confirmed" value="yes"' in response.content
    viewer.refresh_from_db()
    assert viewer.is_active
    response = owner_client.post(f"/accounts/team/{viewer.pk}/deactivate/", {"confirmed": "yes"})
    assert response.status_code == 302
    viewer.refresh_from_db()
    assert not viewer.is_active


def test_withdrawing_an_invitation_needs_confirmation(owner_client, firm):
    invitation = Invitation.objects.create(email="maybe@acme.test", role=Role.ADVISOR)
    owner_client.post(f"/accounts/team/invitations/{invitation.pk}/revoke/")
    invitation.refresh_from_db()
    assert invitation.revoked_at is None
    owner_client.post(f"/accounts/team/invitations/{invitation.pk}/revoke/", {"confirmed": "yes"})
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None


def test_revoking_an_api_key_needs_confirmation_and_another_firm_cannot(
    owner_client, outsider_client, firm, api_key_for
):
    api_key_for(firm, "read")
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        key = ApiKey.objects.filter(tenant=firm).latest("created_at")
    page = owner_client.post(f"/accounts/api-keys/{key.pk}/revoke/")
    assert b"Revoke the API key" in page.content and b"Cancel" in page.content
    assert outsider_client.post(f"/accounts/api-keys/{key.pk}/revoke/", {"confirmed": "yes"}).status_code == 404
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        key.refresh_from_db()
    assert key.revoked_at is None
    response = owner_client.post(f"/accounts/api-keys/{key.pk}/revoke/", {"confirmed": "yes"}, follow=True)
    assert "revoked" in response.content.decode()
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        key.refresh_from_db()
    assert key.revoked_at is not None


def test_api_keys_page_empty_state_says_what_to_do(owner_client, firm):
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        ApiKey.objects.filter(tenant=firm).delete()
    html = owner_client.get("/accounts/api-keys/").content.decode()
    assert "No API keys yet." in html and "Create one below" in html


def test_confirmation_page_cancel_link_stays_on_site(rf):
    from django.contrib.auth.models import AnonymousUser

    from codex.confirm import confirmation_required

    request = rf.post("/x/", {"reason": "because"}, HTTP_HOST="acme.localhost")
    request.user = AnonymousUser()
    response = confirmation_required(
        request, title="Delete?", message="Sure?", label="Delete", cancel_url="https://evil.example/"
    )
    html = response.content.decode()
    assert 'href="/"' in html and "evil" not in html
    assert 'name="reason" value="because"' in html
