"""Instructions per request, counted by callgrind: a cost that does not move with the machine's load.

    .venv/bin/python bench/instructions.py [--db codex_bench] [-n 300] [--target c0 stack api c1]
                                           [--drop RequestLogMiddleware ...]

Needs valgrind (Debian: ``apt-get install valgrind``) and the scratch database seeded by
``make bench`` (its seed file gives the firm host and API key). For each target a fresh process runs
under ``valgrind --tool=callgrind``: it builds Django's WSGI handler with the target's settings
(production settings with Redis for Codex, as ``make bench`` serves them), calls it 100 times to warm
every cache, freezes the garbage collector's start-up objects as ``gunicorn.conf.py`` does, then calls
it ``-n`` times between two ``os.getppid()`` calls, at which callgrind dumps its counters
(``--dump-before=getppid``): the middle dump holds exactly the measured requests. No gunicorn, no
network: what is counted is Django, the middleware stack and the view.

Targets:

- ``c0``: ``bench.ceiling_views.ping`` under ``bench.ceiling_settings`` (Django's 7 middlewares);
- ``stack``: the same view at ``/bench/ping/`` on the large firm's host through Codex's whole
  ``MIDDLEWARE`` (the request log at INFO, in JSON, written to /dev/null);
- ``api``: ``GET /api/v1/portfolios/`` with the seeded API key (25 rows);
- ``c1``: ``bench.ceiling_views.firm_rows`` under ``bench.ceiling_firm_settings``.
"""

from __future__ import annotations

import argparse
import glob
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGETS = {
    # name: (settings module, path, extra environ)
    "c0": ("bench.ceiling_settings", "/bench/ping/", {}),
    "stack": ("codex.settings", "/bench/ping/", {}),
    "api": ("codex.settings", "/api/v1/portfolios/", {"api_key": True}),
    "c1": ("bench.ceiling_firm_settings", "/bench/rows/", {}),
}


def _environ(host: str, path: str, api_key: str | None) -> dict:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": host,
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": host,
        "HTTP_USER_AGENT": "wrk",
        "HTTP_ACCEPT": "*/*",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if api_key:
        environ["HTTP_X_API_KEY"] = api_key
    return environ


def inner(target: str, db: str, n: int, redis_db: int, drop: tuple[str, ...] = ()) -> None:
    """The process callgrind watches."""
    import gc
    import json

    from bench.middleware_cost import setup

    settings_module, path, extra = TARGETS[target]
    os.environ["DJANGO_LOG_FORMAT"] = "json"
    seed = setup(db, settings_module, redis_db, log_level="INFO")
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application

    # Under callgrind a request runs ~50x slower, so the tenant cache's once-a-second generation
    # check and the 30-s life of its process-level entries (tenants/cache.py) would fall every
    # few requests instead of once per thousands, as at gunicorn's rate: both are moved out of the
    # measured window, so that every run counts the same work.
    settings.CODEX_TENANT_CACHE_CHECK_SECONDS = 3600
    settings.CODEX_TENANT_LOCAL_CACHE_SECONDS = 3600
    if drop:  # what a layer costs: the same run without it (--drop; names end a MIDDLEWARE path)
        kept = [path for path in settings.MIDDLEWARE if not path.endswith(drop)]
        if len(kept) != len(settings.MIDDLEWARE) - len(drop):
            raise SystemExit(f"--drop {drop}: not each of them names exactly one middleware")
        settings.MIDDLEWARE = kept

    app = get_wsgi_application()  # codex.wsgi is Django's handler, nothing added
    host = seed["host"] if target != "c0" else "localhost"
    api_key = seed["api_key"] if extra.get("api_key") else None

    def start_response(status, headers, exc_info=None):
        if not status.startswith("200"):
            raise SystemExit(f"{target}: {path} answered {status}")

    def call():
        environ = _environ(host, path, api_key)
        body = app(environ, start_response)
        for _ in body:
            pass
        body.close()

    for _ in range(100):
        call()
    gc.collect()
    gc.freeze()
    os.getppid()
    for _ in range(n):
        call()
    os.getppid()
    json.dumps(None)


def count(target: str, db: str, n: int, redis_db: int, drop: tuple[str, ...] = ()) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        with open(os.devnull, "w") as devnull:
            subprocess.run(
                [
                    "valgrind",
                    "--tool=callgrind",
                    "--dump-before=getppid",
                    f"--callgrind-out-file={out}",
                    sys.executable,
                    __file__,
                    "--inner",
                    target,
                    "--db",
                    db,
                    "-n",
                    str(n),
                    "--redis-db",
                    str(redis_db),
                    *[arg for name in drop for arg in ("--drop", name)],
                ],
                check=True,
                env=env,
                stdout=devnull,
                stderr=subprocess.PIPE,
            )
        dumps = sorted(glob.glob(out + ".*"), key=lambda p: int(p.rsplit(".", 1)[1]))
        if len(dumps) < 2:
            raise SystemExit(f"{target}: callgrind wrote {len(dumps)} dumps, expected at least 2")
        # Dump 1 ends at the first getppid (start-up and warm-up), dump 2 at the second: the requests.
        for line in Path(dumps[1]).read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
        raise SystemExit(f"{target}: no totals in {dumps[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="codex_bench")
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--redis-db", type=int, default=12)
    parser.add_argument("--target", nargs="+", choices=sorted(TARGETS), default=["c0", "stack"])
    parser.add_argument(
        "--drop",
        action="append",
        default=[],
        help="leave out the middleware whose dotted path ends with this (repeatable): what it costs",
    )
    parser.add_argument("--inner", choices=sorted(TARGETS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args.inner, args.db, args.n, args.redis_db, tuple(args.drop))
        return
    results = {}
    for target in args.target:
        results[target] = count(target, args.db, args.n, args.redis_db, tuple(args.drop)) / args.n
        print(f"{target}: {results[target]:,.0f} instructions per request", flush=True)
    if "c0" in results and "stack" in results:
        print(f"stack / c0: {results['c0'] / results['stack']:.1%} (instruction ratio)")


if __name__ == "__main__":
    main()
