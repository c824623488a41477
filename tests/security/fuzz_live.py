"""External API fuzzing: Schemathesis' CLI over HTTP against a live gunicorn (``make fuzz``).

The in-process run (``test_api_fuzz.py``, in ``make test``) calls the WSGI application directly; a
client sees more: gunicorn, real sockets, Host headers with ports, the API host routed by the key.
This run starts gunicorn on a free local port (2 sync workers, ``DJANGO_DEBUG=false`` as in
production, rate limits raised: thousands of requests in a row are not an attack here), provisions
a firm ``fuzz`` in the development database with planted objects and an owner's write key, then
runs ``schemathesis run`` with **all** checks and bounded examples against the firm host and the
API host, prints the figures and stops the server. Exit status 1 when any failure was found.

    python tests/security/fuzz_live.py [--examples 10] [--coverage] [--report-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SLUG = "fuzz"


def prepare() -> tuple[str, dict]:
    """The firm ``fuzz`` (made once), one object of every kind a request can name, a new write key.
    Called before each host's run: the previous run may have deleted the objects it planted."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codex.settings")
    import django

    django.setup()
    from django_tenants.utils import schema_context

    from billing.models import Plan
    from billing.services import plans_seed
    from portfolios.alerts.models import AlertRule, RuleKind
    from tenants.accounts.models import Role, User
    from tenants.models import Tenant
    from tenants.services import api_key_create, tenant_provision
    from tests.crm.factories import CompanyFactory, ContactFactory, DealFactory
    from tests.portfolios.factories import InstrumentFactory, PortfolioFactory, in_public

    plans_seed()
    owner_email = f"owner@{SLUG}.test"
    with schema_context("public"):
        tenant = Tenant.objects.filter(slug=SLUG).first()
    if tenant is None:
        tenant = tenant_provision(
            name="Fuzz Wealth",
            slug=SLUG,
            owner_email=owner_email,
            owner_password=secrets.token_urlsafe(24),
            plan_code="pro",
        )
    with schema_context(tenant.schema_name):
        advisor = User.objects.filter(email=f"advisor@{SLUG}.test").first() or User.objects.create_user(
            f"advisor@{SLUG}.test", secrets.token_urlsafe(24), role=Role.ADVISOR
        )
        # Unique values of this run: the factories' sequences start again in every process.
        tag = secrets.token_hex(4)
        instrument = in_public(InstrumentFactory, symbol=f"FZ{tag}".upper())
        contact = ContactFactory(owner=advisor, lifecycle="client", email=f"client-{tag}@example.com")
        company = CompanyFactory(owner=advisor, name=f"Company {tag}")
        deal = DealFactory(owner=advisor, contact=contact, company=company, title=f"Deal {tag}")
        portfolio = PortfolioFactory(advisor=advisor, client=contact, name=f"Portfolio {tag}")
        rule = AlertRule.objects.create(kind=RuleKind.PRICE_ABOVE, instrument=instrument, threshold=100)
        other = ContactFactory(owner=advisor, email=f"other-{tag}@example.com")
    with schema_context("public"):
        plan = (
            Plan.objects.filter(is_public=True)
            .exclude(code="pro")
            .order_by("pk")
            .values_list("code", flat=True)
            .first()
        )
    _key, raw = api_key_create(tenant=tenant, name="external fuzz", scope="write", created_by=owner_email)
    ids = {
        "plan_code": plan,
        "user": advisor.pk,
        "users": [advisor.pk],
        "contact": contact.pk,
        "other_contact": other.pk,
        "company": company.pk,
        "deal": deal.pk,
        "stage": deal.stage_id,
        "instrument": instrument.pk,
        "portfolio": portfolio.pk,
        "rule": rule.pk,
    }
    return raw, ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, host: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}")
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/health", headers={"Host": host})
            with urllib.request.urlopen(request, timeout=2):  # noqa: S310 (a local URL we built)
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("gunicorn did not answer /health in time")


