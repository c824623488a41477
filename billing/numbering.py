"""Gapless sequential numbers, for platform invoices and for the firms' own fee invoices.

A counter is a table ``(year primary key, last_number)``. ``next_gapless_number`` increments the
year's row with one ``UPDATE ... RETURNING``: the row stays locked until the caller's transaction
ends, so numbers are handed out one transaction at a time, and a rollback hands the number back
(no gap). Call it inside ``transaction.atomic()``, as late as possible in the transaction.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Model


def next_gapless_number(*, counter: type[Model], year: int) -> int:
    """The next number of ``year`` in ``counter``'s table (in the current schema). The first call
    of a year creates the row; a concurrent creator wins and this call then waits on its lock."""
    table = connection.ops.quote_name(counter._meta.db_table)
    bump = f"UPDATE {table} SET last_number = last_number + 1 WHERE year = %s RETURNING last_number"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(bump, [year])
        row = cursor.fetchone()
        if row is None:
            cursor.execute(f"INSERT INTO {table} (year, last_number) VALUES (%s, 0) ON CONFLICT DO NOTHING", [year])  # noqa: S608
            cursor.execute(bump, [year])
            row = cursor.fetchone()
    return int(row[0])
