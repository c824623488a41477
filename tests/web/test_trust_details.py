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
