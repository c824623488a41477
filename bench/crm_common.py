"""Shared set-up of the CRM benchmarks: a scratch database with one firm on the enterprise plan.

The scratch database (``codex_bench_crm``) lives on the development PostgreSQL server
(``DATABASE_URL``, or the embedded one), so development data is untouched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SCRATCH_DB = "codex_bench_crm"
FIRM = "crmbench"

FIRST = [
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Elena",
    "Felix",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Katharina",
    "Lukas",
    "Maria",
    "Nils",
    "Olga",
    "Paul",
    "Quinn",
    "Rosa",
    "Stefan",
    "Tanja",
    "Ulrich",
    "Vera",
    "Walter",
    "Yara",
    "Zoe",
]
LAST = [
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Hartmann",
    "Lange",
    "Schmitt",
    "Werner",
    "Krause",
    "Meier",
    "Lehmann",
    "Huber",
    "Kaiser",
    "Fuchs",
    "Peters",
]


def name_for(i: int) -> tuple[str, str]:
    # Deterministic, and many distinct full names (25 x 30 x a numbered suffix every 750).
    return FIRST[i % len(FIRST)], f"{LAST[(i // len(FIRST)) % len(LAST)]}{'' if i < 750 else i // 750}"


def setup(*, fresh: bool = True):
    """Point Django at the scratch database, migrate it (a reused one gets the migrations added
    since it was filled) and return (tenant, owner)."""
    from bench.harness import db

    url = db.recreate(SCRATCH_DB) if fresh or not db.exists(SCRATCH_DB) else db.database_url(SCRATCH_DB)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "codex.settings", "DJANGO_DEBUG": "0"}
    os.environ.update({"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "codex.settings", "DJANGO_DEBUG": "0"})
    # fresh: every migration; reused: the ones added since it was filled
    subprocess.run(
        [sys.executable, "manage.py", "migrate_all", "--executor", "standard", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    import django

    django.setup()
    from django_tenants.utils import schema_context

    from billing.services import plans_seed
    from tenants.accounts.models import User
    from tenants.models import Tenant
    from tenants.services import tenant_provision

    plans_seed()
    tenant = Tenant.objects.filter(slug=FIRM).first() or tenant_provision(
        name="CRM bench", slug=FIRM, owner_email=f"owner@{FIRM}.test", plan_code="enterprise"
    )
    with schema_context(tenant.schema_name):
        owner = User.objects.get(email=f"owner@{FIRM}.test")
    return tenant, owner


def pg_facts() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    return f"PostgreSQL {version} (pg_trgm for typos, GIN gin_trgm_ops on the folded names)"
