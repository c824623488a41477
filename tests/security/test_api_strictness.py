"""Invalid input is a 400 naming the field, never silently ignored (decision 0503).

Each refusal below was once accepted and answered as if the parameter were absent (or read some
other way); API fuzzing's ``negative_data_rejection`` check now holds the whole API to this. Each
refusal sits beside its positive control.
"""

from __future__ import annotations

import json

import pytest

from portfolios.alerts.api import PERCENT_PATTERN, THRESHOLD_PATTERN
from tests.crm.factories import ContactFactory
from tests.portfolios.factories import InstrumentFactory, PortfolioFactory, in_public

pytestmark = pytest.mark.django_db

API = "/api/v1"


def _refused(response, field: str) -> None:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["details"], error
    assert error["message"].startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("path", "field", "good"),
    [
        ("/firm/exposure/?date=", "date", "/firm/exposure/?date=2026-01-02"),
        ("/fx-rates/?start=", "start", "/fx-rates/?start=2026-01-02"),
        ("/fx-rates/?date=", "date", "/fx-rates/"),
        ("/alerts/events/?unread=null", "unread", "/alerts/events/?unread=true"),
        ("/alerts/events/?unread=yes", "unread", "/alerts/events/?unread=false"),
        ("/alerts/events/?rule=", "rule", "/alerts/events/"),
        ("/contacts/?company=", "company", "/contacts/?search="),
        ("/portfolios/?archived=", "archived", "/portfolios/?archived=false"),
        ("/instruments/?asset_class=", "asset_class", "/instruments/?asset_class=equity"),
        ("/instruments/?page=", "page", "/instruments/?page=1"),
        ("/search/?q=ada&limit=500", "limit", "/search/?q=ada&limit=100"),
        ("/search/?q=ada&limit=0", "limit", "/search/?q=ada&limit=1"),
        ("/search/?q=ada&limit=", "limit", "/search/?q=ada"),
        ("/search/", "q", "/search/?q="),
        ("/billing/plan-change/?plan=pro&interval=", "interval", None),
    ],
)
def test_typed_query_parameter_with_an_unreadable_value_is_refused_naming_it(owner_client, path, field, good):
    _refused(owner_client.get(API + path), field)
    if good is not None:
        assert owner_client.get(API + good).status_code == 200


def test_free_text_filters_still_accept_an_empty_value(owner_client):
    ContactFactory(first_name="Ada")
    assert owner_client.get(f"{API}/instruments/?symbol=").status_code == 200
    assert owner_client.get(f"{API}/contacts/?search=").json()["count"] == 1


def test_analytics_ranges_refuse_empty_dates(owner_client, owner):
    portfolio = PortfolioFactory(advisor=owner)
    for name in ("start", "end", "preset"):
        _refused(owner_client.get(f"{API}/portfolios/{portfolio.pk}/performance/?{name}="), name)
    _refused(owner_client.get(f"{API}/portfolios/{portfolio.pk}/realised-gains/?year="), "year")
    assert owner_client.get(f"{API}/portfolios/{portfolio.pk}/realised-gains/?year=2025").status_code == 200


def test_mark_read_refuses_ids_that_are_not_a_list_of_integers(owner_client):
    url = f"{API}/alerts/events/mark-read/"
    for body in ({"ids": None}, {"ids": "1,2"}, {"ids": [True]}, {"ids": [1, "2"]}, [1, 2]):
        _refused(owner_client.post(url, json.dumps(body), content_type="application/json"), "ids")
    assert owner_client.post(url, json.dumps({"ids": [1, 2]}), content_type="application/json").json() == {"marked": 0}
    # no body, or no ids: all of the caller's (documented: ids optional)
    assert owner_client.post(url, content_type="application/json").json() == {"marked": 0}
    assert owner_client.post(url, "{}", content_type="application/json").json() == {"marked": 0}


