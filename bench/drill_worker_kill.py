"""Fault drill: kill Celery workers with SIGKILL mid-run and prove every task's effect happened once.

    .venv/bin/python bench/drill_worker_kill.py [--tasks 1000] [--firm acme] [--json]

What it does:
1. starts a private Redis (or uses --redis-url) and creates two tables in the firm's schema:
   ``ops_drill_execution`` (one row per attempt, committed before the work) and ``ops_drill_effect``
   (primary key = task key; the task inserts ``ON CONFLICT DO NOTHING``);
2. enqueues N ``codex.drill_write`` tasks in the firm's schema (tenant-schemas-celery header) on a
   queue of its own;
3. starts a prefork worker (acks_late, prefetch 1, reject_on_worker_lost);
4. at 25 % of effects SIGKILLs one pool child (the parent sees WorkerLostError and requeues the
   message at once); at 50 % SIGKILLs the whole worker, parent and children (nothing acks; Redis
   hands the unacked messages back after the visibility timeout);
5. starts a fresh worker and waits until the queue drains, sweeping the delivery ledger every
   second as beat's ``codex.redeliver_lost`` does (codex/delivery.py): a message the whole-worker
   kill caught between Redis's BRPOP and its unacked record is in no queue, and only the ledger
   sends it again;
6. checks: exactly N effect rows, one per key, all in the firm's schema; every key executed at least
   once; attempts > N shows redeliveries happened; the Redis queue, its unacked set and the delivery
   ledger are empty.

Database: DATABASE_URL, else the embedded PostgreSQL. Exit status 0 only if every check passes.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    """A private Redis (the embedded one's binary), stopped when the drill exits, even on failure."""
    from codex.embedded_redis import server_binary

    binary = server_binary()
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(stop_process, proc)
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("redis-server did not start")


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--firm", default="acme", help="slug of an existing firm (created if missing)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--work-ms", type=int, default=10, help="simulated work per task")
    parser.add_argument("--visibility-timeout", type=int, default=5)
    parser.add_argument(
        "--ledger-grace", type=float, default=None, help="seconds before the ledger sweep re-sends (2 x visibility)"
    )
    parser.add_argument("--redis-url", default=os.environ.get("DRILL_REDIS_URL", ""))
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument("--keep", action="store_true", help="keep the drill tables")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="codex-drill-"))
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
        CELERY_VISIBILITY_TIMEOUT=str(args.visibility_timeout),
        # Sweep for abandoned messages every second (kombu's default is every 100 s).
        CELERY_UNACKED_RESTORE_INTERVAL="1",
        CELERY_UNACKED_RESTORE_THROTTLE="1",
        # A SIGKILL during a sweep strands its Redis lock; with the default (300 s) the next
        # worker would wait that long before restoring anything.
        CELERY_UNACKED_MUTEX_EXPIRE="3",
        DJANGO_SETTINGS_MODULE="codex.settings",
    )
    import django

    django.setup()
    import redis
    from django.db import connection
    from django_tenants.utils import schema_context

    from codex.celery import app
    from codex.delivery import ledger
    from codex.jobs import DRILL_EFFECT_TABLE, DRILL_RUN_TABLE, drill_write
    from tenants.models import Tenant

    tenant = Tenant.objects.filter(slug=args.firm).first()
    if tenant is None:
        from billing.services import plans_seed
        from tenants.services import tenant_provision

        plans_seed()
        tenant = tenant_provision(name=f"Drill {args.firm}", slug=args.firm, owner_email=f"owner@{args.firm}.test")
    schema = tenant.schema_name
    queue = f"drill-{uuid.uuid4().hex[:8]}"
    result: dict = {"tasks": args.tasks, "firm": args.firm, "schema": schema, "queue": queue}

    def q(sql, params=None):
        with connection.cursor() as cursor:
            cursor.execute(sql, params or [])
            return cursor.fetchall() if cursor.description else None

    def effects() -> int:
        return q(f"SELECT count(*) FROM {schema}.{DRILL_EFFECT_TABLE}")[0][0]

    def in_flight_pid() -> int | None:
        """The pid of a process running a task right now (attempt recorded, effect not yet written)."""
        rows = q(
            f"SELECT r.pid FROM {schema}.{DRILL_RUN_TABLE} r LEFT JOIN {schema}.{DRILL_EFFECT_TABLE} e "
            "USING (task_id) WHERE e.task_id IS NULL ORDER BY r.id DESC LIMIT 1"
        )
        return rows[0][0] if rows else None

    def wait_in_flight(pool: list[int] | None = None) -> int | None:
        """Wait (briefly) until a task is mid-run, so the kill interrupts work rather than an idle
        process: on a busy machine a kill at a random moment could find every child between tasks,
        and then nothing would be redelivered mid-run."""
        until = time.monotonic() + 10
        while time.monotonic() < until:
            pid = in_flight_pid()
            if pid is not None and (pool is None or pid in pool):
                return pid
            time.sleep(0.002)
        return None

    q(f"DROP TABLE IF EXISTS {schema}.{DRILL_EFFECT_TABLE}, {schema}.{DRILL_RUN_TABLE}")
    q(
        f"CREATE TABLE {schema}.{DRILL_EFFECT_TABLE} (task_id text PRIMARY KEY, schema_name text NOT NULL, "
        "done_at timestamptz NOT NULL DEFAULT clock_timestamp())"
    )
    q(
        f"CREATE TABLE {schema}.{DRILL_RUN_TABLE} (id bigserial PRIMARY KEY, task_id text NOT NULL, pid int NOT NULL, "
        "at timestamptz NOT NULL DEFAULT clock_timestamp())"
    )

    worker_env = dict(os.environ)
    log_path = workdir / "worker.log"

    def start_worker(name: str) -> subprocess.Popen:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "codex",
                "worker",
                "-Q",
                queue,
                "-c",
                str(args.concurrency),
                "-P",
                "prefork",
                "--prefetch-multiplier",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"{name}-{queue}@localhost",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env=worker_env,
            stdout=log_path.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: SIGKILL reaches parent and children
        )

    keys = [f"k{i:06d}" for i in range(args.tasks)]
    t0 = time.monotonic()
    with schema_context(schema):
        task_ids = [
            drill_write.apply_async(kwargs={"key": key, "work_ms": args.work_ms}, queue=queue).id for key in keys
        ]
    result["enqueue_seconds"] = round(time.monotonic() - t0, 2)
    key_of = dict(zip(task_ids, keys, strict=True))

    worker = start_worker("w1")
    deadline = time.monotonic() + args.timeout
    killed_child = None
    try:
        while effects() < args.tasks * 0.25 and time.monotonic() < deadline:
            time.sleep(0.02)
        pool = children_of(worker.pid)
        if pool:
            killed_child = wait_in_flight(pool) or pool[0]
            os.kill(killed_child, signal.SIGKILL)
        result["child_killed_at_effects"] = effects()
        while effects() < args.tasks * 0.5 and time.monotonic() < deadline:
            time.sleep(0.02)
        wait_in_flight()
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        result["worker_killed_at_effects"] = effects()
        result["attempts_at_kill"] = q(f"SELECT count(*) FROM {schema}.{DRILL_RUN_TABLE}")[0][0]
        r = redis.Redis.from_url(redis_url)
        result["unacked_after_kill"] = r.hlen("unacked")
        result["sweep_lock_held_at_kill"] = bool(r.exists("unacked_mutex"))
        kill_time = time.monotonic()
        worker = start_worker("w2")
        book = ledger()
        grace = args.ledger_grace if args.ledger_grace is not None else 2 * args.visibility_timeout
        redelivered: list[str] = []
        next_sweep = time.monotonic() + 1
        while effects() < args.tasks and time.monotonic() < deadline:
            time.sleep(0.05)
            if time.monotonic() >= next_sweep:  # what beat's codex.redeliver_lost does every minute
                for task_id in book.redeliver_lost(grace=grace, app=app):
                    key = key_of[task_id]
                    ran = q(f"SELECT count(*) FROM {schema}.{DRILL_RUN_TABLE} WHERE task_id = %s", [key])[0][0]
                    redelivered.append({"key": key, "attempts_before": ran})
                next_sweep = time.monotonic() + 1
        # A re-sent task with no attempt before it is one the broker had lost.
        result["ledger_redelivered"] = redelivered
        result["recovery_seconds"] = round(time.monotonic() - kill_time, 2)
        # Let late redeliveries (if any) finish before counting attempts.
        time.sleep(0.5)
        result["ledger_left"] = book.pending(task_ids)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
    result["total_seconds"] = round(time.monotonic() - t0, 2)
    result["killed_child_pid"] = killed_child

    rows = q(f"SELECT task_id, schema_name FROM {schema}.{DRILL_EFFECT_TABLE}")
    attempts = dict(q(f"SELECT task_id, count(*) FROM {schema}.{DRILL_RUN_TABLE} GROUP BY task_id"))
    r = redis.Redis.from_url(redis_url)
    result.update(
        effects=len(rows),
        distinct_effects=len({k for k, _ in rows}),
        missing=sorted(set(keys) - {k for k, _ in rows})[:20],
        unexpected=sorted({k for k, _ in rows} - set(keys))[:20],
        wrong_schema=sum(1 for _, s in rows if s != schema),
        attempts=sum(attempts.values()),
        keys_run_more_than_once=sum(1 for n in attempts.values() if n > 1),
        never_attempted=sum(1 for k in keys if k not in attempts),
        queue_left=r.llen(queue),
        unacked_left=r.hlen("unacked"),
    )
    checks = {
        "every task's effect exactly once": result["effects"] == args.tasks == result["distinct_effects"]
        and not result["missing"]
        and not result["unexpected"],
        "effects written in the firm's schema": result["wrong_schema"] == 0,
        "workers were killed mid-run": result["worker_killed_at_effects"] < args.tasks,
        "redeliveries happened (attempts > tasks)": result["attempts"] > args.tasks,
        "broker drained (queue and unacked empty)": result["queue_left"] == 0 and result["unacked_left"] == 0,
        "delivery ledger empty (every task finished)": result.get("ledger_left") == 0,
    }
    result["checks"] = checks
    result["ok"] = all(checks.values())

    if not args.keep:
        q(f"DROP TABLE IF EXISTS {schema}.{DRILL_EFFECT_TABLE}, {schema}.{DRILL_RUN_TABLE}")
    if redis_proc is not None:
        stop_process(redis_proc)
    result["workdir"] = str(workdir)
    result["queue"] = queue
    if result["ok"]:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        result["worker_log"] = str(log_path)

    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            if key != "checks":
                print(f"{key:>28}: {value}")
        for name, passed in checks.items():
            print(f"  [{'PASS' if passed else 'FAIL'}] {name}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
