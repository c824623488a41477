"""seed_portfolios: waits for market data, then seeds deterministic, consistent ledgers once."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django_tenants.utils import schema_context

from portfolios.models import Holding, Portfolio, Transaction

pytestmark = pytest.mark.django_db


def run(command, **kwargs) -> str:
    out = io.StringIO()
    call_command(command, stdout=out, **kwargs)
    return out.getvalue()


def test_without_market_data_it_does_nothing_and_says_so(firm):
    assert "seed_market" in run("seed_portfolios")
    assert not Portfolio.objects.exists()


def test_seeds_both_demo_firms_once(firm, other_firm):
    run("seed_market")
    out = run("seed_portfolios")
    assert "acme: 3 portfolio(s) created" in out and "globex: 2 portfolio(s) created" in out
    p = Portfolio.objects.get(name="Lovelace growth")
    assert p.client.lifecycle == "client" and p.client.owner_id == p.advisor_id
    assert Transaction.objects.filter(portfolio=p).count() > 50
    assert Holding.objects.filter(portfolio=p).exists()
    with schema_context(other_firm.schema_name):
        assert set(Portfolio.objects.values_list("name", flat=True)) == {"Turing family trust", "Noether balanced"}
    count = Transaction.objects.count()
    assert "acme: 0 portfolio(s) created" in run("seed_portfolios")
    assert Transaction.objects.count() == count
