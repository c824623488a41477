"""``--reuse-db`` of the benches (bench/run_all.py ``prepare_database``) never drops a database.

A transient ``migrate_all`` failure once fell through to a re-seed, which dropped the shared
``codex_bench_pages``. The database calls and the subprocesses are replaced here: nothing real is
dropped, migrated or seeded.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from bench import run_all


@pytest.fixture
def bench(monkeypatch, tmp_path):
    calls: list[str] = []
    outcome = {"migrate": 0}
    monkeypatch.setattr(run_all, "ROOT", tmp_path)
    monkeypatch.setattr(run_all.db, "exists", lambda name: True)
    monkeypatch.setattr(run_all.db, "database_url", lambda name: f"postgres://bench/{name}")

    def recreate(name):
        calls.append(f"recreate {name}")
        return f"postgres://bench/{name}"

    def run(cmd, env=None, timeout=1800):
        step = "migrate" if "migrate_all" in cmd else "seed"
        calls.append(step)
        if step == "seed":
            out = cmd[cmd.index("--out") + 1]
            with open(out, "w") as f:
                json.dump({"seeded": True, "timings": {}}, f)
        return subprocess.CompletedProcess(cmd, outcome.get(step, 0), stdout="", stderr=f"{step} said no")

    monkeypatch.setattr(run_all.db, "recreate", recreate)
    monkeypatch.setattr(run_all, "run", run)
    seed_file = tmp_path / ".data" / "bench" / "seed-codex_bench_x.json"
    seed_file.parent.mkdir(parents=True)
    return calls, outcome, seed_file


def test_a_reuse_whose_migration_fails_stops_and_drops_nothing(bench):
    calls, outcome, seed_file = bench
    seed_file.write_text(json.dumps({"seeded": "earlier"}))
    outcome["migrate"] = 1
    with pytest.raises(SystemExit, match="migrate_all failed on codex_bench_x; nothing was dropped"):
        run_all.prepare_database("codex_bench_x", ["--big"], reuse=True)
    assert calls == ["migrate"]


def test_a_reuse_without_its_seed_file_stops_and_drops_nothing(bench):
    calls, _outcome, _seed_file = bench
    with pytest.raises(SystemExit, match="seed file .* does not; nothing was dropped"):
        run_all.prepare_database("codex_bench_x", ["--big"], reuse=True)
    assert calls == []


def test_a_reuse_that_migrates_keeps_the_database(bench):
    calls, _outcome, seed_file = bench
    seed_file.write_text(json.dumps({"seeded": "earlier"}))
    run_all.prepare_database("codex_bench_x", ["--big"], reuse=True)
    assert calls == ["migrate", "seed"]  # the fresh session, no recreate


def test_without_reuse_the_database_is_seeded_afresh(bench):
    calls, _outcome, _seed_file = bench
    assert run_all.prepare_database("codex_bench_x", ["--big"], reuse=False)["seeded"] is True
    assert calls == ["recreate codex_bench_x", "migrate", "seed"]
