"""Lets benchmarks written as pytest functions (``bench/portfolio_list_client.py``) use the test
suite's firms, users and clients: run by hand, never in CI."""

from tests.conftest import *  # noqa: F403
