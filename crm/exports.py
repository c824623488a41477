"""CSV exports of contacts, companies and deals (streamed; formula cells defused)."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.utils import timezone

from codex.imports import write_csv


def csv_response(name: str, rows_and_headers) -> StreamingHttpResponse:
    headers, rows = rows_and_headers
    response = StreamingHttpResponse(write_csv(rows, headers), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{timezone.localdate():%Y-%m-%d}.csv"'
    return response


def contact_rows(qs):
    headers = [
        "id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "company",
        "job_title",
        "lifecycle",
        "owner",
        "tags",
        "source",
        "notes",
        "created_at",
    ]
    rows = (
        [
            c.pk,
            c.first_name,
            c.last_name,
            c.email,
            c.phone,
            c.company.name if c.company else "",
            c.job_title,
            c.lifecycle,
            c.owner.email if c.owner else "",
            ";".join(c.tags),
            c.source,
            c.notes,
            c.created_at.isoformat(),
        ]
        for c in qs.select_related("company", "owner").iterator(chunk_size=2000)
    )
    return headers, rows


def company_rows(qs):
    headers = ["id", "name", "domain", "website", "phone", "industry", "owner", "tags", "notes"]
    rows = (
        [
            c.pk,
            c.name,
            c.domain,
            c.website,
            c.phone,
            c.industry,
            c.owner.email if c.owner else "",
            ";".join(c.tags),
            c.notes,
        ]
        for c in qs.select_related("owner").iterator(chunk_size=2000)
    )
    return headers, rows


def deal_rows(qs):
    headers = [
        "id",
        "title",
        "contact",
        "company",
        "stage",
        "status",
        "amount",
        "currency",
        "probability",
        "expected_close",
        "owner",
        "close_reason",
    ]
    rows = (
        [
            d.pk,
            d.title,
            str(d.contact) if d.contact else "",
            d.company.name if d.company else "",
            d.stage.name,
            d.status,
            d.amount,
            d.currency,
            d.probability,
            d.expected_close or "",
            d.owner.email if d.owner else "",
            d.close_reason,
        ]
        for d in qs.select_related("contact", "company", "stage", "owner").iterator(chunk_size=2000)
    )
    return headers, rows
