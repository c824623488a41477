"""CPU per request, in process (no network, no gunicorn): what each middleware and each view adds.

    .venv/bin/python bench/middleware_cost.py [--db codex_bench] [-n 3000] [--redis-db 12]

Needs the scratch database seeded by ``make bench`` (its seed file gives the firm host and API key).
Runs Django's test client against production settings with Redis, measures ``time.process_time()``
per request (CPU of this process only, so other processes' load matters less than for req/s), best
of three rounds:

1. the C0 view (``/bench/ping/`` on the firm host) with the first k middlewares of ``MIDDLEWARE`` for
   k = 0..n: the increment is what the k-th middleware costs (noisy to +-15 us on a busy machine);
2. the C1 view (``bench.ceiling_firm_settings``) and ``GET /api/v1/portfolios/`` (API key) whole.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup(db: str, settings_module: str, redis_db: int = 12, log_level: str = "WARNING") -> dict:
    from bench.harness import db as scratch
    from bench.harness.server import BENCH_ENCRYPTION_KEY, BENCH_SECRET_KEY

    os.environ.update(
        {
            "DATABASE_URL": scratch.database_url(db),
            "DJANGO_SETTINGS_MODULE": settings_module,
            "CODEX_BENCH_VIEWS": "1",
            "DJANGO_ENV": "production",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_SECRET_KEY": BENCH_SECRET_KEY,
            "CODEX_ENCRYPTION_KEYS": BENCH_ENCRYPTION_KEY,
            "CODEX_API_RATE": "100000000/min",
            "DJANGO_LOG_LEVEL": log_level,
        }
    )
    # Its own Redis database per scratch database: the host and key caches of two seeded
    # databases (same host names, other firm ids) must not meet.
    redis = scratch.redis_url(db=redis_db)
    if redis:
        os.environ["REDIS_URL"] = redis
    import django

    django.setup()
    return json.loads((ROOT / ".data" / "bench" / f"seed-{db}.json").read_text())


def cpu_per_request(client, path: str, n: int, **headers) -> float:
    for _ in range(100):
        client.get(path, **headers)
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(n):
            client.get(path, **headers)
        best = min(best, (time.process_time() - started) / n * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="codex_bench")
    parser.add_argument("-n", type=int, default=3000)
    parser.add_argument("--redis-db", type=int, default=12, help="Redis database (not 0) of this run's caches")
    parser.add_argument("--part", choices=["middleware", "c1", "api"], default=None)
    args = parser.parse_args()
    if args.part is None:  # each part in its own process: settings differ
        for part in ("middleware", "c1", "api"):
            subprocess.run(
                [sys.executable, __file__, "--db", args.db, "-n", str(args.n), "--redis-db", str(args.redis_db)]
                + ["--part", part],
                check=True,
            )
        return
    seed = setup(args.db, "bench.ceiling_firm_settings" if args.part == "c1" else "codex.settings", args.redis_db)
    from django.conf import settings
    from django.test import Client
    from django.test.utils import override_settings

    if args.part == "middleware":
        full = list(settings.MIDDLEWARE)
        previous = None
        print("| middleware (in order) | adds, us CPU per request |\n|---|---|")
        for k in range(len(full) + 1):
            with override_settings(MIDDLEWARE=full[:k]):
                now = cpu_per_request(Client(HTTP_HOST=seed["host"]), "/bench/ping/", args.n)
            if previous is None:
                print(f"| none (test client + C0 view) | {now:.0f} |")
            else:
                print(f"| `{full[k - 1]}` | {now - previous:+.0f} |")
            previous = now
        print(f"| **whole stack** | **{previous:.0f}** |\n")
    elif args.part == "c1":
        c1 = cpu_per_request(Client(HTTP_HOST=seed["host"]), "/bench/rows/", max(200, args.n // 10))
        print(f"C1 view (25 rows, .values()): {c1:.0f} us CPU per request.")
    else:
        api = cpu_per_request(
            Client(HTTP_HOST=seed["host"]),
            "/api/v1/portfolios/",
            max(200, args.n // 10),
            HTTP_X_API_KEY=seed["api_key"],
        )
        print(f"GET /api/v1/portfolios/ (25 rows, API key): {api:.0f} us CPU per request")


if __name__ == "__main__":
    main()
