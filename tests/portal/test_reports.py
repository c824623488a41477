"""Quarterly reports: the PDF's figures are the API's; on demand and as a batch with progress."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from portal import reports, services
from portal.models import Document, ReportRun, ReportSettings

pytestmark = pytest.mark.django_db


def test_report_figures_equal_the_api(settings_fast, firm, advisor, ada_portfolio, client_for, vault_dir):
    quarter_end = timezone.localdate()
    ReportSettings.objects.create(disclosures="Acme disclosure text.")
    data = reports.report_data(
        contact=ada_portfolio.client,
        quarter_end=quarter_end,
        firm_name=firm.name,
        brand_color="#112233",
        disclosures="Acme disclosure text.",
    )
    [part] = data.portfolios
    staff = client_for(advisor)
    holdings = staff.get(f"/api/v1/portfolios/{ada_portfolio.pk}/holdings/?date={quarter_end}").json()
    assert part.value == Decimal(holdings["total_value"])
    for period in part.periods:
        api = staff.get(
            f"/api/v1/portfolios/{ada_portfolio.pk}/performance/?start={period.start}&end={period.end}"
        ).json()
        assert Decimal(api["twr"]["value"]) == period.twr.quantize(Decimal(api["twr"]["value"])), period.period
        assert Decimal(api["mwr"]["value"]) == period.mwr.quantize(Decimal(api["mwr"]["value"])), period.period
    pdf = reports.report_pdf(data, compress=False)
    assert pdf.startswith(b"%PDF-")
    for text in (reports.money(part.value, "USD"), reports.percent(part.periods[0].twr), "Acme disclosure text."):
        assert text.encode("latin-1") in pdf, text


def test_report_on_demand_is_stored_shared_and_announced(
    settings_fast, firm, advisor, ada_portfolio, ada_user, client_for, vault_dir, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        document = services.report_generate(
            actor=advisor, tenant=firm, contact=ada_portfolio.client, quarter_end=timezone.localdate()
        )
    assert document.kind == "report" and document.visibility == "shared"
    assert mail.outbox[-1].to == [ada_user.email] and "report" in mail.outbox[-1].subject.lower()
    listed = client_for(ada_user).get("/api/v1/portal/documents/").json()["results"]
    assert document.pk in [d["id"] for d in listed]
    with document.file.open("rb") as f:
        assert f.read(5) == b"%PDF-"


def test_report_for_a_client_outside_the_book_is_refused(settings_fast, firm, advisor, bob_portfolio, vault_dir):
    from django.http import Http404

    with pytest.raises(Http404):
        services.report_generate(
            actor=advisor, tenant=firm, contact=bob_portfolio.client, quarter_end=timezone.localdate()
        )


def test_batch_run_counts_progress(
    settings_fast, firm, owner, ada_portfolio, bob_portfolio, client_for, vault_dir, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(owner).post(
            "/client-portal/reports/", {"action": "run", "quarter_end": timezone.localdate().isoformat()}
        )
    assert response.status_code == 302
    run = ReportRun.objects.get()
    assert run.status == "done" and run.total >= 2 and run.done + run.failed == run.total and run.percent == 100
    assert Document.objects.filter(kind="report", contact=ada_portfolio.client).exists()
    page = client_for(owner).get("/client-portal/reports/")
    assert b"<progress" in page.content and b"done" in page.content
    # the one who started the batch is told it is ready, once (the bell; a retried task adds nothing)
    from codex.notifications.models import Notification

    notice = Notification.objects.get(kind="report")
    assert notice.recipient == owner and notice.url == "/client-portal/reports/" and "ready" in notice.title
    services.report_run_execute(run_id=run.pk, tenant=firm)
    assert Notification.objects.filter(kind="report").count() == 1


def test_a_quarter_not_ended_is_refused(settings_fast, firm, owner, client_for):
    future = timezone.localdate().replace(year=timezone.localdate().year + 1)
    response = client_for(owner).post("/client-portal/reports/", {"action": "run", "quarter_end": future.isoformat()})
    assert response.status_code == 200 and b"has not ended" in response.content
    assert not ReportRun.objects.exists()


def test_advisors_cannot_run_the_firm_batch(settings_fast, firm, advisor, client_for):
    response = client_for(advisor).post("/client-portal/reports/", {"quarter_end": "2025-09-30"})
    assert response.status_code == 403 and not ReportRun.objects.exists()
