"""The new firm's onboarding checklist, computed from the firm's data so it ticks itself off.

No "done" flags are stored: each step is true as soon as the thing it asks for exists, and all four
are answered by a single query (so the dashboard's query count stays constant). A step whose app is
not installed yet is left out rather than shown as impossible.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from codex.db import current_schema
from crm.models import Contact
from portfolios.models import Transaction
from tenants.accounts.models import Invitation, User
from tenants.models import ApiKey


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    hint: str
    url: str
    done: bool


@dataclass(frozen=True)
class Checklist:
    steps: tuple[Step, ...]

    @property
    def done_count(self) -> int:
        return sum(1 for s in self.steps if s.done)

    @property
    def complete(self) -> bool:
        return all(s.done for s in self.steps)

    @property
    def progress_class(self) -> str:
        """CSS width class ``w0``..``w4`` (quarters): no inline style under the CSP."""
        if not self.steps:
            return "w4"
        return f"w{round(4 * self.done_count / len(self.steps))}"


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def onboarding_checklist(*, tenant) -> Checklist:
    """The four first steps of a firm, each ticked when its data exists. One query.

    Runs in the firm's schema (the active connection schema); API keys are read from the public
    schema, filtered by the firm.
    """
    firm = connection.ops.quote_name(current_schema())
    public = connection.ops.quote_name(settings.PUBLIC_SCHEMA_NAME)
    # Each entry: key, label, hint, url, SQL boolean expression.
    candidates: list[tuple[str, str, str, str, str]] = [
        (
            "colleague",
            "Invite a colleague",
            "Bring your team in: each person gets their own sign-in and role.",
            "/accounts/team/",
            f"(EXISTS (SELECT 1 FROM {firm}.{_table(Invitation)}) OR (SELECT count(*) FROM {firm}.{_table(User)}) > 1)",
        ),
        (
            "client",
            "Add a client",
            "Create the client's record; portfolios and deals hang off it.",
            "/crm/contacts/",
            f"EXISTS (SELECT 1 FROM {firm}.{_table(Contact)})",
        ),
        (
            "transactions",
            "Import transactions",
            "Upload a CSV of trades (or record them) so Codex can compute holdings and returns.",
            "/portfolios/",
            f"EXISTS (SELECT 1 FROM {firm}.{_table(Transaction)})",
        ),
    ]
    candidates.append(
        (
            "api_key",
            "Create an API key",
            "Connect your website, a spreadsheet or another tool through the API.",
            "/accounts/api-keys/",
            f"EXISTS (SELECT 1 FROM {public}.{_table(ApiKey)} WHERE tenant_id = %s)",
        )
    )
    sql = "SELECT " + ", ".join(expr for *_rest, expr in candidates)
    with connection.cursor() as cursor:
        cursor.execute(sql, [tenant.pk])
        answers = cursor.fetchone()
    return Checklist(
        steps=tuple(
            Step(key=key, label=label, hint=hint, url=url, done=bool(done))
            for (key, label, hint, url, _expr), done in zip(candidates, answers, strict=True)
        )
    )
