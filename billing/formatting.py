"""How billing shows numbers to people, through the one formatting layer (``codex.formatting``)."""

from __future__ import annotations

from codex import formatting


def display_money(amount, currency: str = "USD") -> str:
    """``1234.5, "USD"`` -> ``$1,234.50``; ``1235, "JPY"`` -> ``¥1,235``. Prices finer than the minor
    unit (a per-1,000 price of 0.0125) keep their digits instead of being rounded away."""
    return formatting.price(amount, currency)


def display_count(value) -> str:
    """``1000000`` -> ``1,000,000``; None (no limit) -> ``Unlimited``."""
    if value is None:
        return "Unlimited"
    return formatting.count(value)
