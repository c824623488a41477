"""The load the fault drills put on a ``Stack`` while they break something: client threads in a
closed loop, each request timed and kept as a sample, every write answered 201 remembered, and
the report that follows (the phase table, the slowest answer per phase, the result printout)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from .stack import Stack, http

# (seconds since the start, kind, status, seconds taken, the first 300 bytes of the body)
Sample = tuple[float, str, int, float, bytes]


@dataclass
class ClientLoad:
    """``threads`` clients cycling through ``kinds``: "list" (GET /api/v1/portfolios/ with the
    stack's API key), "txn" (POST a buy of one unit to the stack's portfolio) and any other name
    ``x`` as GET /x on the base host (``health``, ``ready``). A client pauses ``pause_after_error``
    seconds after an answer that is not 2xx, so a refusing server is not hammered."""

    stack: Stack
    kinds: tuple[str, ...]
    threads: int = 4
    note_prefix: str = "d"
    pause_after_error: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    acked: set[int] = field(default_factory=set)
    load_start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_end: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _request(self, kind: str, n: int, i: int) -> tuple[int, bytes, float]:
        stack = self.stack
        if kind == "list":
            return stack.api("GET", "/api/v1/portfolios/")
        if kind == "txn":
            return stack.api(
                "POST",
                f"/api/v1/portfolios/{stack.portfolio.pk}/transactions/",
                {
                    "kind": "buy",
                    "trade_date": "2026-01-05",
                    "instrument": stack.instrument.pk,
                    "quantity": "1",
                    "price": "10",
                    "currency": "USD",
                    "note": f"{self.note_prefix}{n}-{i}",
                },
            )
        return http("GET", f"{stack.base}/{kind}", "localhost")

    def _client(self, n: int) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            kind = self.kinds[i % len(self.kinds)]
            status, body, seconds = self._request(kind, n, i)
            with self._lock:
                self.samples.append((self.now(), kind, status, seconds, body[:300]))
                if kind == "txn" and status == 201:
                    self.acked.add(json.loads(body)["id"])
            if self.pause_after_error and not 200 <= status < 300:
                time.sleep(self.pause_after_error)

    def start(self) -> None:
        self.t0 = time.monotonic()
        self._threads = [threading.Thread(target=self._client, args=(n,)) for n in range(self.threads)]
        for t in self._threads:
            t.start()
        self.load_start = os.getloadavg()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)
        self.load_end = os.getloadavg()

    def by_phase(
        self, phase: Callable[[float], str], *, example: Callable[[str, int], bool]
    ) -> tuple[dict, dict, dict]:
        """(statuses per phase and kind, slowest answer per (phase, kind), one body per failing
        (kind, status) where ``example(phase, status)`` says it is worth showing)."""
        table: dict = defaultdict(lambda: defaultdict(Counter))
        slowest: dict = defaultdict(float)
        examples: dict = {}
        for t, kind, status, seconds, body in self.samples:
            p = phase(t)
            table[p][kind][status] += 1
            slowest[(p, kind)] = max(slowest[(p, kind)], seconds)
            if example(p, status):
                examples.setdefault(f"{kind} {status}", body.decode(errors="replace"))
        return table, slowest, examples

    def all_ok_after(self, t_from: float) -> bool:
        """Every kind answered only 2xx from ``t_from`` on."""
        return all(200 <= s < 300 for t, _k, s, _, _ in self.samples if t >= t_from)

    def load_averages(self) -> dict:
        return {
            "load_average_start": [round(x, 2) for x in self.load_start],
            "load_average_end": [round(x, 2) for x in self.load_end],
        }


def print_result(result: dict, *, as_json: bool) -> int:
    """Print a drill's result (JSON or one line per figure and a PASS/FAIL per check); exit status."""
    if as_json:
        print(json.dumps(result, default=str))
    else:
        for key, value in result.items():
            if key != "checks":
                print(f"{key:>34}: {value}")
        for name, passed in result["checks"].items():
            print(f"  [{'PASS' if passed else 'FAIL'}] {name}")
    return 0 if result["ok"] else 1
