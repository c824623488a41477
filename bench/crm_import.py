"""CRM import benchmark: 50,000 contacts from one CSV through the whole import engine (target < 30 s).

Read + auto-map (``crm.services.import_start``), preview with validation and duplicate lookup
(``import_configure``), commit all-or-nothing (``import_commit``), in a scratch database. Prints a
Markdown table; ``--write`` replaces the "CRM" section's import part in docs/benchmarks.md.

Then, at once (before autovacuum can tidy up), ``--searches`` searches of the search benchmark's mix
as the owner, one run each: what a user sees right after an import (the GIN indexes' pending lists,
decision 0201).

    .venv/bin/python bench/crm_import.py [--rows 50000] [--searches 100] [--write]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.crm_common import name_for, pg_facts, setup  # noqa: E402


def make_csv(rows: int, existing: int) -> bytes:
    out = io.StringIO()
    out.write("First name,Last name,Email,Phone,Company,Tags,Lifecycle,Source\n")
    for i in range(rows):
        first, last = name_for(i)
        # the first ``existing`` rows repeat addresses already in the CRM (duplicates to merge)
        email = f"person{i}@example.com"
        out.write(
            f"{first},{last},{email},+41 44 {i:07d},Company {i % 500},{'vip;' if i % 7 == 0 else ''}import,"
            f"{'client' if i % 10 == 0 else 'lead'},bench\n"
        )
    return out.getvalue().encode("utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--existing", type=int, default=1_000, help="rows that duplicate existing contacts")
    parser.add_argument("--searches", type=int, default=100, help="searches timed right after the commit")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    tenant, owner = setup(fresh=True)
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import connections
    from django_tenants.utils import schema_context

    from crm import imports, services
    from crm.models import Contact

    merges = []  # (seconds, pending pages) of the commit's merge of the GIN pending lists
    merge = imports.search_indexes_merge

    def timed_merge(kind: str) -> int:
        t = time.perf_counter()
        pages = merge(kind)
        merges.append((time.perf_counter() - t, pages))
        return pages

    imports.search_indexes_merge = timed_merge
    data = make_csv(args.rows, args.existing)
    with schema_context(tenant.schema_name):
        Contact.objects.bulk_create(
            Contact(first_name="Old", last_name=str(i), email=f"person{i}@example.com") for i in range(args.existing)
        )
        t0 = time.perf_counter()
        upload = SimpleUploadedFile("contacts.csv", data, content_type="text/csv")
        job = services.import_start(actor=owner, tenant=tenant, kind="contacts", upload=upload)
        t1 = time.perf_counter()
        preview = services.import_configure(actor=owner, job=job, duplicates="merge")
        t2 = time.perf_counter()
        assert not preview.errors, preview.errors[:5]
        report = services.import_commit(actor=owner, tenant=tenant, job=job)
        t3 = time.perf_counter()
        total_contacts = Contact.objects.count()
        search_ms = searches_after_import(owner, args.searches)
    assert report["created"] == args.rows - args.existing and report["merged"] == args.existing, report
    assert total_contacts == args.rows

    from bench.harness.report import load_average, md_table

    table = md_table(
        ["measure", "result", "target"],
        [
            [f"import {args.rows:,} contacts, whole flow (upload to commit)", f"{t3 - t0:.1f} s", "< 30 s"],
            ["read, decode and store the CSV", f"{t1 - t0:.1f} s", ""],
            ["preview (parse, validate, find duplicates)", f"{t2 - t1:.1f} s", ""],
            [f"commit ({report['created']:,} created, {report['merged']:,} merged)", f"{t3 - t2:.1f} s", ""],
            [
                f"  of which: merging the search indexes' pending lists ({sum(p for _s, p in merges):,} pages)",
                f"{sum(s for s, _p in merges):.1f} s",
                "",
            ],
            [
                f"right after it: {len(search_ms)} searches as the owner, p50 / p95 / max (one run each)",
                f"{pct(search_ms, 50):.1f} / {pct(search_ms, 95):.1f} / {max(search_ms):.1f} ms",
                "",
            ],
        ],
    )
    body = (
        f"`bench/crm_import.py`: {len(data) / 1e6:.1f} MB CSV, {args.rows:,} rows of which {args.existing:,} "
        f"duplicate existing contacts by e-mail (mode merge), through `crm.services.import_start` → "
        f"`import_configure` → `import_commit` (the engine in `codex/imports.py`). {pg_facts()}; "
        f"load average (1/5/15 min) at the end {load_average()}, 2 cores shared with other work.\n\n{table}\n"
    )
    print(body)
    if args.write:
        write_part("import", body)
    connections.close_all()


def searches_after_import(owner, n: int) -> list[float]:
    """Timings (ms) of ``n`` searches of the search benchmark's mix, one run each, started at once
    after the import's commit (no warm-up beyond the first query, no VACUUM)."""
    from bench.crm_search import queries
    from crm.selectors import crm_search

    timings = []
    for _kind, q in queries(n):
        t = time.perf_counter()
        crm_search(owner, q, 20)
        timings.append((time.perf_counter() - t) * 1000)
    return timings


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def write_part(part: str, body: str) -> None:
    """Replace this script's part of the "CRM" section, keeping the other script's part."""
    from bench.harness import report

    text = report.read()
    current = report.section_of(text, "CRM") or "## CRM\n\n"
    marker_start, marker_end = f"<!-- crm:{part} -->", f"<!-- /crm:{part} -->"
    block = f"{marker_start}\n{body.strip()}\n{marker_end}"
    inner = current.split("\n", 1)[1] if "\n" in current else ""
    if marker_start in inner:
        before, rest = inner.split(marker_start, 1)
        after = rest.split(marker_end, 1)[1] if marker_end in rest else ""
        inner = before + block + after
    else:
        inner = inner.rstrip() + "\n\n" + block + "\n"
    report.DOC.write_text(report.replace_section(text, "CRM", inner.strip()))


if __name__ == "__main__":
    main()
