"""Every page of a firm formats through the one layer: no raw fraction for a return, no unformatted
Decimal, money with its currency (issue 25, point 1; docs/decisions/1050)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from crm.models import Contact, Deal
from portfolios.models import Portfolio
from tests.web.test_dashboard import build_book

pytestmark = pytest.mark.django_db

# A return cell: "+6.48 %", "−1.20 %", "0.00 %" (or "—" when there is none).
RETURN = re.compile(r"^(?:[+\u2212]?\d{1,3}(?:[,.\u00a0\u202f]\d{3})*(?:[.,]\d{1,2})?\u00a0%|—)$")
# What the layer never writes: a Decimal's raw digits (150.0000, 0.105444) or a hyphen-minus on a return.
RAW_DECIMAL = re.compile(r"(?<![\w.,/:-])\d+\.\d{4,}(?![\w])")
RAW_FRACTION = re.compile(r"(?<![\w.,/:$€£¥+\u2212-])-?0\.\d{3,}(?![\w])")
SKIP_PREFIXES = ("/api/", "/admin/", "/accounts/logout", "/static/", "/media/", "/health", "/metrics", "/__")
KNOWN_PAGES = {"/", "/crm/contacts/", "/crm/deals/", "/crm/companies/", "/portfolios/", "/portfolios/exposure/"}


def _static_paths(patterns, prefix: str = "") -> list[str]:
    """Every route of the firm's URLconf that takes no argument."""
    paths: list[str] = []
    for p in patterns:
        route = str(p.pattern)
        if "<" in route or "(?P" in route or route.startswith("^"):
            continue
        if isinstance(p, URLResolver):
            paths.extend(_static_paths(p.url_patterns, prefix + route))
        elif isinstance(p, URLPattern):
            paths.append("/" + prefix + route)
    return sorted({p for p in paths if not p.startswith(SKIP_PREFIXES)})


def _visible_text(html: str) -> str:
    html = re.sub(r"<(script|style|svg|code|pre)\b.*?</\1>", " ", html, flags=re.S | re.I)
    html = re.sub(r"<input\b[^>]*>", " ", html, flags=re.I)
    return re.sub(r"<[^>]+>", " ", html)


def _returns(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", m).strip() for m in re.findall(r'data-format="return"[^>]*>(.*?)</', html, re.S)]


def _check(path: str, html: str) -> list[str]:
    problems = []
    for cell in _returns(html):
        if not RETURN.match(cell):
            problems.append(f"{path}: return shown as {cell!r}")
    text = _visible_text(html)
    found = {m.span(): m.group(0) for pattern in (RAW_DECIMAL, RAW_FRACTION) for m in pattern.finditer(text)}
    for (start, end), number in sorted(found.items()):
        problems.append(f"{path}: unformatted number {number!r} in …{text[max(0, start - 40) : end + 20]!r}")
    return problems


@pytest.fixture
def book(owner, advisor, firm):
    today = timezone.localdate()
    build_book(advisor=advisor, count=2, today=today, tag="fmt")
    return today


def test_every_page_formats_money_returns_and_numbers(owner_client, book, firm):
    portfolio = Portfolio.objects.order_by("pk").first()
    contact = Contact.objects.filter(portfolios__isnull=False).order_by("pk").first()
    deal = Deal.objects.order_by("pk").first()
    static = _static_paths(get_resolver().url_patterns)
    details = [
        f"/portfolios/{portfolio.pk}/",
        f"/crm/contacts/{contact.pk}/",
        f"/crm/deals/{deal.pk}/",
        f"/portfolios/instruments/{portfolio.holdings.first().instrument_id}/",
    ]
    rendered, problems = [], []
    for path in static + details:
        response = owner_client.get(path)
        if response.status_code != 200 or not response["Content-Type"].startswith("text/html"):
            continue
        rendered.append(path)
        problems.extend(_check(path, response.content.decode()))
    assert set(rendered) >= KNOWN_PAGES, sorted(KNOWN_PAGES - set(rendered))
    assert set(details) <= set(rendered)
    assert not problems, "\n".join(problems)
    # The pages above really show returns through the layer (so the check had something to check).
    html = owner_client.get(f"/crm/contacts/{contact.pk}/").content.decode()
    assert _returns(html) and all(RETURN.match(r) for r in _returns(html))


def test_the_check_catches_raw_fractions_and_decimals():
    bad = '<td><span data-format="return">0.1054</span></td><td>150.0000</td><p>TWR 0.10544</p>'
    problems = _check("/x/", bad)
    assert len(problems) == 4, problems  # the return cell, 150.0000, 0.1054 and 0.10544 in the text
    good = '<td><span class="ret gain" data-format="return">+6.48\u00a0%</span></td><td>$150.00</td>'
    assert _check("/x/", good) == []


def test_dates_follow_the_users_preference_on_pages(advisor_client, advisor, book):
    advisor.date_format = "iso"
    advisor.save(update_fields=["date_format"])
    html = advisor_client.get("/crm/tasks/").content.decode()
    assert book.isoformat() in _visible_text(html)
    advisor.date_format, advisor.locale = "", "en_GB"
    advisor.save(update_fields=["date_format", "locale"])
    html = advisor_client.get("/crm/tasks/").content.decode()
    assert f"{book.day} {book:%b} {book.year}" in html and book.isoformat() not in _visible_text(html)


def test_money_on_the_portfolio_page_carries_its_currency(owner_client, book):
    portfolio = Portfolio.objects.order_by("pk").first()
    html = owner_client.get(f"/portfolios/{portfolio.pk}/").content.decode()
    assert "$" in html and f"{Decimal(0):.2f} USD" not in html
    assert not re.search(r"\d USD\b", _visible_text(html))