def test_api_bodies_are_json_only(owner_client):
    r = owner_client.post(f"{API}/contacts/", "first_name=Ada", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    r = owner_client.post(f"{API}/contacts/", json.dumps({"first_name": "Ada"}), content_type="application/json")
    assert r.status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "price_above", "threshold": "5"}, "instrument"),
        ({"kind": "price_above", "instrument": "INSTRUMENT", "threshold": "0"}, "threshold"),
        ({"kind": "price_above", "instrument": "INSTRUMENT", "threshold": " 5"}, "threshold"),
        ({"kind": "price_above", "instrument": "INSTRUMENT", "threshold": "5e2"}, "threshold"),
        ({"kind": "daily_move_pct", "instrument": "INSTRUMENT", "threshold": "100.5"}, "threshold"),
    ],
)
def test_alert_rule_threshold_and_target_follow_the_kind(owner_client, body, field):
    instrument = in_public(InstrumentFactory)
    body = {k: instrument.pk if v == "INSTRUMENT" else v for k, v in body.items()}
    url = f"{API}/alerts/rules/"
    _refused(owner_client.post(url, json.dumps(body), content_type="application/json"), field)
    good = {"kind": body["kind"], "instrument": instrument.pk, "threshold": "12.5"}
    assert owner_client.post(url, json.dumps(good), content_type="application/json").status_code == 201


@pytest.mark.parametrize(
    ("value", "price", "percent"),
    [
        ("1", True, True),
        ("0.5", True, True),
        (".5", True, True),
        ("100", True, True),
        ("100.000", True, True),
        ("100.5", True, False),
        ("99999999999999", True, False),
        ("100000000000000", False, False),
        ("1.123456", True, True),
        ("1.1234560", False, False),
        ("1.1234567", False, False),
        ("0.000001", True, True),
        ("0.0000001", False, False),
        ("007.5", True, True),
        ("1.", True, True),
        ("0", False, False),
        ("0.0", False, False),
        ("-1", False, False),
        ("", False, False),
    ],
)
def test_threshold_patterns_match_what_the_rule_accepts(firm, value, price, percent):
    """The schema's patterns against ``services._threshold`` and the model's own validation."""
    import re
    from decimal import Decimal

    from django.core.exceptions import ValidationError

    from portfolios.alerts.models import AlertRule, RuleKind
    from portfolios.alerts.services import _threshold

    instrument = in_public(InstrumentFactory)

    for kind, pattern, expected in (
        (RuleKind.PRICE_ABOVE, THRESHOLD_PATTERN, price),
        (RuleKind.DAILY_MOVE_PCT, PERCENT_PATTERN, percent),
    ):
        assert bool(re.fullmatch(pattern, value)) is expected, (kind, value)
        rule = AlertRule(kind=kind, instrument=instrument, threshold=Decimal(0))
        if expected:
            rule.threshold = _threshold(kind, value)
            rule.full_clean(exclude=["created_by", "portfolio"])
        else:
            with pytest.raises(ValidationError):
                rule.threshold = _threshold(kind, value)
                rule.full_clean(exclude=["created_by", "portfolio"])


