"""gunicorn settings, driven by environment variables (12-factor).

Sync workers only: django-tenants' schema switching is per connection and its async ORM path runs
in the public schema.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("GUNICORN_WORKERS", max(2, multiprocessing.cpu_count())))
worker_class = "sync"
threads = 1
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycle a worker after this many requests (a guard against slow leaks). Not lower: booting a worker
# costs about 1-2 s of CPU (Django and every app imported, caches cold), and at 5,000 requests a busy
# worker restarted every few seconds, losing a fifth of a node's capacity (docs/benchmarks.md).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "100000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "10000"))
# Off: Codex writes one JSON line per request itself (codex.observability, with request id, firm,
# user, route, status, duration); gunicorn's own access line would be a second one.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
proxy_allow_ips = forwarded_allow_ips
preload_app = os.environ.get("GUNICORN_PRELOAD", "false").lower() == "true"
wsgi_app = "codex.wsgi:application"


def on_starting(server):
    """Multi-process Prometheus metrics: start each run with an empty metrics directory."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        import pathlib

        path = pathlib.Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()


def child_exit(server, worker):
    """Let prometheus-client drop the gauges of a worker that has exited."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    """Once the worker has imported the app: move everything it holds for good (modules, URL
    patterns, settings, caches) out of the garbage collector's sight, so its collections walk only
    what requests create. About 140,000 objects; without this a full collection walks them all and
    collections cost twice as much per request (docs/benchmarks.md, "Profile and fix")."""
    import gc

    gc.collect()
    gc.freeze()
