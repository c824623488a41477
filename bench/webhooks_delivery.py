"""Load test of outbound webhooks: 10,000 events to a local receiver that fails 30 % of the time.

    .venv/bin/python bench/webhooks_delivery.py [--events 10000] [--fail 0.3] [--concurrency 8] [--json]

What it does:
1. starts a private Redis (or uses --redis-url) and a receiver on 127.0.0.1 that answers 500 to a
   random 30 % of requests and 204 to the rest, verifying every Standard Webhooks signature;
2. in a firm's schema (``hookbench``, provisioned if missing) adds one endpoint for
   ``contact.created`` and emits N events through ``event_emit`` (100 per transaction), spread over
   100 resources ("contact:0".."contact:99"), as a service would;
3. runs a real Celery worker (prefork, 4 processes by default) with the production
   code path: relay task per event, delivery task per event, retries with backoff and jitter. The
   backoff is shortened (base 0.2 s, cap 2 s) so the run ends in minutes instead of a day; the retry
   window stays production's 24 h;
4. sweeps for due deliveries every 10 s as beat does (``webhooks.deliver_due``), and counts the
   delivery tasks that found nothing to do (no-op tasks, from the worker's log);
5. waits until no delivery is pending, then checks from the receiver's side: every event's
   ``webhook-id`` was answered 2xx at least once (delivered), counts ids answered 2xx more than once
   (duplicates a receiver must dedupe), and the per-resource order in which events arrived.

Database: DATABASE_URL, else the embedded PostgreSQL. Exit status 0 only if every event was delivered
exactly once from the receiver's point of view (after dedupe by webhook-id) and none was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.drill_worker_kill import start_redis  # noqa: E402


class Receiver:
    def __init__(self, fail: float, seed: int):
        self.fail = fail
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.requests = 0
        self.failed = 0
        self.bad_signatures = 0
        self.ok_by_id: Counter = Counter()
        self.first_ok: dict[str, int] = {}  # webhook-id -> arrival rank of its first 2xx
        self.secret = ""

    def handle(self, headers: dict, body: bytes) -> int:
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        try:
            Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            with self.lock:
                self.bad_signatures += 1
            return 400
        msg_id = headers["webhook-id"]
        with self.lock:
            self.requests += 1
            if self.random.random() < self.fail:
                self.failed += 1
                return 500
            self.ok_by_id[msg_id] += 1
            self.first_ok.setdefault(msg_id, len(self.first_ok))
            return 204


def serve(receiver: Receiver) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            status = receiver.handle({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/hook"


OUTCOME = re.compile(r"Task webhooks\.deliver\[[^\]]+\] succeeded in [0-9.e-]+s: '(\w+)'")


def deliver_outcomes(log_path: Path) -> dict[str, int]:
    """How the worker's ``webhooks.deliver`` tasks ended, from its INFO log: "succeeded" / "retry" /
    "failed" made an attempt; "skipped" found nothing to do (a no-op: duplicate or early task)."""
    with log_path.open(errors="replace") as log:
        return dict(Counter(m.group(1) for m in map(OUTCOME.search, log) if m))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--fail", type=float, default=0.3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--pool", default="prefork", choices=["prefork", "threads"])
    parser.add_argument("--firm", default="hookbench")
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--timeout", type=float, default=5400)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", ""))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="hookbench-"))
    redis_proc = None
    redis_url = args.redis_url
    if not redis_url:
        redis_proc, redis_url = start_redis(workdir)
    if "DATABASE_URL" not in os.environ:
        from codex.embedded_db import ensure_running

        os.environ["DATABASE_URL"] = ensure_running()
    os.environ.update(
        REDIS_URL=redis_url,
        CELERY_TASK_ALWAYS_EAGER="false",
        WEBHOOKS_RETRY_BASE_SECONDS="0.2",
        WEBHOOKS_RETRY_MAX_DELAY_SECONDS="2",
        # production's 24 h window: only the backoff is shortened. A 1 h window expired in the run of
        # 2026-12-07 (load ~20): one delivery, unlucky 8 times, waited behind the backlog past it.
        WEBHOOKS_RETRY_WINDOW_SECONDS="86400",
        WEBHOOKS_ALLOW_PRIVATE_ADDRESSES="true",
        WEBHOOKS_REQUIRE_HTTPS="false",
        DJANGO_SETTINGS_MODULE="codex.settings",
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction
    from django.db.models import Count, Sum
    from django_tenants.utils import schema_context

    from codex.outbox.models import OutboxEvent
    from codex.outbox.services import event_emit
    from tenants.models import Tenant
    from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
    from webhooks.services import deliveries_enqueue_due, secret_new

    call_command("migrate_all", verbosity=0)
    tenant = Tenant.objects.filter(slug=args.firm).first()
    if tenant is None:
        from billing.services import plans_seed
        from tenants.services import tenant_provision

        plans_seed()
        tenant = tenant_provision(
            name="Webhook bench", slug=args.firm, owner_email=f"owner@{args.firm}.test", plan_code="pro"
        )
    receiver = Receiver(args.fail, args.seed)
    server, url = serve(receiver)
    with schema_context(tenant.schema_name):
        WebhookEndpoint.objects.all().delete()
        OutboxEvent.objects.all().delete()
        endpoint = WebhookEndpoint.objects.create(url=url, event_types=["contact.created"], secret=secret_new())
        receiver.secret = endpoint.secret

    log_path = workdir / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "codex", "worker", "-c", str(args.concurrency), "-P", args.pool]
        # INFO: the worker logs each task's outcome, counted below (no-op tasks are "skipped").
        + ["--prefetch-multiplier", "4", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )
    result: dict = {"events": args.events, "fail_rate": args.fail, "pool": args.pool, "concurrency": args.concurrency}
    try:
        started = time.monotonic()
        emitted: list[tuple[str, str]] = []  # (resource, webhook-id) in emission order
        with schema_context(tenant.schema_name):
            for batch in range(0, args.events, 100):
                with transaction.atomic():
                    for i in range(batch, min(batch + 100, args.events)):
                        resource = f"contact:{i % 100}"
                        event = event_emit(type="contact.created", data={"id": i}, resource=resource)
                        emitted.append((resource, event.message_id))
        result["emit_seconds"] = round(time.monotonic() - started, 2)
        swept = 0
        last_sweep = time.monotonic()
        while time.monotonic() - started < args.timeout:
            with schema_context(tenant.schema_name):
                counts = dict(
                    WebhookDelivery.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n")
                )
                unrelayed = OutboxEvent.objects.filter(relayed_at=None).count()
                if time.monotonic() - last_sweep > 10:
                    swept += deliveries_enqueue_due()
                    last_sweep = time.monotonic()
            done = counts.get(DeliveryStatus.SUCCEEDED, 0) + counts.get(DeliveryStatus.FAILED, 0)
            if not unrelayed and done >= args.events:
                break
            time.sleep(1)
        result["seconds"] = round(time.monotonic() - started, 1)
        with schema_context(tenant.schema_name):
            result["deliveries"] = counts
            result["attempts"] = WebhookDelivery.objects.aggregate(n=Sum("attempts"))["n"]
        result["swept"] = swept
        result["deliver_tasks"] = deliver_outcomes(log_path)
        result["noop_tasks"] = result["deliver_tasks"].get("skipped", 0)
        result["receiver_requests"] = receiver.requests
        result["receiver_failed"] = receiver.failed
        result["bad_signatures"] = receiver.bad_signatures
        ids = [msg_id for _resource, msg_id in emitted]
        delivered = [i for i in ids if receiver.ok_by_id[i] >= 1]
        result["delivered_unique"] = len(delivered)
        result["lost"] = len(ids) - len(delivered)
        result["duplicates_2xx"] = sum(1 for i in ids if receiver.ok_by_id[i] > 1)
        # order per resource: pairs of consecutive events of one resource that arrived reversed
        by_resource: dict[str, list[str]] = defaultdict(list)
        for resource, msg_id in emitted:
            by_resource[resource].append(msg_id)
        pairs = inversions = 0
        for seq in by_resource.values():
            for a, b in zip(seq, seq[1:], strict=False):
                if a in receiver.first_ok and b in receiver.first_ok:
                    pairs += 1
                    inversions += receiver.first_ok[a] > receiver.first_ok[b]
        result["order_pairs"] = pairs
        result["order_inversions"] = inversions
        result["events_per_second"] = round(args.events / result["seconds"], 1)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        server.shutdown()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(timeout=10)
    ok = result.get("lost") == 0 and result.get("bad_signatures") == 0
    result["ok"] = ok
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