def test_schema_says_what_the_api_accepts(owner_client):
    schema = owner_client.get(f"{API}/schema/?format=json").json()
    components = schema["components"]["schemas"]
    # a decimal with a lower bound of 0 has no minus sign; a URL is an http(s)/ftp(s) URL
    assert components["DealRequest"]["properties"]["amount"]["pattern"].startswith("^(?:")
    website = components["CompanyRequest"]["properties"]["website"]["oneOf"][0]
    assert website["pattern"].startswith("^(?:[hH][tT][tT][pP][sS]?|[fF][tT][pP][sS]?)://")
    # only JSON bodies, except the multipart uploads
    media = {
        media_type
        for item in schema["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict)
        for media_type in operation.get("requestBody", {}).get("content", {})
    }
    assert media == {"application/json", "multipart/form-data"}
    search = {p["name"]: p for p in schema["paths"]["/api/v1/search/"]["get"]["parameters"]}
    assert search["q"]["required"] is True
    assert search["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}
    mark_read = schema["paths"]["/api/v1/alerts/events/mark-read/"]["post"]
    assert not mark_read.get("requestBody", {}).get("required", False)
    assert components["PortfolioCreateSchemaRequest"]["required"] == ["advisor", "name"]


def test_session_csrf_is_checked_on_the_header_before_the_body_type(firm, owner):
    """JSON only does not weaken CSRF: a body of another type is refused as CSRF first (403),
    and with a good X-CSRFToken header it is refused as an unsupported type (415)."""
    from django.db import connection
    from django.middleware.csrf import _get_new_csrf_string

    from tests.conftest import FirmClient

    client = FirmClient(firm, enforce_csrf_checks=True)
    client.force_login(owner)
    connection.set_tenant(firm)
    url = f"{API}/contacts/"
    assert client.post(url, {"first_name": "Ada"}).status_code == 403  # multipart, no token
    r = client.post(url, json.dumps({"first_name": "Ada"}), content_type="application/json")
    assert r.status_code == 403
    token = _get_new_csrf_string()
    client.cookies["csrftoken"] = token
    r = client.post(url, {"first_name": "Ada"}, HTTP_X_CSRFTOKEN=token)
    assert r.status_code == 415
    r = client.post(url, json.dumps({"first_name": "Ada"}), content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert r.status_code == 201


def test_a_number_is_not_text(owner_client):
    url = f"{API}/companies/"
    for body, field in (({"name": 0}, "name"), ({"name": "Acme", "notes": 0}, "notes"), ({"name": True}, "name")):
        r = owner_client.post(url, json.dumps(body), content_type="application/json")
        _refused(r, field)
        assert r.json()["error"]["details"][field] == ["Not a valid string."]
    assert owner_client.post(url, json.dumps({"name": "0"}), content_type="application/json").status_code == 201


def test_duplicate_contact_address_is_a_conflict_naming_the_field(owner_client):
    url = f"{API}/contacts/"
    body = json.dumps({"first_name": "Ada", "email": "ada@example.com"})
    assert owner_client.post(url, body, content_type="application/json").status_code == 201
    r = owner_client.post(url, body, content_type="application/json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "name_taken"
    assert r.json()["error"]["details"] == {"email": ["Another contact already has this e-mail address."]}


def test_decimal_patterns_need_a_digit(owner_client):
    amount = owner_client.get(f"{API}/schema/?format=json").json()["components"]["schemas"]["DealRequest"]
    pattern = amount["properties"]["amount"]["pattern"]
    import re

    assert [bool(re.fullmatch(pattern, v)) for v in ("", ".", "-1", "1", "1.", ".5", "12.34")] == [
        False,
        False,
        False,
        True,
        True,
        True,
        True,
    ]
    r = owner_client.post(f"{API}/deals/", json.dumps({"title": "T", "amount": ""}), content_type="application/json")
    _refused(r, "amount")


def test_task_list_parameters_are_strict(owner_client):
    for query, field in (("mine=null", "mine"), ("mine=1", "mine"), ("due=", "due"), ("due=later", "due")):
        _refused(owner_client.get(f"{API}/tasks/?{query}"), field)
    assert owner_client.get(f"{API}/tasks/?mine=true&due=today").status_code == 200


def test_related_ids_must_be_a_list(owner_client):
    url = f"{API}/companies/"
    r = owner_client.post(url, json.dumps({"name": "Acme", "shared_with": {}}), content_type="application/json")
    _refused(r, "shared_with")
    r = owner_client.post(url, json.dumps({"name": "Acme", "shared_with": []}), content_type="application/json")
    assert r.status_code == 201


@pytest.mark.parametrize(
    ("website", "ok"),
    [
        ("https://engines.example.com/a?b=c#d", True),
        ("FTP://files.example.org:2121/x", True),
        ("", True),
        ("accounts:team", False),
        ("mailto:ada@example.com", False),
        ("https://example.com/[1", False),  # Django's check alone took it; no URI has it
        ("https://example.com/?a=%c&b", False),  # a % must start an escape
        ("https://example.com/?a=%2C", True),
        ("https://example.com/p#frag#more", False),  # one fragment
        ("https://example.com?q=1#top", True),
        ("https://localhost", False),
    ],
)
def test_website_is_an_http_or_ftp_url_as_the_schema_says(owner_client, website, ok):
    import re

    from codex.api.fields import HTTP_URL_PATTERN

    r = owner_client.post(
        f"{API}/companies/", json.dumps({"name": "Acme", "website": website}), content_type="application/json"
    )
    assert (r.status_code == 201) is ok, r.content
    if not ok:
        _refused(r, "website")
    assert bool(re.fullmatch(HTTP_URL_PATTERN, website)) is (ok and website != "")
