"""What the portfolio reads share: constants, the preset names, a GC pause around big loads."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from decimal import Decimal
from functools import wraps

from .. import analytics

ZERO = Decimal(0)
ONE = Decimal(1)
FIRM_CURRENCY = "USD"
PRESETS = analytics.PRESETS
INSTRUMENT_FIELDS = ("id", "symbol", "name", "currency", "asset_class", "sector", "country", "exchange")


@contextmanager
def gc_paused():
    """Pause the cyclic garbage collector while a selector builds its data.

    Loading ten years of closes creates some 400,000 tracked objects (tuples, dates, Decimals);
    the collector would walk them again and again as they are allocated, for nothing: they hold
    no reference cycles and are freed by reference counting. Measured on the benchmark portfolio
    (bench/portfolio_analytics.py, interleaved runs): about 25 % of the selector's time. The
    previous state is restored on exit, so nesting is harmless."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _without_gc_pauses(fn):
    @wraps(fn)
    def wrapper(*args, **kwargs):
        with gc_paused():
            return fn(*args, **kwargs)

    return wrapper
