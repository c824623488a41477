"""Per-request work: what every request costs in queries and cache round trips (docs/benchmarks.md).

- tenant resolution makes no query once the host is cached;
- API-key authentication makes at most one query, none once the key is cached;
- the two-level cache (tenants.cache) answers warm lookups from process memory, and a change made
  in one process is seen there at once and in every other process within the check interval.
"""

from __future__ import annotations

import pytest
import redis
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from tenants.cache import MISS, TwoLevelCache, tenant_cache
from tenants.exceptions import InvalidApiKey
from tenants.models import ApiKey, Tenant
from tenants.selectors import api_key_resolve, tenant_for_host
from tenants.services import api_key_revoke, tenant_reactivate, tenant_suspend
from tests.conftest import FirmClient, redis_url_in_block

HOST = "acme.localhost"


@pytest.fixture(autouse=True)
def _fresh_local_cache():
    tenant_cache.clear_local()
    yield
    tenant_cache.clear_local()


@pytest.fixture
def forced_local(settings):
    """Level 1 on, as in production with Redis (level 2 here is process memory)."""
    settings.CODEX_TENANT_LOCAL_CACHE = True
    settings.CODEX_TENANT_CACHE_CHECK_SECONDS = 3600  # no generation reads unless a test asks
    tenant_cache.clear_local()
    return settings


class CountingCache:
    """Wraps the level-2 cache and counts reads, as round trips to Redis would be counted."""

    def __init__(self, monkeypatch):
        self.reads = 0
        real = caches["tenants"]
        original_get = real.get

        def get(key, default=None, version=None):
            self.reads += 1
            return original_get(key, default, version)

        monkeypatch.setattr(real, "get", get)


# --- tenant resolution ----------------------------------------------------------------------------
def statements(ctx) -> list[str]:
    """The queries proper: ``SET search_path`` is the schema switch django-tenants makes when the
    connection was in another schema, counted apart (the benchmark's request path makes it anyway)."""
    return [q["sql"] for q in ctx.captured_queries if not q["sql"].startswith("SET search_path")]


def test_host_lookup_makes_one_query_cold_and_none_warm(firm, django_assert_num_queries):
    with CaptureQueriesContext(connection) as cold:
        assert tenant_for_host(HOST).pk == firm.pk
    assert len(statements(cold)) == 1
    with django_assert_num_queries(0):
        assert tenant_for_host(HOST).pk == firm.pk


def test_firm_request_makes_no_query_once_the_host_is_cached(firm, django_assert_num_queries):
    client = FirmClient(firm)
    assert client.get("/health").status_code == 200
    with django_assert_num_queries(0):
        assert client.get("/health").status_code == 200


def test_unknown_hosts_cost_one_query_and_no_cache_entry(db):
    """Anyone can send any Host header: an unknown one is answered 404 after one query on the
    unique index of ``lower(domain)`` and leaves nothing in the cache, so 10,000 random hosts leave
    Redis's key count as it was (an entry per host would let anyone fill the cache)."""
    import random
    import string

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    connection.set_schema_to_public()
    client = Client()
    rng = random.Random(20)

    def random_host() -> str:
        return "".join(rng.choices(string.ascii_lowercase + string.digits, k=12)) + ".localhost"

    client.get("/", HTTP_HOST=random_host())  # warm: the generation token and middleware state
    keys_before = _redis_key_count()
    for _ in range(10_000):
        assert client.get("/", HTTP_HOST=random_host()).status_code == 404
    assert _redis_key_count() == keys_before
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/", HTTP_HOST=random_host()).status_code == 404
    # one query (beside the SET search_path django-tenants sends when a request starts in public)
    reads = [q["sql"] for q in ctx.captured_queries if not q["sql"].startswith("SET search_path")]
    assert len(reads) == 1 and 'FROM "tenants_domain"' in reads[0] and "LOWER(" in reads[0], reads


def _redis_key_count() -> int:
    """Keys in the tests' Redis database (the default and ``tenants`` caches share it)."""
    from django.conf import settings as django_settings

    client = redis.Redis.from_url(django_settings.REDIS_URL)
    try:
        return client.dbsize()
    finally:
        client.close()


def test_warm_lookup_skips_the_shared_cache(firm, forced_local, monkeypatch, django_assert_num_queries):
    tenant_for_host(HOST)
    counting = CountingCache(monkeypatch)
    with django_assert_num_queries(0):
        for _ in range(5):
            assert tenant_for_host(HOST).pk == firm.pk
    assert counting.reads == 0


