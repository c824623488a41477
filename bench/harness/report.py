"""Machine facts and the sections of docs/benchmarks.md that the harness owns.

The file is shared: each benchmark script replaces only its own ``## <title>`` section (up to the
next ``## ``) and leaves the others as they are. The text before the first ``## `` is the harness's.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess

from .db import ROOT

DOC = ROOT / "docs" / "benchmarks.md"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def _lines(path: str) -> list[str]:
    with open(path) as handle:
        return handle.readlines()


def machine() -> dict[str, str]:
    cpu, mem = platform.processor(), ""
    try:
        cpu = next(
            (line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo") if line.startswith("model name")), cpu
        )
        mem = next(
            (f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB" for line in _lines("/proc/meminfo") if "MemTotal" in line),
            "",
        )
    except OSError:
        pass
    wrk = (
        subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
        if shutil.which("wrk")
        else None
    )
    wrk_version = (wrk.stdout or wrk.stderr).split("[")[0].strip() if wrk else "not installed"
    redis = ""
    if shutil.which("redis-server"):
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=False).stdout
        match = re.search(r"v=(\S+)", out)
        redis = match.group(1) if match else out.strip()
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "wrk": wrk_version,
        "redis": redis,
    }


def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def read() -> str:
    return DOC.read_text() if DOC.exists() else "# Benchmarks\n"


def replace_top(text: str, top: str) -> str:
    first = text.find("\n## ")
    rest = "" if first == -1 else text[first:]
    return top.rstrip() + "\n" + rest


def replace_section(text: str, title: str, body: str, *, after: str | None = None) -> str:
    """Replace ``## title`` (up to the next ``## ``) with ``body``; add it (after ``## after``) if absent."""
    section = f"## {title}\n\n{body.strip()}\n"
    start = text.find(f"\n## {title}\n")
    if start != -1:
        end = text.find("\n## ", start + 1)
        return text[: start + 1] + section + ("" if end == -1 else "\n" + text[end + 1 :])
    if after is not None:
        anchor = text.find(f"\n## {after}\n")
        if anchor != -1:
            end = text.find("\n## ", anchor + 1)
            if end != -1:
                return text[: end + 1] + section + "\n" + text[end + 1 :]
    return text.rstrip() + "\n\n" + section


def section_of(text: str, title: str) -> str | None:
    start = text.find(f"\n## {title}\n")
    if start == -1:
        return None
    end = text.find("\n## ", start + 1)
    return text[start + 1 : None if end == -1 else end + 1]


def target_rows(markdown: str) -> list[list[str]]:
    """Rows of every Markdown table in ``markdown`` whose header has a "target" column and whose
    target cell is filled: ``[measure, result, target]``. How the other scripts' figures reach the
    summary table without each script needing an API of its own."""
    found: list[list[str]] = []
    header: list[str] | None = None
    for line in markdown.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if all(set(c) <= set("-: ") for c in cells):
            continue
        target_col = next((i for i, h in enumerate(header) if "target" in h), None)
        if target_col is None or target_col >= len(cells) or not cells[target_col]:
            continue
        result_col = next((i for i, h in enumerate(header) if h in {"result", "measured", "value", "median"}), 1)
        found.append([cells[0], cells[result_col] if result_col < len(cells) else "", cells[target_col]])
    return found


HARNESS_SECTIONS = [
    "Summary of targets",
    "Ceilings and API throughput",
    "Per-request work",
    "Profile and fix",
    "Scaling curve",
]


def reorder(text: str, first: list[str] = HARNESS_SECTIONS) -> str:
    """The harness's sections right after the top, in ``first``'s order; the others after them as they were."""
    top_end = text.find("\n## ")
    if top_end == -1:
        return text
    top, rest = text[: top_end + 1], text[top_end + 1 :]
    chunks = ["## " + c for c in rest.split("\n## ")]
    chunks[0] = chunks[0][3:]  # the first chunk already starts with "## "
    by_title = {c.split("\n", 1)[0][3:].strip(): c.rstrip() + "\n" for c in chunks}
    ordered = [by_title[t] for t in first if t in by_title]
    ordered += [c for t, c in by_title.items() if t not in first]
    return top + "\n".join(ordered)
