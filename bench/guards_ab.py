"""The two guard ratios of brief §7 for two checkouts of Codex in one run, interleaved.

    .venv/bin/python bench/guards_ab.py --before ead2e74 [--rounds 8] [--seconds 3]
        [--db codex_bench] [--redis-db 11] [--port-base 8701]

``--before`` is a commit (a detached worktree of it is made under ``.data/bench/``, sharing this
checkout's ``.venv``, and kept for the next run) or the directory of another checkout with its own
``.venv``. ``ead2e74`` is main just before issue 18 brought the stock request path back. Needs wrk
and the scratch database seeded by ``make bench`` (``bench/run_all.py``; ``--reuse-db`` reuses it).

Guards (floors, not targets): the C0 view served through Codex's whole stack at or above 50 % of C0,
and ``GET /api/v1/portfolios/`` (API key, 25 rows) at or above 40 % of C1. Here both are measured for
this checkout ("after") and for another one ("before", e.g. ``git worktree add /tmp/x <commit>``)
on one machine in one run, so that a change's effect is not lost in the load of a shared machine:

- servers: C0 and C1 from this checkout (the ceilings, no Codex code), Codex from each checkout,
  each with its own checkout's ``gunicorn.conf.py``, 2 sync workers, production settings, one Redis
  database and the scratch database seeded by ``make bench`` (``bench/run_all.py``);
- a round runs the ceiling, "before" and "after" back to back (short wrk peaks, the order rotated
  from round to round, the machine left to settle before each run) and gives one ratio per
  checkout; the median of the rounds and their lowest and highest are printed, and written to
  ``bench/results/guards_ab.json``. docs/benchmarks.md is edited by hand from it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import db, load, report  # noqa: E402
from bench.harness.server import Gunicorn, production_env  # noqa: E402

GUARDS = [("routing", "c0", 0.50), ("portfolios", "c1", 0.40)]


def _collectstatic(root: Path, env: dict) -> None:
    import subprocess

    done = subprocess.run(
        [str(root / ".venv" / "bin" / "python"), "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=root,  # that checkout's code, not this one's
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"collectstatic failed in {root}:\n{done.stderr[-2000:]}")


def _before_checkout(ref: str) -> Path:
    """The checkout ``--before`` names: a directory as it is, or a worktree of the commit ``ref``."""
    import subprocess

    path = Path(ref)
    if path.is_dir():
        return path.resolve()
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--short", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if sha.returncode != 0:
        raise SystemExit(f"--before {ref!r}: neither a directory nor a commit of this repository")
    tree = ROOT / ".data" / "bench" / f"guards-before-{sha.stdout.strip()}"
    if not tree.exists():
        tree.parent.mkdir(parents=True, exist_ok=True)
        made = subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), sha.stdout.strip()],
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode != 0:
            raise SystemExit(f"git worktree add failed:\n{made.stderr}")
    venv = tree / ".venv"
    if not venv.exists():
        venv.symlink_to((ROOT / ".venv").resolve())
    return tree


def main() -> None:
    from bench.run_all import API_RATE_FOR_BENCH, endpoints

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="a commit (e.g. ead2e74), or another checkout with its .venv")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--db", default="codex_bench")
    parser.add_argument("--redis-db", type=int, default=11)
    parser.add_argument("--port-base", type=int, default=8701)
    args = parser.parse_args()
    import shutil

    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    seed_file = ROOT / ".data" / "bench" / f"seed-{args.db}.json"
    if not seed_file.exists() or not db.exists(args.db):
        raise SystemExit(f"no seeded database {args.db}: run `make bench` first (it seeds and keeps it)")
    before_root = _before_checkout(args.before)
    seed = json.loads(seed_file.read_text())
    redis = db.redis_url(db=args.redis_db)
    if not redis:
        raise SystemExit("no Redis on 127.0.0.1:6379")
    codex_env = production_env(
        database_url=db.database_url(args.db),
        redis_url=redis,
        # GUNICORN_ACCESSLOG: a checkout from before the stock path (ead2e74) logs every request
        # twice unless told not to (its gunicorn.conf.py defaults to "-"); today's has it off.
        extra={"CODEX_API_RATE": API_RATE_FOR_BENCH, "GUNICORN_ACCESSLOG": ""},
    )
    for root in (ROOT, before_root):
        _collectstatic(root, codex_env)
    c0_env = {k: v for k, v in codex_env.items() if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_"))}
    c0_env["DJANGO_SETTINGS_MODULE"] = "bench.ceiling_settings"
    c1_env = {**codex_env, "DJANGO_SETTINGS_MODULE": "bench.ceiling_firm_settings"}
    ports = {name: args.port_base + i for i, name in enumerate(("c0", "c1", "after", "before"))}
    servers = [
        Gunicorn("ab-c0", port=ports["c0"], env=c0_env, app="bench.ceiling_wsgi:application"),
        Gunicorn("ab-c1", port=ports["c1"], env=c1_env, app="bench.ceiling_wsgi:application"),
        Gunicorn("ab-after", port=ports["after"], env=codex_env),
        Gunicorn("ab-before", port=ports["before"], env=codex_env, root=before_root),
    ]
    eps = {e.key: e for e in endpoints(seed)}

    def peak(server: str, key: str, seconds: int) -> float:
        e = eps[key]
        load.settle()
        return load.wrk_peak(
            f"http://127.0.0.1:{ports[server]}{e.path}", host=e.host, headers=e.headers, seconds=seconds
        ).rps

    rows = []
    with contextlib.ExitStack() as stack:
        for server in servers:
            stack.enter_context(server)
        for key, ceiling, _floor in GUARDS:  # warm every worker: caches, connections, imports
            for server in ("after", "before"):
                peak(server, key, 1)
            peak(ceiling, ceiling, 1)
        loads = [report.load_average()]
        for key, ceiling, floor in GUARDS:
            ratios: dict[str, list[float]] = {"before": [], "after": []}
            rates: dict[str, list[float]] = {"before": [], "after": [], ceiling: []}
            order = [ceiling, "before", "after"]
            for i in range(args.rounds):
                turn = order[i % 3 :] + order[: i % 3]
                got = {s: peak(s, ceiling if s == ceiling else key, args.seconds) for s in turn}
                for s in ("before", "after"):
                    ratios[s].append(got[s] / got[ceiling])
                for s, rps in got.items():
                    rates[s].append(rps)
            row = {"guard": key, "ceiling": ceiling, "floor": floor, "rounds": args.rounds}
            for s in ("before", "after"):
                row[s] = {"median": statistics.median(ratios[s]), "low": min(ratios[s]), "high": max(ratios[s])}
            row["rps_median"] = {s: statistics.median(v) for s, v in rates.items()}
            rows.append(row)
            print(
                f"{key}/{ceiling}: before {row['before']['median']:.0%} ({row['before']['low']:.0%}-"
                f"{row['before']['high']:.0%}), after {row['after']['median']:.0%} ({row['after']['low']:.0%}-"
                f"{row['after']['high']:.0%}); req/s medians {row['rps_median']}",
                flush=True,
            )
        loads.append(report.load_average())
    import subprocess

    def commit(root: Path) -> str:
        return subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()

    out = {"rows": rows, "loads": loads, "seconds": args.seconds, "before": commit(before_root), "after": commit(ROOT)}
    (ROOT / "bench" / "results" / "guards_ab.json").write_text(json.dumps(out, indent=2))
    print(f"load average before and after: {' -> '.join(loads)}")


if __name__ == "__main__":
    main()
