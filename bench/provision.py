"""Provisioning benchmark: clone from the template vs running every migration, 200 firms present.

Runs against a scratch database (``codex_bench_provision``) on the same server as DATABASE_URL (or
the embedded PostgreSQL), so the development data is untouched. Prints a Markdown table and, with
``--write``, replaces the "Provisioning" section of docs/benchmarks.md.

    .venv/bin/python bench/provision.py [--firms 200] [--samples 15] [--write]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SCRATCH_DB = "codex_bench_provision"


def scratch_url() -> str:
    base = os.environ.get("DATABASE_URL")
    if not base:
        from codex.embedded_db import ensure_running

        base = ensure_running()
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{SCRATCH_DB}"))


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{SCRATCH_DB}"')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--firms", type=int, default=200)
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--full-samples", type=int, default=5)
    parser.add_argument("--concurrent-rounds", type=int, default=5)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    url = scratch_url()
    recreate_database(url)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "codex.settings"}
    os.environ.update({"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "codex.settings"})
    subprocess.run([sys.executable, "manage.py", "migrate_all", "--verbosity", "0"], cwd=ROOT, env=env, check=True)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, connections

    from billing.services import plans_seed
    from tenants.services import tenant_provision

    plans_seed()
    counter = iter(range(10**6))

    def provision_one() -> float:
        n = next(counter)
        started = time.perf_counter()
        tenant_provision(name=f"Bench {n}", slug=f"bench-{n}", owner_email=f"o{n}@bench.test", plan_code="starter")
        return time.perf_counter() - started

    print(f"creating {args.firms} firms ...", flush=True)
    fill_started = time.perf_counter()
    for _ in range(args.firms):
        provision_one()
    fill_seconds = time.perf_counter() - fill_started

    clone_times = [provision_one() for _ in range(args.samples)]

    # Full migration: what a provision costs without a template (django-tenants' default path).
    full_times = []
    for i in range(args.full_samples):
        schema = f"full_migrate_{i}"
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{schema}"')
        call_command("migrate_schemas", tenant=True, schema_name=schema, interactive=False, verbosity=0)
        full_times.append(time.perf_counter() - started)
        connection.set_schema_to_public()

    # Four sign-ups at once, each on its own connection.
    concurrent_times: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            elapsed = provision_one()
            with lock:
                concurrent_times.append(elapsed)
        finally:
            connections.close_all()

    for _ in range(args.concurrent_rounds):
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    clone_median = statistics.median(clone_times)
    full_median = statistics.median(full_times)
    rows = [
        ("firms present", f"{args.firms} (+ samples)", ""),
        ("provision by clone, median", f"{clone_median * 1000:.0f} ms", "< 500 ms"),
        ("provision by clone, max", f"{max(clone_times) * 1000:.0f} ms", ""),
        ("full migration of one schema, median", f"{full_median * 1000:.0f} ms", ""),
        ("speed-up (full / clone)", f"{full_median / clone_median:.1f}x", ">= 5x"),
        (
            "4 concurrent provisions, median per provision",
            f"{statistics.median(concurrent_times) * 1000:.0f} ms",
            "< 500 ms",
        ),
        ("4 concurrent provisions, max", f"{max(concurrent_times) * 1000:.0f} ms", ""),
        ("filling 200 firms (sequential)", f"{fill_seconds:.1f} s", ""),
    ]
    table = "\n".join(["| measure | result | target |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows])
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    section = (
        "## Provisioning\n\n"
        f"`bench/provision.py --firms {args.firms} --samples {args.samples}` on {machine}, "
        f"PostgreSQL {connection.pg_version // 10000}, scratch database. Clone = "
        "`tenants.services.tenant_provision` (schema cloned from `tenant_template`, domain, owner, trial, "
        "audit, in one transaction); full migration = `CREATE SCHEMA` + `migrate_schemas` of every tenant app.\n\n"
        f"{table}\n"
    )
    print(section)
    if args.write:
        write_section(section)
    connections.close_all()


def write_section(section: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n\nFigures measured on this project's machine.\n\n"
    start = text.find("## Provisioning")
    if start == -1:
        text = text.rstrip() + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + ("" if end == -1 else text[end:])
    path.write_text(text)


if __name__ == "__main__":
    main()
