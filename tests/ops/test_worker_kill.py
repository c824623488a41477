"""The worker-kill drill, small: 200 tasks, SIGKILL a pool child then the whole worker, restart.

Runs bench/drill_worker_kill.py against the test database with its own Redis (a private
redis-server: the embedded one's binary, or DRILL_REDIS_URL), then checks that the drill left none
of the processes it started running.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .helpers import database_url_for_subprocesses, processes_under

ROOT = Path(__file__).resolve().parents[2]


def test_every_task_takes_effect_exactly_once_across_worker_kills(db):
    env = {**os.environ, "DATABASE_URL": database_url_for_subprocesses()}
    env.pop("DATABASE_TEST_NAME", None)
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "drill_worker_kill.py"),
            "--tasks",
            "200",
            "--firm",
            "acme",
            "--visibility-timeout",
            "2",
            "--work-ms",
            "40",  # long enough that a kill finds tasks mid-run on a busy machine too
            "--json",
            "--timeout",
            "90",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=150,
    )
    assert proc.stdout.strip(), proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["checks"] == {name: True for name in result["checks"]}, json.dumps(result, sort_keys=True)
    assert result["effects"] == result["distinct_effects"] == 200
    assert result["worker_killed_at_effects"] < 200
    assert result["attempts"] > 200  # some tasks really ran twice; the effect still happened once
    assert proc.returncode == 0
    # Stop means stopped: neither its Redis nor any worker of the drill is left running.
    assert result["workdir"] and processes_under(result["workdir"]) == []  # its Redis
    assert result["queue"] and processes_under(result["queue"]) == []  # its workers (-Q <queue>)
