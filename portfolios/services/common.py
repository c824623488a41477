"""What the portfolio writes share: constants, the kinds, the acting user."""

from __future__ import annotations

from decimal import Decimal

from ..ledger import TXN_VALUES, ledger_of, txn_from_row, txn_from_tuple  # noqa: F401 (their home was here)
from ..models import (
    Kind,
)

ZERO = Decimal(0)
ONE = Decimal(1)
KIND_VALUES = frozenset(Kind.values)
# Cash kinds that may name the instrument they relate to (a dividend of a share, its withholding tax).
CASH_KINDS_WITH_INSTRUMENT = frozenset({Kind.DIVIDEND, Kind.INTEREST, Kind.FEE, Kind.TAX})


def _user_or_none(user):
    # API keys act for the firm, not for a person: their rows have no creator.
    return user if getattr(user, "pk", None) else None