def test_generation_is_read_at_most_once_per_interval(firm, forced_local, monkeypatch):
    forced_local.CODEX_TENANT_CACHE_CHECK_SECONDS = 0
    tenant_for_host(HOST)
    counting = CountingCache(monkeypatch)
    tenant_for_host(HOST)
    assert counting.reads == 1  # the generation token only; the firm came from process memory


def test_cached_firm_is_a_copy_per_request(firm, forced_local):
    first = tenant_for_host(HOST)
    first.name = "changed by a request that never saved"
    first._state.fields_cache["x"] = "y"
    second = tenant_for_host(HOST)
    assert second.name != "changed by a request that never saved"
    assert "x" not in second._state.fields_cache
    assert second == first and second is not first


def test_cached_api_key_is_a_copy_with_its_own_firm(firm, api_key_for, forced_local):
    raw = api_key_for(firm, "read")
    first = api_key_resolve(raw)
    first.tenant.name = "changed by a request"
    first.scope = "admin"
    second = api_key_resolve(raw)
    assert (second.tenant.name, second.scope) == (firm.name, "read")
    assert second.tenant is not first.tenant


def test_cached_values_share_no_list_or_dict(firm, forced_local):
    cache = TwoLevelCache()
    stored = Tenant.objects.get(pk=firm.pk)
    stored.tags = ["a"]  # stands for a list or JSON field
    cache.set("firm:x", stored, 60)
    stored.tags.append("changed after set")
    first = cache.get("firm:x")
    first.tags.append("changed by a request")
    assert cache.get("firm:x").tags == ["a"]


def test_suspension_is_seen_at_once_in_this_process(firm, forced_local):
    client = FirmClient(firm)
    assert client.get("/api/v1/portfolios/").status_code in {401, 403}  # warm the host: not suspended yet
    tenant_suspend(tenant=firm, actor="test", reason="unpaid")
    try:
        response = client.get("/api/v1/portfolios/")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "tenant_suspended"
    finally:
        tenant_reactivate(tenant=firm, actor="test")


def test_other_processes_see_a_change_within_the_check_interval(settings):
    """Two caches over one level 2 stand for two gunicorn workers sharing Redis."""
    settings.CODEX_TENANT_LOCAL_CACHE = True
    worker_a, worker_b = TwoLevelCache(), TwoLevelCache()
    worker_b.set("host:x", "old firm", 300)
    settings.CODEX_TENANT_CACHE_CHECK_SECONDS = 3600
    assert worker_b.get("host:x") == "old firm"  # token read once here, then remembered
    worker_a.delete_many(["host:x"])
    assert worker_a.get("host:x") is MISS  # the process that made the change: at once
    assert worker_b.get("host:x") == "old firm"  # another process: stale until its next check...
    settings.CODEX_TENANT_CACHE_CHECK_SECONDS = 0
    assert worker_b.get("host:x") is MISS  # ...which sees the new generation and drops it


# --- API keys -------------------------------------------------------------------------------------
def test_api_key_resolution_makes_at_most_one_query_and_none_when_cached(firm, api_key_for, django_assert_num_queries):
    raw = api_key_for(firm, "read")
    caches["tenants"].clear()
    with CaptureQueriesContext(connection) as cold:
        assert api_key_resolve(raw).tenant_id == firm.pk
    assert len(statements(cold)) == 1
    with django_assert_num_queries(0):
        assert api_key_resolve(raw).tenant_id == firm.pk


def test_cached_key_with_a_wrong_secret_is_refused(firm, api_key_for):
    raw = api_key_for(firm, "read")
    api_key_resolve(raw)
    with pytest.raises(InvalidApiKey):
        api_key_resolve(raw[:-4] + "AAAA")


def test_revoked_key_is_refused_at_once_even_when_cached(firm, forced_local, api_key_for):
    raw = api_key_for(firm, "read")
    key = api_key_resolve(raw)
    api_key_revoke(key=key, actor="test")
    with pytest.raises(InvalidApiKey, match="revoked"):
        api_key_resolve(raw)


