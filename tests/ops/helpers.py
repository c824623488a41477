"""Helpers shared by the ops tests: subprocesses pointed at the test database."""

from __future__ import annotations

import os
import shutil
from urllib.parse import quote

from django.db import connection


def database_url_for_subprocesses() -> str:
    """A DATABASE_URL for the database this test session uses (so subprocesses share it)."""
    db = connection.settings_dict
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host", "")
    auth = quote(db.get("USER") or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    netloc = f"{auth}@" if auth else ""
    if host.startswith("/"):
        return f"postgres://{netloc}/{db['NAME']}?host={host}"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{netloc}{host}{port}/{db['NAME']}"


def redis_unavailable_reason() -> str | None:
    """None if a Redis can be used (REDIS_URL / DRILL_REDIS_URL given, or redis-server installed)."""
    if os.environ.get("DRILL_REDIS_URL") or shutil.which("redis-server"):
        return None
    return "Redis not reachable: set DRILL_REDIS_URL or install redis-server (apt-get install redis-server)"
