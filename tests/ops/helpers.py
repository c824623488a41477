"""Helpers shared by the ops tests: subprocesses pointed at the test database."""

from __future__ import annotations

from pathlib import Path
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


def processes_under(marker: str) -> list[str]:
    """Command lines of running processes that mention ``marker`` (a drill's scratch directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found
