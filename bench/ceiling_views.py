"""The views measured as ceilings (docs/benchmarks.md, "Ceilings and API throughput").

``ping`` is the C0 view: a small ``JsonResponse``, no database. The same function is served three
ways: by ``bench.ceiling_settings`` (Django's default middleware only: C0 itself), and on a firm host
through Codex's whole middleware stack (``/bench/ping/`` in ``codex.site.urls_tenant``, wired only when
``CODEX_BENCH_VIEWS=1``).

``firm_rows`` is the C1 view: 25 portfolios of the firm whose host was asked, with ``.values()``
into a ``JsonResponse``, served by ``bench.ceiling_firm_settings``.
"""

from django.http import JsonResponse

PING_BODY = {"status": "ok", "service": "codex", "items": [1, 2, 3]}

C1_FIELDS = (
    "id",
    "name",
    "client_id",
    "advisor_id",
    "base_currency",
    "benchmark_id",
    "lot_method",
    "archived",
    "created_at",
    "updated_at",
)


def ping(request):
    return JsonResponse(PING_BODY)


def firm_rows(request):
    from portfolios.models import Portfolio

    rows = list(Portfolio.objects.order_by("id").values(*C1_FIELDS)[:25])
    return JsonResponse({"count": len(rows), "results": rows})
