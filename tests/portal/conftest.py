from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from portal.models import ClientAccess
from portfolios import services as portfolio_services
from tenants.accounts.models import Role, User
from tests.conftest import PASSWORD
from tests.portfolios.factories import ContactFactory, InstrumentFactory, PortfolioFactory, daily_prices


@pytest.fixture
def settings_fast(settings):
    settings.CODEX_FORM_RATES = dict.fromkeys(settings.CODEX_FORM_RATES, "100000/min")
    return settings


def make_client_user(contact, email: str) -> User:
    user = User.objects.create_user(email, PASSWORD, role=Role.CLIENT, first_name=contact.first_name)
    ClientAccess.objects.create(user=user, contact=contact)
    return user


@pytest.fixture
def ada(firm, advisor):
    return ContactFactory(
        owner=advisor, first_name="Ada", last_name="Lovelace", email="ada@client.test", lifecycle="client"
    )


@pytest.fixture
def bob(firm, advisor2):
    return ContactFactory(
        owner=advisor2, first_name="Bob", last_name="Other", email="bob@client.test", lifecycle="client"
    )


@pytest.fixture
def ada_portfolio(firm, advisor, ada, vault_dir):
    """A priced portfolio: a deposit and a buy 40 days ago, daily closes since."""
    today = timezone.localdate()
    start = today - timedelta(days=40)
    instrument = InstrumentFactory(symbol="PORTX", name="Portal Test Corp", currency="USD", sector="Technology")
    daily_prices(instrument, start, [Decimal("100") + i for i in range(41)])
    portfolio = PortfolioFactory(name="Ada growth", advisor=advisor, client=ada, base_currency="USD")
    portfolio_services.transaction_record(
        portfolio=portfolio, created_by=advisor, kind="deposit", trade_date=start, amount="10000"
    )
    portfolio_services.transaction_record(
        portfolio=portfolio,
        created_by=advisor,
        kind="buy",
        trade_date=start,
        instrument=instrument.pk,
        quantity="10",
        price="100",
        fees="5",
    )
    return portfolio


@pytest.fixture
def bob_portfolio(firm, advisor2, bob):
    portfolio = PortfolioFactory(name="Bob income", advisor=advisor2, client=bob, base_currency="USD")
    portfolio_services.transaction_record(
        portfolio=portfolio, created_by=advisor2, kind="deposit", trade_date=date(2025, 1, 2), amount="500"
    )
    return portfolio


@pytest.fixture
def ada_user(ada):
    return make_client_user(ada, "ada.user@client.test")


@pytest.fixture
def bob_user(bob):
    return make_client_user(bob, "bob.user@client.test")


@pytest.fixture
def vault_dir(tmp_path, monkeypatch):
    """The vault's files in the test's own directory (the field's storage, for this test only)."""
    from django.core.files.storage import FileSystemStorage

    from portal.models import Document

    monkeypatch.setattr(Document._meta.get_field("file"), "storage", FileSystemStorage(location=str(tmp_path)))
    return tmp_path
