"""Prometheus metrics and the protected ``/metrics`` endpoint.

Metrics:
- ``codex_http_request_duration_seconds{method,route,status}``: histogram; ``route`` is the URL pattern
  that matched (``/api/v1/portfolios/<int:pk>/``), never the raw path, so label values stay bounded;
- ``codex_celery_tasks_total{task,state}``: tasks started, succeeded, failed, retried;
- ``codex_celery_task_duration_seconds{task}``: histogram;
- ``codex_slow_queries_total{firm}``: queries over ``CODEX_SLOW_QUERY_MS``;
- ``codex_firms{status}``: gauge read from the database at scrape time (one ``GROUP BY`` query),
  registered by tenants (``tenants.metrics``).

Several processes (gunicorn workers, Celery's prefork children) each hold their own counters. With
``PROMETHEUS_MULTIPROC_DIR`` set (an empty directory shared by the processes of one node, wiped at
start), prometheus-client writes them to memory-mapped files and the scrape merges them; gunicorn's
``child_exit`` hook must call ``prometheus_client.multiprocess.mark_process_dead(worker.pid)``. See
docs/operations.md.

Access: a request may read ``/metrics`` if it carries ``Authorization: Bearer <METRICS_TOKEN>``
(compared in constant time) or comes from an address in ``METRICS_ALLOWED_IPS``. A wrong token gets
403; anything else gets 404, so the endpoint does not advertise itself to the public.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time

from celery import signals
from django.conf import settings
from django.db import connection
from django.http import Http404, HttpResponse, HttpResponseForbidden
from django.views.decorators.cache import never_cache
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _RequestLatency(Histogram):
    """The request histogram, whose labelled children ``observe_request`` keeps at hand: a child
    removed from the metric (``remove``/``clear``) is forgotten there too, so no request is counted
    in a child the scrape no longer sees."""

    def remove(self, *labelvalues) -> None:
        super().remove(*labelvalues)
        _latency_children.clear()

    def clear(self) -> None:
        super().clear()
        _latency_children.clear()


REQUEST_LATENCY = _RequestLatency(
    "codex_http_request_duration_seconds",
    "Time to serve a request, by URL pattern and status.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
TASKS = Counter("codex_celery_tasks", "Celery tasks by outcome.", ["task", "state"])
TASK_DURATION = Histogram(
    "codex_celery_task_duration_seconds",
    "Time a Celery task ran.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300),
)
SLOW_QUERIES = Counter("codex_slow_queries", "Queries slower than CODEX_SLOW_QUERY_MS.", ["firm"])


_latency_children: dict[tuple[str, str, int], Histogram] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    # ``labels()`` costs more than the observation itself: each (method, route, status) child is
    # looked up once (bounded: routes are URL patterns, not paths) and forgotten when it is removed
    # from the metric (``_RequestLatency``).
    child = _latency_children.get((method, route, status))
    if child is None:
        child = _latency_children[(method, route, status)] = REQUEST_LATENCY.labels(method, route, str(status))
    child.observe(seconds)


# Collectors counted when scraped, registered by the apps that own what they count (tenants
# registers ``codex_firms`` in its ``ready()``): the kernel reads no app's tables itself.
_SCRAPE_COLLECTORS: list[Collector] = []


def register_scrape_collector(collector: Collector) -> None:
    """Add ``collector`` to every scrape (once, whatever the number of calls)."""
    if collector not in _SCRAPE_COLLECTORS:
        _SCRAPE_COLLECTORS.append(collector)


def scrape_registry() -> CollectorRegistry:
    """The registry a scrape reads: merged files in multi-process mode, else this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # function-level: only in multi-process mode (PROMETHEUS_MULTIPROC_DIR)
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_RegistryProxy(REGISTRY))
    for collector in _SCRAPE_COLLECTORS:
        registry.register(collector)
    return registry


class _RegistryProxy:
    """Lets one scrape registry hold the default registry plus our scrape-time collectors."""

    def __init__(self, registry):
        self.registry = registry

    def collect(self):
        return self.registry.collect()


def _client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


def _ip_allowed(ip: str) -> bool:
    networks = getattr(settings, "METRICS_ALLOWED_IPS", [])
    if not ip or not networks:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)


@never_cache
def metrics_view(request):
    token = getattr(settings, "METRICS_TOKEN", "")
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        given = header.removeprefix("Bearer ").strip()
        if not token or not hmac.compare_digest(given.encode(), token.encode()):
            return HttpResponseForbidden("forbidden\n", content_type="text/plain")
    elif not _ip_allowed(_client_ip(request)):
        raise Http404
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)


# --- Celery signals ---------------------------------------------------------------------------------
def connect_celery_signals() -> None:
    """Count tasks and put the task id and firm on log records; called by ``codex.celery``."""

    # function-level: observability imports this module: cycle listed in the acyclic contract
    from . import observability

    started: dict[str, tuple[float, tuple]] = {}

    @signals.task_prerun.connect(weak=False)
    def _prerun(task_id=None, task=None, **_kwargs):
        TASKS.labels(task=task.name, state="started").inc()
        tokens = observability.task_context_enter(task_id, getattr(connection, "schema_name", ""))
        started[task_id] = (time.perf_counter(), tokens)

    @signals.task_postrun.connect(weak=False)
    def _postrun(task_id=None, task=None, state=None, **_kwargs):
        begun, tokens = started.pop(task_id, (None, None))
        if begun is not None:
            TASK_DURATION.labels(task=task.name).observe(time.perf_counter() - begun)
        if state == "SUCCESS":
            TASKS.labels(task=task.name, state="succeeded").inc()
        observability.task_context_exit(tokens)

    @signals.task_failure.connect(weak=False)
    def _failure(sender=None, **_kwargs):
        TASKS.labels(task=sender.name, state="failed").inc()

    @signals.task_retry.connect(weak=False)
    def _retry(sender=None, **_kwargs):
        TASKS.labels(task=sender.name, state="retried").inc()
