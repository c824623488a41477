"""When to try a failed delivery again: exponential backoff with jitter, for a bounded window.

Pure functions (no ORM): the n-th retry waits ``base * 4**(n-1)`` seconds, capped at ``cap``, times a
random factor in [0.8, 1.2) so that many deliveries failing together do not come back together.
With the defaults (5 s, cap 8 h) the schedule is about 5 s, 20 s, 80 s, 5 min, 21 min, 85 min,
5.7 h, 8 h, 8 h: nine retries, the last about 23.6 h after the first attempt; a retry that would
fall after the window (24 h) is not made and the delivery fails.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def retry_delay(attempt: int, *, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after the ``attempt``-th failed attempt (1 = the first attempt failed)."""
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    raw = min(cap, base * 4 ** min(attempt - 1, 32))
    return raw * (0.8 + 0.4 * rand())


def gives_up(*, elapsed: float, delay: float, window: float) -> bool:
    """True when the next try (``delay`` seconds from now, ``elapsed`` seconds after the first
    attempt) would fall outside the retry window."""
    return elapsed + delay > window
