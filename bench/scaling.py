"""The scaling curve of docs/benchmarks.md: how the HTTP figures move with firms and with rows.

    .venv/bin/python bench/scaling.py [--firms 10,200,1000] [--rows 1000,10000,100000] [--seconds 5] [--runs 2]
    (also: ``make bench`` with ``BENCH_ARGS=--scaling``, i.e. ``bench/run_all.py --scaling``)

Two axes, each on scratch databases of its own (``codex_bench_scale_*``), same servers and load as
``run_all.py`` but shorter runs (2 cores: bounded):

- **firms**: one database grown step by step (10, then 200, then 1,000 small firms provisioned by
  ``tenant_provision``) next to one large firm with 2,000 contacts, 50 portfolios and 2,000
  transactions; the figures are measured after each step;
- **rows**: for each size N (1,000, 10,000, 100,000) a fresh database with 10 firms and a large firm
  holding N contacts and N transactions over 50 portfolios (N / 50 per portfolio).

Each figure is the median of ``--runs`` wrk runs of ``--seconds``; ratios are to the same step's
C0 and C1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import db, report  # noqa: E402
from bench.harness.server import BENCH_ENCRYPTION_KEY, BENCH_SECRET_KEY  # noqa: E402
from bench.run_all import PY, RESULTS, measure_http, prepare_database, run  # noqa: E402

KEYS = ["c0", "c1", "routing", "portfolios", "contacts_search", "performance", "dashboard"]


def grow_firms(name: str, firms: int) -> float:
    env = {
        **os.environ,
        "DATABASE_URL": db.database_url(name),
        "DJANGO_SECRET_KEY": BENCH_SECRET_KEY,
        "CODEX_ENCRYPTION_KEYS": BENCH_ENCRYPTION_KEY,
    }
    started = time.perf_counter()
    done = run(
        [PY, "bench/seed_bench.py", f"--firms={firms}", "--only-firms", "--out", "/dev/null"], env=env, timeout=3600
    )
    if done.returncode != 0:
        raise SystemExit(f"growing to {firms} firms failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def point(label: str, seed: dict, name: str, args, redis: str) -> dict:
    if redis:
        db.redis_flush(redis)
    http = measure_http(
        seed, runs=args.runs, seconds=args.seconds, redis=redis, url=db.database_url(name), constant=False
    )
    m = http["medians"]
    row = {"label": label, "load": http["loads"][-1]}
    for key in KEYS:
        r = m.get(key)
        row[key] = None if r is None else {"rps": round(r.rps, 1), "p99": round(r.p99_ms, 1)}
    print(json.dumps(row), flush=True)
    return row


def cell(row: dict, key: str, ceiling: str | None = None) -> str:
    r = row.get(key)
    if r is None:
        return "n/a"
    text = f"{r['rps']:,.0f}"
    if ceiling and row.get(ceiling):
        text += f" ({r['rps'] / row[ceiling]['rps'] * 100:.0f} %)"
    return f"{text}, p99 {r['p99']:.0f} ms"


def table(rows: list[dict], first: str) -> str:
    header = [
        first,
        "C0 req/s",
        "C1 req/s",
        "routing (% of C0)",
        "portfolios API (% of C1)",
        "contacts search",
        "performance",
        "dashboard",
        "load avg",
    ]
    body = [
        [
            r["label"],
            cell(r, "c0"),
            cell(r, "c1"),
            cell(r, "routing", "c0"),
            cell(r, "portfolios", "c1"),
            cell(r, "contacts_search", "c1"),
            cell(r, "performance", "c1"),
            cell(r, "dashboard", "c1"),
            r["load"],
        ]
        for r in rows
    ]
    return report.md_table(header, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--firms", default="10,200,1000")
    parser.add_argument("--rows", default="1000,10000,100000")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    redis = db.redis_url()
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    firm_steps = [int(x) for x in args.firms.split(",") if x]
    row_steps = [int(x) for x in args.rows.split(",") if x]

    firm_rows = []
    if not firm_steps and (RESULTS / "scaling.json").exists():  # re-running one axis keeps the other
        firm_rows = json.loads((RESULTS / "scaling.json").read_text())["firms"]
    if firm_steps:
        name = "codex_bench_scale_firms"
        seed = prepare_database(
            name,
            [f"--firms={firm_steps[0]}", "--contacts=2000", "--portfolios=50", "--transactions=2000"],
            reuse=False,
        )
        for step in firm_steps:
            grown = grow_firms(name, step) if step > firm_steps[0] else 0.0
            print(f"{step} firms (+{grown:.0f} s to provision)", flush=True)
            row = point(f"{step + 1:,} firms", seed, name, args, redis)
            row["provision_seconds"] = round(grown)
            firm_rows.append(row)

    size_rows = []
    for n in row_steps:
        name = f"codex_bench_scale_rows_{n}"
        seed = prepare_database(
            name, ["--firms=10", f"--contacts={n}", "--portfolios=50", f"--transactions={n}"], reuse=False
        )
        row = point(f"{n:,} contacts, {n:,} txns ({n // 50:,}/portfolio)", seed, name, args, redis)
        row["seed_seconds"] = seed.get("seed_seconds")
        size_rows.append(row)

    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scaling.json").write_text(
        json.dumps({"when": started, "firms": firm_rows, "rows": size_rows}, indent=2)
    )
    body = (
        f"`bench/scaling.py --firms {args.firms} --rows {args.rows} --seconds {args.seconds} --runs {args.runs}`,"
        f" started {started} UTC, same servers and cache ({'Redis' if redis else 'database cache'}) as above;"
        f" each cell is req/s (median of {args.runs} wrk runs of {args.seconds} s) and p99 at that peak; the"
        " percentages are of the same step's C0 (routing) or C1. Shorter runs than the main table (2 cores:"
        " the whole curve must fit in half an hour); the load average of each step is in the last column;"
        " compare the ratios, not the absolute rates.\n\n"
        "**From 10 to 1,000 firms** (one database grown step by step; the large firm keeps 2,000 contacts,"
        " 50 portfolios, 2,000 transactions):\n\n"
        + table(firm_rows, "firms")
        + "\n\n**From 1,000 to 100,000 rows** (a fresh database per size, 11 firms; N contacts and N"
        " transactions in the large firm; 50 portfolios):\n\n" + table(size_rows, "rows") + "\n" + READING
    )
    print(body)
    if not args.no_write:
        text = report.read()
        text = report.replace_section(text, "Scaling curve", body, after="Profile and fix")
        report.DOC.write_text(report.reorder(text))


READING = """
How to read it: routing and the portfolio list do the same work per request whatever the number of
firms or rows (the firm comes from the two-level cache, the list is one page query), so their rows
stay flat. The others grow with the data by design: the contacts list's `?search=` is a substring
filter (`icontains` over name, e-mail, phone and company, a sequential scan: it slows in proportion
to the contacts; the CRM search `/api/v1/search/` uses the word index instead, see "CRM"), and the
performance endpoint and the dashboard replay the whole ledger of a portfolio (2,000 transactions
each at 100,000 rows).
"""


if __name__ == "__main__":
    main()