def test_api_request_writes_last_used_at_most_once_a_minute(firm, forced_local, api_key_for):
    raw = api_key_for(firm, "read")
    client = FirmClient(firm)
    with CaptureQueriesContext(connection) as ctx:
        for _ in range(3):
            assert client.get("/api/v1/portfolios/", HTTP_X_API_KEY=raw).status_code == 200
    updates = [q for q in ctx.captured_queries if 'UPDATE "tenants_apikey"' in q["sql"]]
    assert len(updates) == 1
    with schema_context("public"):
        assert ApiKey.objects.get(prefix=raw.split("_")[1]).last_used_at is not None


# --- API throttle on Redis --------------------------------------------------------------------------
def _redis_url() -> str:
    """The tests' Redis (the embedded server's test database unless REDIS_URL is set)."""
    from django.conf import settings as django_settings

    return django_settings.REDIS_URL


@pytest.fixture
def redis_default_cache(settings):
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "LOCATION": _redis_url(), "KEY_PREFIX": "codex-perf-tests"},
    }
    caches["default"].clear()
    yield caches["default"]
    caches["default"].clear()


def test_throttle_on_redis_is_a_counter_and_still_says_429(firm, api_key_for, redis_default_cache, settings):
    from rest_framework.settings import api_settings

    from codex.api.throttles import PrincipalRateThrottle

    settings.CODEX_PLAN_RATE_MULTIPLIERS = {}
    raw = api_key_for(firm, "read")
    client = FirmClient(firm)
    old = PrincipalRateThrottle.THROTTLE_RATES
    PrincipalRateThrottle.THROTTLE_RATES = {**api_settings.DEFAULT_THROTTLE_RATES, "principal": "3/min"}
    try:
        codes = [client.get("/api/v1/portfolios/", HTTP_X_API_KEY=raw).status_code for _ in range(4)]
        last = client.get("/api/v1/portfolios/", HTTP_X_API_KEY=raw)
    finally:
        PrincipalRateThrottle.THROTTLE_RATES = old
    assert codes == [200, 200, 200, 429]
    assert last.status_code == 429
    assert 1 <= int(last["Retry-After"]) <= 61
    assert last.json()["error"]["code"] == "throttled"
    client_redis = redis_default_cache._cache.get_client()
    keys = [k.decode() for k in client_redis.keys("*codex-perf-tests*throttle:principal:key:*")]
    assert len(keys) == 1
    assert int(client_redis.get(keys[0])) == 5  # one integer per window, not a list of times


@pytest.fixture
def metering_on_same_redis(redis_default_cache, settings):
    """Metering on the default cache's Redis database, as in production (one ``REDIS_URL``)."""
    import redis

    from billing import metering

    url = _redis_url()
    settings.REDIS_URL = url
    client = redis.Redis.from_url(url)
    metering.reset_local_state()
    metering.set_redis_client(client)
    yield client
    metering.set_redis_client(None)
    metering.reset_local_state()


class RoundTrips:
    """Counts what redis-py sends to the server: a pipeline is one send, as it is one round trip."""

    def __init__(self, monkeypatch):
        import redis.connection

        self.sends = 0
        original = redis.connection.AbstractConnection.send_packed_command

        def send(conn, command, check_health=True):
            self.sends += 1
            return original(conn, command, check_health)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", send)


def test_api_request_costs_the_throttle_and_the_meter_three_round_trips(
    firm, api_key_for, metering_on_same_redis, monkeypatch
):
    """Per API request with Redis: the throttle's counter (the cache's ``incr``: EXISTS, INCR) and
    the meter's INCRBY, each through its own stock client; every call counted once."""
    from billing import metering

    raw = api_key_for(firm, "read")
    client = FirmClient(firm)
    meter_key = f"{metering.KEY_PREFIX}{firm.pk}:{metering._today():%Y%m%d}"
    metering_on_same_redis.delete(meter_key)
    assert client.get("/api/v1/portfolios/", HTTP_X_API_KEY=raw).status_code == 200  # plan flags read once
    trips = RoundTrips(monkeypatch)
    for _ in range(3):
        assert client.get("/api/v1/portfolios/", HTTP_X_API_KEY=raw).status_code == 200
    assert trips.sends == 3 * 3
    assert int(metering_on_same_redis.get(meter_key)) == 4  # every call counted once
    assert metering.usage_flush(refresh_limits=False) == 4
    assert metering_on_same_redis.get(meter_key) is None