def fetch_schema(port: int, host: str, path: Path) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/schema/?format=json", headers={"Host": host})
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (a local URL we built)
        path.write_bytes(response.read())


def junit_figures(path: Path) -> dict:
    root = ET.parse(path).getroot()  # noqa: S314 (our own tool's report)
    cases = root.iter("testcase")
    total = failed = 0
    failing = []
    for case in cases:
        total += 1
        problems = [child for child in case if child.tag in ("failure", "error")]
        if problems:
            failed += 1
            failing.append(case.get("name"))
    return {"operations": total, "operations_failing": failed, "failing": failing}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=int(os.environ.get("CODEX_FUZZ_LIVE_EXAMPLES", "10")))
    parser.add_argument("--coverage", action="store_true", help="run Schemathesis' coverage phase too")
    parser.add_argument("--report-dir", default=os.environ.get("CODEX_FUZZ_REPORT_DIR", ""))
    args = parser.parse_args()

    raw_key, ids = prepare()
    port = free_port()
    plantings = {"firm host": (raw_key, ids)}
    report_dir = Path(args.report_dir or tempfile.mkdtemp(prefix="codex-fuzz-")).resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_ACCESSLOG": "",
        "GUNICORN_LOGLEVEL": "warning",
        "CODEX_PUBLIC_PORT": str(port),
        "DJANGO_DEBUG": "false",
        "CODEX_API_RATE": "1000000/min",
        "CODEX_API_ANON_RATE": "1000000/min",
        "CODEX_API_AUTH_RATE": "1000000/min",
    }
    server_log = report_dir / "gunicorn.log"
    with server_log.open("wb") as log:
        server = subprocess.Popen(  # noqa: S603 (our own virtualenv's gunicorn)
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    results = {}
    try:
        firm_host = f"{SLUG}.localhost:{port}"
        wait_ready(port, firm_host, server)
        for label, host in (("firm host", firm_host), ("API host", f"api.localhost:{port}")):
            raw_key, ids = plantings.get(label) or prepare()
            schema = report_dir / f"schema-{label.split()[0]}.json"
            fetch_schema(port, host, schema)
            junit = report_dir / f"junit-{label.split()[0]}.xml"
            phases = "examples,fuzzing" + (",coverage" if args.coverage else "")
            command = [
                str(BIN / "schemathesis"),
                "run",
                str(schema),
                "--url",
                f"http://127.0.0.1:{port}",
                "--header",
                f"Host: {host}",
                "--header",
                f"X-API-Key: {raw_key}",
                "--checks",
                "all",
                "--max-examples",
                str(args.examples),
                "--phases",
                phases,
                "--generation-allow-x00",
                "false",
                "--generation-deterministic",
                "--workers",
                "2",
                "--no-color",
                "--report",
                "junit",
                "--report-junit-path",
                str(junit),
            ]
            print(
                f"\n=== Schemathesis over HTTP, {label} ({host}), {args.examples} examples per operation ===",
                flush=True,
            )
            run_env = {
                **os.environ,
                "SCHEMATHESIS_HOOKS": "tests.security.fuzz_hooks",
                "CODEX_FUZZ_IDS": json.dumps(ids),
                "PYTHONPATH": str(ROOT),
            }
            # In the report directory: the CLI keeps its cache (.schemathesis/) where it runs.
            completed = subprocess.run(command, cwd=report_dir, env=run_env, check=False)  # noqa: S603
            results[label] = {"exit": completed.returncode, **junit_figures(junit)}
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    print("\n=== External fuzzing figures ===")
    for label, figures in results.items():
        print(f"{label}: {figures['operations']} operations, {figures['operations_failing']} failing")
        for name in figures["failing"]:
            print(f"  - {name}")
    print(f"reports and server log: {report_dir}")
    return 0 if results and all(f["operations_failing"] == 0 and f["exit"] == 0 for f in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
