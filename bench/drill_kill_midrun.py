"""Fault drill: a Celery worker killed in the middle of the platform invoice run and of webhook
deliveries; a new worker finishes each exactly once.

    .venv/bin/python bench/drill_kill_midrun.py [--subscriptions 40] [--events 60] [--json]

(The firm fee run of the brief does not exist yet; when it does, it gets the same drill. A report
batch neither: the invoice run is the batch job that exists.)

1. a private PostgreSQL and Redis (bench/harness/stack.py), one firm, and ``--subscriptions``
   more firms (provisioned: the run counts each firm's seats in its schema) whose subscriptions
   are made due for invoicing;
2. invoice run: a real worker (prefork, acks_late, visibility timeout 5 s) takes
   ``billing.invoice_run``; once a third of the invoices exist the worker's whole process group is
   killed with SIGKILL; a new worker gets the message back from Redis and runs it again;
3. webhooks: an endpoint on a local receiver that answers after 0.3 s; ``--events`` contacts are
   created (one ``contact.created`` event and one delivery each); a worker delivers them; it is
   killed (SIGKILL, process group) once a third have succeeded; a new worker and the
   ``webhooks.deliver_due`` sweep finish the rest;
4. checks: exactly one invoice per subscription and period (a database constraint, not luck),
   invoice numbers gapless, every invoice's total equals its lines; one delivery row per event
   (constraint), every delivery succeeded, the receiver got every event, duplicates at the
   receiver counted (at-least-once by design: a worker killed after the receiver answered and
   before the delivery was recorded sends again with the same ``webhook-id``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness.stack import Stack  # noqa: E402


def start_worker(workdir: Path, env: dict, name: str) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "celery", "-A", "codex", "worker", "-c", "2", "-P", "prefork"]
        + ["--prefetch-multiplier", "1", "--without-gossip", "--without-mingle", "--without-heartbeat"]
        + ["-n", f"{name}@localhost", "--loglevel", "WARNING"],
        cwd=ROOT,
        env=env,
        stdout=(workdir / f"{name}.log").open("a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def wait_until(predicate, timeout: float, step: float = 0.2) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", type=int, default=40)
    parser.add_argument("--events", type=int, default=60)
    parser.add_argument("--kill-at", type=float, default=1 / 3, help="fraction of the work done when killed")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    os.environ.update(
        CELERY_TASK_ALWAYS_EAGER="false",
        CELERY_VISIBILITY_TIMEOUT="5",
        CELERY_UNACKED_RESTORE_INTERVAL="1",
        CELERY_UNACKED_RESTORE_THROTTLE="1",
        CELERY_UNACKED_MUTEX_EXPIRE="3",
        WEBHOOKS_ALLOW_PRIVATE_ADDRESSES="true",
        WEBHOOKS_REQUIRE_HTTPS="false",
    )
    stack = Stack()
    result: dict = stack.setup()
    load_start = os.getloadavg()
    from django.db import connections
    from django_tenants.utils import schema_context

    from billing.models import Invoice, InvoiceLine, Plan, Subscription, SubscriptionStatus

    worker_env = dict(os.environ)

    # --- 1. the invoice run ----------------------------------------------------------------------
    # Real firms (the run counts seats in each firm's schema), their subscriptions made due.
    from tenants.services import tenant_provision

    start = datetime(2026, 11, 1, tzinfo=UTC)
    plan = Plan.objects.get(code="starter")
    tenants = [
        tenant_provision(name=f"Bill {i}", slug=f"bill{i:04d}", owner_email=f"o@bill{i:04d}.test", plan_code="starter")
        for i in range(args.subscriptions)
    ]
    Subscription.objects.filter(tenant__in=tenants).update(
        plan=plan,
        status=SubscriptionStatus.ACTIVE,
        trial_ends_at=None,
        billing_anchor=start,
        current_period_start=start,
        current_period_end=start + timedelta(days=30),
    )
    connections.close_all()
    from codex.celery import app

    worker = start_worker(stack.workdir, worker_env, "bill-1")
    t0 = time.monotonic()
    app.send_task("billing.invoice_run")
    invoices = lambda: Invoice.objects.filter(tenant__in=tenants).count()  # noqa: E731
    wait_until(lambda: invoices() >= max(1, int(args.subscriptions * args.kill_at)), args.timeout, 0.01)
    at_kill = invoices()
    kill_group(worker)
    worker = start_worker(stack.workdir, worker_env, "bill-2")
    finished = wait_until(lambda: invoices() >= args.subscriptions, args.timeout, 0.5)
    bill_seconds = time.monotonic() - t0
    time.sleep(3)  # anything still running would add a second invoice now, if it could
    kill_group(worker)
    per_sub = Counter(Invoice.objects.filter(tenant__in=tenants).values_list("subscription_id", "period_start"))
    numbers = sorted(
        int(n.rsplit("-", 1)[-1]) for n in Invoice.objects.exclude(number=None).values_list("number", flat=True)
    )
    mismatched = 0
    for inv in Invoice.objects.filter(tenant__in=tenants).prefetch_related("lines"):
        if sum((line.amount for line in inv.lines.all()), start=0) != inv.subtotal:
            mismatched += 1
    result["invoice_run"] = {
        "subscriptions": args.subscriptions,
        "invoices_when_killed": at_kill,
        "invoices_after": sum(per_sub.values()),
        "subscriptions_with_two_invoices_for_a_period": sum(1 for n in per_sub.values() if n > 1),
        "numbers_gapless": numbers == list(range(numbers[0], numbers[0] + len(numbers))) if numbers else True,
        "invoices_whose_lines_do_not_add_up": mismatched,
        "lines": InvoiceLine.objects.filter(invoice__tenant__in=tenants).count(),
        "seconds_to_complete": round(bill_seconds, 1),
        "finished": finished,
    }

    # --- 2. webhook deliveries -------------------------------------------------------------------
    received: list[str] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length") or 0))
            time.sleep(0.3)
            with lock:
                received.append(self.headers.get("webhook-id", ""))
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    from crm import services as crm_services
    from tenants.accounts.models import User
    from webhooks import services as webhook_services
    from webhooks.models import DeliveryStatus, WebhookDelivery

    schema = stack.tenant.schema_name
    with schema_context(schema):
        webhook_services.endpoint_create(
            tenant=stack.tenant,
            url=f"http://127.0.0.1:{server.server_address[1]}/hooks",
            event_types=["contact.created"],
            actor="drill",
        )
    worker = start_worker(stack.workdir, worker_env, "hooks-1")
    t1 = time.monotonic()
    with schema_context(schema):
        owner = User.objects.get(email="owner@drill.test")
        for i in range(args.events):
            crm_services.contact_create(
                actor=owner, tenant=stack.tenant, first_name=f"Hook{i}", email=f"h{i}@example.com"
            )

    def succeeded() -> int:
        with schema_context(schema):
            return WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count()

    wait_until(lambda: succeeded() >= max(1, int(args.events * args.kill_at)), args.timeout, 0.05)
    delivered_when_killed = succeeded()
    kill_group(worker)
    worker = start_worker(stack.workdir, worker_env, "hooks-2")
    sweeps = 0

    def done() -> bool:
        nonlocal sweeps
        if succeeded() >= args.events:
            return True
        # beat's sweeps, as beat would send them (every few seconds here instead of every minute)
        sweeps += 1
        app.send_task("codex.outbox.sweep", headers={"_schema_name": schema})
        app.send_task("webhooks.deliver_due", headers={"_schema_name": schema})
        return False

    finished_hooks = wait_until(done, args.timeout, 3.0)
    hooks_seconds = time.monotonic() - t1
    time.sleep(3)
    kill_group(worker)
    server.shutdown()
    with schema_context(schema):
        rows = WebhookDelivery.objects.count()
        per_event = Counter(WebhookDelivery.objects.values_list("event_id", "endpoint_id"))
        ok = succeeded()
    seen = Counter(received)
    result["webhooks"] = {
        "events": args.events,
        "succeeded_when_killed": delivered_when_killed,
        "delivery_rows": rows,
        "events_with_two_delivery_rows": sum(1 for n in per_event.values() if n > 1),
        "succeeded": ok,
        "distinct_events_received": len(seen),
        "received_twice_or_more": sum(1 for n in seen.values() if n > 1),
        "sweeps_sent": sweeps,
        "seconds_to_complete": round(hooks_seconds, 1),
        "finished": finished_hooks,
    }
    connections.close_all()
    stack.stop()
    result["load_average_start"] = [round(x, 2) for x in load_start]
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    inv, hooks = result["invoice_run"], result["webhooks"]
    result["checks"] = {
        "the invoice worker was killed mid-run": 0 < inv["invoices_when_killed"] < args.subscriptions,
        "every subscription invoiced once for the period": inv["invoices_after"] == args.subscriptions
        and inv["subscriptions_with_two_invoices_for_a_period"] == 0,
        "invoice numbers gapless": inv["numbers_gapless"],
        "every invoice adds up": inv["invoices_whose_lines_do_not_add_up"] == 0,
        "the delivery worker was killed mid-run": 0 < hooks["succeeded_when_killed"] < args.events,
        "one delivery row per event": hooks["delivery_rows"] == args.events
        and hooks["events_with_two_delivery_rows"] == 0,
        "every delivery succeeded": hooks["succeeded"] == args.events,
        "the receiver got every event": hooks["distinct_events_received"] == args.events,
    }
    result["ok"] = all(result["checks"].values())
    if args.json:
        print(json.dumps(result, default=str))
    else:
        for key, value in result.items():
            if key != "checks":
                print(f"{key:>20}: {value}")
        for name, passed in result["checks"].items():
            print(f"  [{'PASS' if passed else 'FAIL'}] {name}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