def test_meter_on_another_redis_is_counted_by_the_middleware(firm, api_key_for, redis_default_cache, settings):
    """Metering on another Redis database than the throttle's: each call counted once, there."""
    import redis

    from billing import metering

    other = redis_url_in_block(1)
    settings.REDIS_URL = other
    meter = redis.Redis.from_url(other)
    metering.reset_local_state()
    metering.set_redis_client(meter)
    try:
        raw = api_key_for(firm, "read")
        meter_key = f"{metering.KEY_PREFIX}{firm.pk}:{metering._today():%Y%m%d}"
        meter.delete(meter_key)
        for _ in range(2):
            assert FirmClient(firm).get("/api/v1/portfolios/", HTTP_X_API_KEY=raw).status_code == 200
        assert int(meter.get(meter_key)) == 2
        assert redis_default_cache._cache.get_client().get(meter_key) is None  # not on the throttle's db
        meter.delete(meter_key)
    finally:
        metering.set_redis_client(None)
        metering.reset_local_state()


# --- query counts of the benchmarked endpoints (the production cache: Redis) ---------------------
@pytest.fixture
def production_cache():
    """The default cache as in production (Redis), emptied: throttling and metering cost no query."""
    caches["default"].clear()
    yield
    caches["default"].clear()


def _warm_count(client, url, **headers) -> int:
    client.get(url, **headers)  # first request: host, key, session, throttle and summary caches
    client.get(url, **headers)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url, **headers).status_code == 200
    return len(statements(ctx))


@pytest.fixture
def priced_book(firm, advisor):
    from datetime import date, timedelta

    from portfolios import services
    from tests.portfolios.factories import ContactFactory, InstrumentFactory, PortfolioFactory, daily_prices

    today = date(2025, 1, 10)
    instrument = InstrumentFactory(symbol="QCNT")
    daily_prices(instrument, today - timedelta(days=9), [str(100 + i) for i in range(10)])

    def add(count: int) -> list:
        out = []
        for _ in range(count):
            p = PortfolioFactory(advisor=advisor, client=ContactFactory(owner=advisor))
            p.shared_with.add(advisor)
            for kind, extra in (
                ("deposit", {"amount": "10000"}),
                ("buy", {"instrument": instrument, "quantity": "10", "price": "100"}),
            ):
                services.transaction_record(
                    portfolio=p,
                    created_by=advisor,
                    today=today,
                    kind=kind,
                    trade_date=today - timedelta(days=9),
                    currency="USD",
                    **extra,
                )
            out.append(p)
        return out

    return add


def test_portfolio_list_by_api_key_costs_two_queries(firm, production_cache, api_key_for, priced_book):
    raw = api_key_for(firm, "read")
    client = FirmClient(firm)
    priced_book(2)
    few = _warm_count(client, "/api/v1/portfolios/", HTTP_X_API_KEY=raw)
    priced_book(8)
    # DRF's pagination: the total (COUNT), then the page with client, advisor and benchmark joined
    # and the shared-with ids as an array in the same query.
    assert _warm_count(client, "/api/v1/portfolios/", HTTP_X_API_KEY=raw) == few == 2


def test_contact_search_by_api_key_query_count_is_pinned(firm, production_cache, api_key_for, advisor):
    from tests.crm.factories import ContactFactory

    raw = api_key_for(firm, "read")
    client = FirmClient(firm)
    ContactFactory(first_name="Grace", last_name="Hopper", owner=advisor)
    url = "/api/v1/contacts/?search=hopper"
    few = _warm_count(client, url, HTTP_X_API_KEY=raw)
    for n in range(10):
        ContactFactory(first_name=f"Grace{n}", last_name="Hopper", owner=advisor)
    assert _warm_count(client, url, HTTP_X_API_KEY=raw) == few == 3  # COUNT, page, shared_with


def test_performance_by_api_key_query_count_is_pinned(firm, production_cache, api_key_for, priced_book):
    raw = api_key_for(firm, "read")
    client = FirmClient(firm)
    portfolio = priced_book(1)[0]
    url = f"/api/v1/portfolios/{portfolio.pk}/performance/?end=2025-01-10"
    # portfolio, its valuation state and first ledger day, the range's stored days, their sums
    # (the ledger and the closes are not read: docs/analytics.md, "Stored valuations")
    assert _warm_count(client, url, HTTP_X_API_KEY=raw) == 4


def test_dashboard_query_count_is_pinned(firm, production_cache, client_for, owner, priced_book):
    client = client_for(owner)
    priced_book(2)
    few = _warm_count(client, "/")
    priced_book(6)
    assert _warm_count(client, "/") == few == 17  # 15 + the open reconciliation breaks count + the bell's unread count


