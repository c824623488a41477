"""Paired ratios: the headline fractions measured so that machine-load swings cancel out.

    .venv/bin/python bench/paired.py [--pairs 8] [--seconds 3] [--db codex_bench]

On a shared machine whose load swings by 5x within a minute, two endpoints measured a few
minutes apart can see very different machines, even with round-robin runs. Here each ratio is
taken over *pairs* of short wrk runs back to back (A then B, then B then A, alternating the order),
one ratio per pair, and the median ratio (with the lowest and highest) is reported. Needs the
scratch database seeded by ``make bench``. ``run_all.py`` calls ``measure_pairs`` after its
round-robin runs; run alone, this script prints the table and puts it in docs/benchmarks.md.
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

PAIRS = [
    ("routing", "c0", ">= 50 %"),
    ("portfolios", "c1", ">= 40 %"),
    ("routing", "routing_before", "fix: before -> after"),
    ("portfolios", "portfolios_before", "fix: before -> after"),
    ("dashboard", "dashboard_before", "fix: before -> after"),
]


def measure_pairs(eps_by_key: dict, ports: dict, *, pairs: int, seconds: int) -> list[dict]:
    out = []
    for a_key, b_key, target in PAIRS:
        a, b = eps_by_key.get(a_key), eps_by_key.get(b_key)
        if a is None or b is None:
            continue
        ratios = []
        for i in range(pairs):
            first, second = (a, b) if i % 2 == 0 else (b, a)
            rates = {}
            for e in (first, second):
                load.settle()  # the previous run's queued requests drained first
                r = load.wrk_peak(
                    f"http://127.0.0.1:{ports[e.server]}{e.path}", host=e.host, headers=e.headers, seconds=seconds
                )
                rates[e.key] = r.rps
            ratios.append(rates[a_key] / rates[b_key])
        out.append(
            {
                "a": a_key,
                "b": b_key,
                "label_a": a.label,
                "target": target,
                "median": statistics.median(ratios),
                "low": min(ratios),
                "high": max(ratios),
                "pairs": pairs,
            }
        )
        print(f"  paired {a_key}/{b_key}: median {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")
    return out


def pairs_table(rows: list[dict], *, seconds: int) -> str:
    body = []
    for r in rows:
        ratio = f"**{r['median'] * 100:.0f} %** ({r['low'] * 100:.0f}-{r['high'] * 100:.0f} %)"
        if r["target"].startswith(">="):
            limit = float(r["target"].split()[1]) / 100
            verdict = "met" if r["median"] >= limit else "**missed**"
            body.append([f"{r['label_a']} / {r['b'].upper()}", ratio, r["target"], verdict])
        else:
            body.append(
                [f"{r['label_a']}: after / before", f"x {r['median']:.2f} ({r['low']:.2f}-{r['high']:.2f})", "", ""]
            )
    n = rows[0]["pairs"] if rows else 0
    return (
        f"Paired ratios ({n} pairs of back-to-back {seconds}-s wrk runs per line, order alternated; median,"
        " lowest-highest in brackets): the load-robust form of the fractions above.\n\n"
        + report.md_table(["ratio", "median (range)", "target", "verdict"], body)
    )


def main() -> None:
    from bench.run_all import PORTS, endpoints, start_servers

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--db", default="codex_bench")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    seed = json.loads((ROOT / ".data" / "bench" / f"seed-{args.db}.json").read_text())
    redis = db.redis_url()
    eps = {e.key: e for e in endpoints(seed)}
    for key in ("routing", "portfolios", "dashboard"):
        e = eps[key]
        eps[f"{key}_before"] = type(e)(f"{key}_before", e.label, "before", e.path, e.host, e.headers)
    servers = start_servers(db.database_url(args.db), redis, before=True)
    with contextlib.ExitStack() as stack:
        for server in servers.values():
            stack.enter_context(server)
        for e in eps.values():
            load.wrk_peak(f"http://127.0.0.1:{PORTS[e.server]}{e.path}", host=e.host, headers=e.headers, seconds=1)
        loads = [report.load_average()]
        rows = measure_pairs(eps, PORTS, pairs=args.pairs, seconds=args.seconds)
        loads.append(report.load_average())
    text = pairs_table(rows, seconds=args.seconds) + f"\n\nLoad average before and after: {' → '.join(loads)}.\n"
    print(text)
    (ROOT / "bench" / "results" / "paired.json").write_text(json.dumps({"rows": rows, "loads": loads}, indent=2))
    if not args.no_write:
        doc = report.read()
        section = report.section_of(doc, "Ceilings and API throughput") or ""
        marker = "\n**Where the gap to the ceilings comes from.**"
        start = section.find("Paired ratios (")
        if start != -1:
            section = section[:start].rstrip() + "\n" + section[section.find(marker) :]
        if marker in section:
            section = section.replace(marker, "\n" + text + marker, 1)
        body = section.split("\n", 1)[1] if section else text
        report.DOC.write_text(report.reorder(report.replace_section(doc, "Ceilings and API throughput", body)))
        update_summary(rows, args.db)


def update_summary(rows: list[dict], db_name: str) -> None:
    """Put the paired medians into the summary of targets (round-robin figure kept in brackets)."""
    import subprocess

    from bench.run_all import HTTP_SUMMARY, PY

    if not HTTP_SUMMARY.exists():
        return
    saved = json.loads(HTTP_SUMMARY.read_text())
    for r in rows:
        if not r["target"].startswith(">="):
            continue
        limit = float(r["target"].split()[1]) / 100
        for row in saved["rows"]:
            if row[0] == r["label_a"]:
                round_robin = row[1].split(" (paired")[0].split("; round-robin ")[-1]
                row[1] = f"{r['median'] * 100:.0f} % of {r['b'].upper()} (paired median; round-robin {round_robin})"
                row[3] = "met" if r["median"] >= limit else "**missed**"
    HTTP_SUMMARY.write_text(json.dumps(saved, indent=2))
    subprocess.run([PY, str(ROOT / "bench" / "run_all.py"), "--doc-only", "--db", db_name], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
