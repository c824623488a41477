"""Small things that break trust (issue #25): the browser tab's icon, and no link in the sidebar to a
page the person may not open."""

from __future__ import annotations

from django.contrib.staticfiles import finders


def test_every_page_names_a_favicon_that_exists(owner_client):
    html = owner_client.get("/").content.decode()
    assert '<link rel="icon" href="/static/favicon' in html and 'type="image/svg+xml"' in html
    assert finders.find("favicon.svg")


def test_advisor_sees_no_newsletter_link_they_may_not_open(advisor_client):
    html = advisor_client.get("/crm/contacts/").content.decode()
    assert "/crm/newsletter/" not in html
    assert advisor_client.get("/crm/newsletter/").status_code == 403


def test_owner_and_viewer_see_the_newsletter_link(owner_client, viewer_client):
    for client in (owner_client, viewer_client):
        html = client.get("/crm/contacts/").content.decode()
        assert 'href="/crm/newsletter/"' in html
        assert client.get("/crm/newsletter/").status_code == 200


def test_favicon_ico_answers_on_firm_and_public_hosts_for_pages_that_link_no_icon(anon_client, public_client):
    """The console (Django's admin) and the portal do not extend base.html; browsers then ask for
    /favicon.ico, which must not be a 404."""
    icon = finders.find("favicon.svg")
    for client, host in ((anon_client, None), (public_client, "localhost")):
        response = client.get("/favicon.ico", **({"HTTP_HOST": host} if host else {}))
        assert response.status_code == 200, host
        assert response["Content-Type"] == "image/svg+xml"
        assert response.content == open(icon, "rb").read()  # noqa: PTH123, SIM115


def test_the_portal_page_names_the_icon():
    from pathlib import Path

    from django.conf import settings

    index = (Path(settings.BASE_DIR) / "frontend" / "index.html").read_text()
    assert '<link rel="icon" href="/favicon.ico"' in index