# --- host parsing of the routing middleware ----------------------------------------------------------
@pytest.mark.parametrize(
    "raw", ["Acme.Localhost", "acme.localhost:8000", "acme.localhost.", "[::1]:80", "bad host!", "a" * 300]
)
def test_remembered_host_is_the_domain_django_would_give(raw, rf, settings):
    from django.http.request import split_domain_port

    from tenants import middleware

    settings.USE_X_FORWARDED_HOST = False
    middleware._DOMAINS.clear()
    request = rf.get("/", HTTP_HOST=raw)
    expected = split_domain_port(raw)[0].lower()
    assert middleware._request_host(request) == expected
    assert middleware._request_host(request) == expected  # from memory
    assert middleware._DOMAINS[raw] == expected


def test_remembered_hosts_are_bounded(rf, settings, monkeypatch):
    from tenants import middleware

    settings.USE_X_FORWARDED_HOST = False
    monkeypatch.setattr(middleware, "_DOMAINS_MAX", 3)
    middleware._DOMAINS.clear()
    for n in range(10):
        assert middleware._request_host(rf.get("/", HTTP_HOST=f"h{n}.example")) == f"h{n}.example"
        assert len(middleware._DOMAINS) <= 3


def test_cached_firm_copy_keeps_its_model_state(firm, forced_local):
    first = tenant_for_host(HOST)
    second = tenant_for_host(HOST)
    assert second._state is not first._state
    assert (second._state.db, second._state.adding) == (first._state.db, first._state.adding) == ("default", False)
    assert "peers" not in second._state.__dict__


def test_a_copy_from_the_local_level_equals_the_original_and_shares_nothing_mutable(firm, api_key_for, forced_local):
    """The local level keeps a model instance as the values ``Model.from_db`` takes (tenants/cache.py)
    and builds a new instance per read: field for field the original, with its loaded firm, sharing
    nothing mutable with the original or with another read."""
    from tenants.cache import _entry, _fresh, _Row

    raw = api_key_for(firm, "read")
    key = ApiKey.objects.select_related("tenant").get(prefix=api_key_resolve(raw).prefix)
    for original in (Tenant.objects.get(pk=firm.pk), key):
        entry = _entry(original)
        assert isinstance(entry, _Row)
        made = _fresh(entry)
        assert type(made) is type(original) and made is not original
        fields = [f.attname for f in type(original)._meta.concrete_fields]
        assert [getattr(made, name) for name in fields] == [getattr(original, name) for name in fields]
        assert (made._state.db, made._state.adding) == ("default", False)
    with CaptureQueriesContext(connection) as queries:
        copy_of_key = _fresh(_entry(key))
        assert copy_of_key.tenant == key.tenant and copy_of_key.tenant is not key.tenant  # no query
    assert len(queries) == 0
    copy_of_key.tenant.name = "changed by a request"
    assert _fresh(_entry(key)).tenant.name == firm.name
    # A list or JSON value (a firm's brand colour stands for one) is copied for every read.
    key.tenant.brand_color = ["a", {"b": [1]}]
    entry = _entry(key)
    first = _fresh(entry)
    first.tenant.brand_color[1]["b"].append(2)
    key.tenant.brand_color[1]["b"].append(3)
    assert _fresh(entry).tenant.brand_color == ["a", {"b": [1]}]


def test_what_from_db_cannot_give_back_is_kept_pickled(firm, forced_local):
    """An attribute that is not a field (an annotation, a value set by hand) survives: such an
    instance is kept as its pickle, and every read is still a copy of its own."""
    from tenants.cache import _entry, _fresh

    original = Tenant.objects.get(pk=firm.pk)
    original.tags = ["a", {"b": [1]}]
    entry = _entry(original)
    assert isinstance(entry, bytes)
    first, second = _fresh(entry), _fresh(entry)
    first.tags[1]["b"].append(2)
    assert second.tags == ["a", {"b": [1]}] and second.name == firm.name and second is not first


def test_the_local_level_serves_new_copies(firm, forced_local):
    from tenants.cache import _Row

    first = tenant_for_host(HOST)  # cold: stored as the values from_db takes
    entry = next(iter(tenant_cache._local.values()))
    assert isinstance(entry[1], _Row)
    first.name = "changed"
    second, third = tenant_for_host(HOST), tenant_for_host(HOST)
    assert second.name == firm.name and second is not third and second._state is not third._state
