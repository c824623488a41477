"""Sort, filter and pagination of the staff lists that had none (issue #25 point 2): every list is
sorted and paged on the server, its filters live in the URL, its query count does not grow with its
rows, and another firm's rows never appear."""

from __future__ import annotations

from datetime import date

import pytest
from django_tenants.utils import schema_context

from portal.models import ReportRun
from tests.web.test_list_tables import order_of, queries_for

pytestmark = pytest.mark.django_db


# --- quarterly report runs ----------------------------------------------------------------------------


def report_run(n: int, *, status: str = ReportRun.Status.DONE, quarter_end: date = date(2025, 3, 31)) -> ReportRun:
    """Run ``n`` is marked on the page by its total (``of 10NN done``)."""
    return ReportRun.objects.create(quarter_end=quarter_end, status=status, total=1000 + n, done=1000, failed=n)


def run_marks(*ns: int) -> list[str]:
    return [f"of {1000 + n} done" for n in ns]


def test_report_runs_sort_page_and_filter(owner_client):
    for n in range(30):
        report_run(n, status=ReportRun.Status.FAILED if n % 3 == 0 else ReportRun.Status.DONE)
    report_run(40, quarter_end=date(2025, 6, 30))
    up = owner_client.get("/client-portal/reports/?sort=failed").content.decode()
    assert order_of(up, run_marks(0, 1, 24)) == run_marks(0, 1, 24)
    assert run_marks(25)[0] not in up and 'aria-sort="ascending"' in up
    second = owner_client.get("/client-portal/reports/?sort=failed&page=2").content.decode()
    assert order_of(second, run_marks(25, 29, 40)) == run_marks(25, 29, 40) and run_marks(24)[0] not in second
    down = owner_client.get("/client-portal/reports/?sort=-failed").content.decode()
    assert order_of(down, run_marks(40, 29, 6)) == run_marks(40, 29, 6) and run_marks(5)[0] not in down
    failed = owner_client.get("/client-portal/reports/?status=failed").content.decode()
    assert run_marks(3)[0] in failed and run_marks(1)[0] not in failed
    quarter = owner_client.get("/client-portal/reports/?quarter_end=2025-06-30").content.decode()
    assert run_marks(40)[0] in quarter and run_marks(1)[0] not in quarter
    bad = owner_client.get("/client-portal/reports/?status=nonsense").content.decode()
    assert 'id="filter_status_error"' in bad and run_marks(40)[0] in bad


def test_report_runs_query_count_does_not_grow_with_rows(owner_client):
    report_run(1)
    few = queries_for(owner_client, "/client-portal/reports/?sort=-quarter")
    for n in range(2, 14):
        report_run(n)
    assert queries_for(owner_client, "/client-portal/reports/?sort=-quarter") == few


def test_report_runs_of_another_firm_never_appear(owner_client, outsider_client, other_firm):
    report_run(1)
    with schema_context(other_firm.schema_name):
        report_run(2)
    mine = owner_client.get("/client-portal/reports/").content.decode()
    assert run_marks(1)[0] in mine and run_marks(2)[0] not in mine
    theirs = outsider_client.get("/client-portal/reports/").content.decode()
    assert run_marks(2)[0] in theirs and run_marks(1)[0] not in theirs
