"""CSV import of transactions: preview with per-row errors, duplicates, all or nothing; exports."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from codex import imports as engine
from codex.notifications.models import Notification
from portfolios import services
from portfolios.imports import TransactionImport
from portfolios.models import Holding, Transaction

from .factories import InstrumentFactory, add_fx

D = date
pytestmark = pytest.mark.django_db
SAMPLE = Path(settings.BASE_DIR) / "docs" / "samples" / "transactions.csv"


def upload(text: str, name: str = "t.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


@pytest.fixture
def demo_instruments(firm):
    add_fx("EUR", "USD", {D(2023, 12, 29): "1.10"})
    return {
        "AAPL": InstrumentFactory(symbol="AAPL", exchange="XNAS", currency="USD"),
        "MSFT": InstrumentFactory(symbol="MSFT", exchange="XNAS", currency="USD"),
        "SAP": InstrumentFactory(symbol="SAP", exchange="XETR", currency="EUR"),
    }


TODAY = D(2025, 12, 31)


def job_for(portfolio, text, today=TODAY):
    return TransactionImport.from_upload(portfolio=portfolio, upload=upload(text), today=today)


def test_the_documented_sample_imports_cleanly(portfolio, demo_instruments):
    job = TransactionImport.from_upload(
        portfolio=portfolio, upload=upload(SAMPLE.read_text(), "transactions.csv"), today=D(2025, 12, 31)
    )
    preview = job.preview()
    assert preview.ok, preview.errors
    assert preview.counts["create"] == 10
    report = job.commit()
    assert report.created == 10
    assert Holding.objects.get(portfolio=portfolio, instrument=demo_instruments["AAPL"]).quantity == 60
    assert not Notification.objects.filter(kind="import").exists()  # nobody to tell: no member imported it
    sap = Transaction.objects.get(portfolio=portfolio, instrument=demo_instruments["SAP"])
    assert str(sap.fx_rate) == "1.0925000000"


def test_reimporting_the_same_file_skips_every_row(portfolio, demo_instruments):
    text = SAMPLE.read_text()
    job_for(portfolio, text).commit()
    again = job_for(portfolio, text)
    preview = again.preview()
    assert preview.counts == {"create": 0, "update": 0, "merge": 0, "skip": 10, "error": 0}
    assert again.commit().skipped == 10
    assert Transaction.objects.filter(portfolio=portfolio).count() == 10


def test_row_errors_are_reported_per_row_and_nothing_is_written(portfolio, demo_instruments):
    text = (
        "date,kind,symbol,quantity,price,amount\n"
        "2024-01-02,deposit,,,,1000\n"
        "2024-01-03,buy,NOPE,1,1,\n"
        "2024-01-04,buy,AAPL,1,-5,\n"
        "2099-01-01,deposit,,,,5\n"
        "2024-13-01,deposit,,,,5\n"
        "2024-01-05,teleport,,,,5\n"
    )
    job = job_for(portfolio, text)
    preview = job.preview()
    errors = {(e.row, e.field) for e in preview.errors}
    assert errors == {(3, "symbol"), (4, "price"), (5, "trade_date"), (6, "trade_date"), (7, "kind")}
    with pytest.raises(engine.ImportRejected):
        job.commit()
    assert not Transaction.objects.filter(portfolio=portfolio).exists()


def test_selling_more_than_held_is_found_in_the_preview(portfolio, demo_instruments):
    text = "date,kind,symbol,quantity,price\n2024-01-03,buy,AAPL,10,100\n2024-02-03,sell,AAPL,15,120\n"
    job = job_for(portfolio, text)
    preview = job.preview()
    assert [(e.row, e.field) for e in preview.errors] == [(3, "quantity")]
    assert "only 10 held" in preview.errors[0].message
    with pytest.raises(engine.ImportRejected):
        job.commit()
    assert not Transaction.objects.filter(portfolio=portfolio).exists()


def test_sell_covered_by_the_existing_ledger_is_accepted(portfolio, demo_instruments):
    services.transaction_record(
        portfolio=portfolio,
        kind="buy",
        trade_date=D(2024, 1, 2),
        instrument=demo_instruments["AAPL"],
        quantity=10,
        price=1,
    )
    job = job_for(portfolio, "date,kind,symbol,quantity,price\n2024-02-03,sell,AAPL,10,2\n")
    assert job.preview().ok
    job.commit()
    assert not Holding.objects.filter(portfolio=portfolio).exists()


def test_identical_rows_in_one_file_are_flagged(portfolio, demo_instruments):
    text = "date,kind,amount\n2024-01-02,deposit,100\n2024-01-02,deposit,100\n2024-01-02,deposit,100,\n"
    preview = job_for(portfolio, text).preview()
    assert [(e.row, e.field) for e in preview.errors] == [(3, "fingerprint"), (4, "fingerprint")]


def test_missing_required_column_is_a_file_error(portfolio):
    with pytest.raises(engine.ImportFileError):
        job_for(portfolio, "kind,amount\ndeposit,5\n")


def test_export_transactions_round_trips_as_duplicates(portfolio, demo_instruments, owner_client):
    job_for(portfolio, SAMPLE.read_text()).commit()
    r = owner_client.get(f"/portfolios/{portfolio.pk}/export/transactions.csv")
    assert r.status_code == 200
    text = b"".join(r.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["date", "kind", "symbol"] and len(rows) == 11
    preview = job_for(portfolio, text).preview()
    assert preview.counts["skip"] == 10 and preview.ok


def test_export_holdings(portfolio, demo_instruments, owner_client):
    job_for(portfolio, SAMPLE.read_text()).commit()
    r = owner_client.get(f"/portfolios/{portfolio.pk}/export/holdings.csv")
    rows = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
    symbols = [row[1] for row in rows[1:]]
    assert {"AAPL", "SAP", "MSFT", "CASH"} <= set(symbols)


def test_import_page_preview_then_commit(
    advisor_client, portfolio, demo_instruments, django_capture_on_commit_callbacks
):
    url = f"/portfolios/{portfolio.pk}/import/"
    assert advisor_client.get(url).status_code == 200
    r = advisor_client.post(url, {"file": upload(SAMPLE.read_text(), "transactions.csv")})
    assert r.status_code == 200
    assert b"10 new" in r.content
    assert "“date” as trade_date" in r.content.decode()
    assert not Transaction.objects.filter(portfolio=portfolio).exists()
    with django_capture_on_commit_callbacks(execute=True):  # the background job runs when the request commits
        r = advisor_client.post(url, {"commit": "1"})
    assert r.status_code == 302
    assert Transaction.objects.filter(portfolio=portfolio).count() == 10


def deposits(n: int, bad: dict[int, str] | None = None) -> str:
    """A file of ``n`` deposits; ``bad`` replaces the date of some rows (by file row number)."""
    lines = ["date,kind,amount,note"]
    for number in range(2, n + 2):
        lines.append(f"{(bad or {}).get(number, '2024-01-02')},deposit,10,row {number}")
    return "\n".join(lines) + "\n"


def test_a_long_file_previews_its_first_rows_and_imports_every_row(
    advisor_client, portfolio, django_capture_on_commit_callbacks
):
    url = f"/portfolios/{portfolio.pk}/import/"
    r = advisor_client.post(url, {"file": upload(deposits(700))})
    page = r.content.decode()
    assert r.status_code == 200
    assert "700 new" in page and "The first 100 of 700 rows" in page
    assert "<td>101</td>" in page and "<td>102</td>" not in page  # rows 2..101 listed, not one more
    assert "Import 700 transactions" in page
    with django_capture_on_commit_callbacks(execute=True):
        assert advisor_client.post(url, {"commit": "1"}).status_code == 302
    assert Transaction.objects.filter(portfolio=portfolio).count() == 700  # every row, not the ones shown


def test_an_error_past_the_rows_shown_is_named_with_its_row_and_field(advisor_client, portfolio):
    r = advisor_client.post(f"/portfolios/{portfolio.pk}/import/", {"file": upload(deposits(700, {650: "soon"}))})
    page = r.content.decode()
    assert "699 new" in page and "1 with errors" in page
    assert "<td>650</td><td>trade_date</td><td>“soon” is not a date (use YYYY-MM-DD).</td>" in page
    assert 'name="commit"' not in page


def test_the_preview_queries_do_not_grow_with_the_rows(portfolio):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    services.transaction_record(portfolio=portfolio, kind="deposit", trade_date=D(2024, 1, 2), amount=10, note="row 3")
    counts = []
    for n in (3, 2500):
        job = job_for(portfolio, deposits(n))
        with CaptureQueriesContext(connection) as ctx:
            preview = job.preview()
        assert preview.counts["skip"] == 1 and preview.counts["create"] == n - 1  # row 3 is in the ledger
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


def test_errors_past_the_ones_listed_are_counted_by_field(advisor_client, portfolio):
    bad = {number: "never" for number in range(2, 602)}  # 600 rows with a bad date
    bad[700] = "2024-01-02x"
    r = advisor_client.post(f"/portfolios/{portfolio.pk}/import/", {"file": upload(deposits(700, bad))})
    page = r.content.decode()
    assert "Errors: the first 500 of 601" in page
    assert "<td>501</td><td>trade_date</td>" in page and "<td>502</td><td>trade_date</td>" not in page
    assert "101 more errors not listed" in page and "trade_date in 601 rows" in page
    assert 'name="commit"' not in page


def test_the_commit_runs_in_the_background_and_the_page_says_when_it_is_done(
    advisor_client, advisor, portfolio, demo_instruments, django_capture_on_commit_callbacks
):
    from codex.notifications.models import Notification
    from portfolios.models import LedgerImport

    url = f"/portfolios/{portfolio.pk}/import/"
    advisor_client.post(url, {"file": upload(SAMPLE.read_text(), "transactions.csv")})
    with django_capture_on_commit_callbacks(execute=False) as queued:
        r = advisor_client.post(url, {"commit": "1"})
    assert r.status_code == 302 and r["Location"] == url and len(queued) == 1
    job = LedgerImport.objects.get(portfolio=portfolio)
    assert job.status == "importing" and not Transaction.objects.filter(portfolio=portfolio).exists()
    page = advisor_client.get(url).content.decode()
    assert "<progress data-import-progress" in page and "Importing 10 rows" in page
    assert 'http-equiv="refresh"' in page
    with django_capture_on_commit_callbacks(execute=True):
        queued[0]()  # the worker runs the job; the valuation rebuild it queues runs too
    job.refresh_from_db()
    assert job.status == "done" and job.report["created"] == 10 and job.rows == []
    assert Transaction.objects.filter(portfolio=portfolio).count() == 10
    r = advisor_client.get(url)
    assert r.status_code == 302 and r["Location"].endswith(f"/portfolios/{portfolio.pk}/#ledger")
    page = advisor_client.get(r["Location"]).content.decode()
    assert "Imported 10 transaction(s); 0 duplicate(s) skipped." in page
    assert "<progress data-import-progress" not in advisor_client.get(url).content.decode()  # said once, over
    assert Notification.objects.filter(recipient=advisor, title=f"Import into {portfolio.name} finished").count() == 1


def test_a_background_commit_refused_by_a_changed_ledger_writes_nothing_and_says_why(
    advisor_client, advisor, portfolio, demo_instruments, django_capture_on_commit_callbacks
):
    from portfolios.models import LedgerImport

    aapl = demo_instruments["AAPL"]
    services.transaction_record(
        portfolio=portfolio, kind="buy", trade_date=D(2024, 1, 2), instrument=aapl, quantity=10, price=1
    )
    url = f"/portfolios/{portfolio.pk}/import/"
    advisor_client.post(url, {"file": upload("date,kind,symbol,quantity,price\n2024-02-03,sell,AAPL,10,2\n")})
    with django_capture_on_commit_callbacks(execute=False) as queued:
        advisor_client.post(url, {"commit": "1"})
    services.transaction_record(  # the ledger changes while the job waits for a worker
        portfolio=portfolio, kind="sell", trade_date=D(2024, 1, 5), instrument=aapl, quantity=5, price=1
    )
    queued[0]()
    job = LedgerImport.objects.get(portfolio=portfolio)
    assert job.status == "refused" and "nothing was imported" in job.report["error"]
    assert Transaction.objects.filter(portfolio=portfolio).count() == 2
    page = advisor_client.get(url).content.decode()
    assert "Not imported: 1 row error(s)" in page and "row 2, quantity" in page


def test_another_firm_cannot_see_or_start_an_import(outsider_client, portfolio):
    url = f"/portfolios/{portfolio.pk}/import/"
    assert outsider_client.get(url).status_code == 404
    assert outsider_client.post(url, {"commit": "1"}).status_code == 404


def test_import_page_shows_row_errors(advisor_client, portfolio, demo_instruments):
    r = advisor_client.post(
        f"/portfolios/{portfolio.pk}/import/",
        {"file": upload("date,kind,symbol,quantity,price\n2024-01-03,buy,NOPE,1,1\n")},
    )
    assert b"Unknown instrument" in r.content
    assert b'name="commit"' not in r.content


def test_import_needs_the_plan_feature(advisor_client, portfolio, monkeypatch):
    from billing.entitlements import PlanLimitExceeded
    from portfolios import views

    def refuse(*, tenant, feature):
        raise PlanLimitExceeded("Your plan does not include imports.", limit=feature, code="feature_not_in_plan")

    monkeypatch.setattr(views, "check_feature", refuse)
    r = advisor_client.get(f"/portfolios/{portfolio.pk}/import/")
    assert r.status_code == 402 and b"does not include imports" in r.content


def test_viewer_cannot_import(viewer_client, portfolio):
    assert viewer_client.get(f"/portfolios/{portfolio.pk}/import/").status_code == 403


def test_commit_refuses_when_the_ledger_changed_since_the_preview(portfolio, demo_instruments):
    aapl = demo_instruments["AAPL"]
    services.transaction_record(
        portfolio=portfolio, kind="buy", trade_date=D(2024, 1, 2), instrument=aapl, quantity=10, price=1
    )
    job = job_for(portfolio, "date,kind,symbol,quantity,price\n2024-02-03,sell,AAPL,10,2\n")
    assert job.preview().ok
    services.transaction_record(
        portfolio=portfolio, kind="sell", trade_date=D(2024, 1, 5), instrument=aapl, quantity=5, price=1
    )
    with pytest.raises(engine.ImportRejected) as exc:
        job.commit()
    assert [(e.row, e.field) for e in exc.value.errors] == [(2, "quantity")]
    assert "only 5 held" in exc.value.errors[0].message
    assert Transaction.objects.filter(portfolio=portfolio).count() == 2
    assert Holding.objects.get(portfolio=portfolio).quantity == 5


# --- the same through the API ----------------------------------------------------------------------


def test_api_import_preview_then_commit(advisor_client, portfolio, demo_instruments):
    url = f"/api/v1/portfolios/{portfolio.pk}/transactions/import/"
    r = advisor_client.post(url, {"file": upload(SAMPLE.read_text(), "transactions.csv")})
    assert r.status_code == 200, r.content
    assert r.json() == {"committed": False, "counts": {"new": 10, "duplicates": 0, "errors": 0}, "errors": []}
    assert not Transaction.objects.filter(portfolio=portfolio).exists()
    r = advisor_client.post(url, {"file": upload(SAMPLE.read_text(), "transactions.csv"), "commit": "true"})
    assert r.status_code == 201 and r.json()["counts"]["new"] == 10
    r = advisor_client.post(url, {"file": upload(SAMPLE.read_text(), "transactions.csv"), "commit": "true"})
    assert r.json()["counts"] == {"new": 0, "duplicates": 10, "errors": 0}


def test_api_import_with_row_errors_is_rejected_whole(advisor_client, portfolio, demo_instruments):
    url = f"/api/v1/portfolios/{portfolio.pk}/transactions/import/"
    text = "date,kind,symbol,quantity,price,amount\n2024-01-02,deposit,,,,10\n2024-01-03,buy,NOPE,1,1,\n"
    r = advisor_client.post(url, {"file": upload(text), "commit": "true"})
    assert r.status_code == 400
    body = r.json()["error"]
    assert body["code"] == "import_rejected" and body["details"]["rows"][0]["row"] == 3
    assert not Transaction.objects.filter(portfolio=portfolio).exists()
    r = advisor_client.post(url, {"file": upload("not,a,ledger\n1,2,3\n")})
    assert r.status_code == 400 and "file" in r.json()["error"]["details"]


def test_api_import_roles_and_isolation(viewer_client, outsider_client, portfolio):
    url = f"/api/v1/portfolios/{portfolio.pk}/transactions/import/"
    assert viewer_client.post(url, {"file": upload("date,kind\n")}).status_code == 403
    assert outsider_client.post(url, {"file": upload("date,kind\n")}).status_code == 404


def test_api_exports(owner_client, outsider_client, portfolio, demo_instruments):
    job_for(portfolio, SAMPLE.read_text()).commit()
    r = owner_client.get(f"/api/v1/portfolios/{portfolio.pk}/transactions/export/")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    assert len(b"".join(r.streaming_content).decode().strip().splitlines()) == 11
    r = owner_client.get(f"/api/v1/portfolios/{portfolio.pk}/holdings/export/?date=2025-01-02")
    assert b"AAPL" in b"".join(r.streaming_content)
    assert outsider_client.get(f"/api/v1/portfolios/{portfolio.pk}/transactions/export/").status_code == 404


def test_the_member_who_imported_is_told_it_finished_and_a_rejected_import_tells_nobody(
    portfolio, demo_instruments, owner
):
    TransactionImport.from_upload(
        portfolio=portfolio, upload=upload(SAMPLE.read_text()), today=TODAY, created_by=owner
    ).commit()
    notice = Notification.objects.get(kind="import")
    assert notice.recipient == owner and notice.url == f"/portfolios/{portfolio.pk}/"
    assert notice.body == "10 transactions"
    # an import that passes its preview and is rolled back at commit (the ledger changed) tells nobody
    job = TransactionImport.from_upload(
        portfolio=portfolio,
        upload=upload("date,kind,symbol,quantity,price\n2025-02-03,sell,AAPL,60,2\n"),
        today=TODAY,
        created_by=owner,
    )
    assert job.preview().ok
    services.transaction_record(
        portfolio=portfolio,
        kind="sell",
        trade_date=D(2025, 1, 5),
        instrument=demo_instruments["AAPL"],
        quantity=5,
        price=1,
    )
    with pytest.raises(engine.ImportRejected):
        job.commit()
    assert Notification.objects.filter(kind="import").count() == 1


def test_an_import_whose_worker_died_is_swept_refused_and_says_why(
    advisor_client, advisor, portfolio, demo_instruments, settings, caplog, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from portfolios.imports import ledger_imports_sweep
    from portfolios.models import LedgerImport

    settings.IMPORT_JOB_STALE_SECONDS = 1800
    url = f"/portfolios/{portfolio.pk}/import/"
    advisor_client.post(url, {"file": upload(SAMPLE.read_text(), "transactions.csv")})
    with django_capture_on_commit_callbacks(execute=False) as queued:
        advisor_client.post(url, {"commit": "1"})
    job = LedgerImport.objects.get(portfolio=portfolio)
    assert job.status == "importing" and job.heartbeat_at is not None
    LedgerImport.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=1790))
    assert ledger_imports_sweep() == []  # still alive
    LedgerImport.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=1801))
    with caplog.at_level("ERROR", logger="portfolios.imports"):
        assert ledger_imports_sweep() == [job.pk]
    job.refresh_from_db()
    assert job.status == "refused" and "gave no sign of life" in job.report["error"] and job.rows == []
    assert any(f"ledger import {job.pk}" in r.getMessage() for r in caplog.records)
    assert Notification.objects.filter(recipient=advisor, title=f"Import into {portfolio.name} not done").count() == 1
    page = advisor_client.get(url).content.decode()
    assert "Not imported: The import stopped: its background worker gave no sign of life" in page
    assert "<progress data-import-progress" not in page
    assert ledger_imports_sweep() == []  # idempotent
    queued[0]()  # a late delivery of the lost task finds the job ended: nothing written
    assert not Transaction.objects.filter(portfolio=portfolio).exists()
    assert LedgerImport.objects.get(pk=job.pk).status == "refused"


def test_a_running_import_refreshes_its_heartbeat_and_ends_done(
    advisor_client, portfolio, demo_instruments, settings, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from portfolios.imports import ledger_imports_sweep
    from portfolios.models import LedgerImport

    settings.IMPORT_JOB_STALE_SECONDS = 1800
    url = f"/portfolios/{portfolio.pk}/import/"
    advisor_client.post(url, {"file": upload(SAMPLE.read_text(), "transactions.csv")})
    with django_capture_on_commit_callbacks(execute=False) as queued:
        advisor_client.post(url, {"commit": "1"})
    job = LedgerImport.objects.get(portfolio=portfolio)
    LedgerImport.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=1000))
    queued[0]()
    job.refresh_from_db()
    assert job.status == "done" and job.heartbeat_at > timezone.now() - timedelta(seconds=60)
    assert Transaction.objects.filter(portfolio=portfolio).count() == 10
    assert ledger_imports_sweep() == []
