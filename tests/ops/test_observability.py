"""Request logs (JSON, request id, firm, user, route, status, duration), /metrics, slow queries, task counts."""

from __future__ import annotations

import io
import json
import logging
import logging.config

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client, override_settings
from hypothesis import example, given
from hypothesis import settings as settings_hypothesis
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from codex import metrics
from codex.celery import app
from codex.observability import JsonFormatter, RequestContextFilter, slow_query_wrapper
from tenants.models import Tenant


def _json_formatter() -> logging.Formatter:
    """The ``json`` formatter exactly as ``LOGGING`` configures it (python-json-logger's)."""
    spec = settings.LOGGING["formatters"]["json"]
    assert spec["()"] == "codex.observability.JsonFormatter"
    formatter = logging.config.DictConfigurator({}).configure_formatter(dict(spec))
    assert isinstance(formatter, JsonFormatter)
    return formatter


def _request_records(caplog):
    return [r for r in caplog.records if r.name == "codex.request"]


def test_request_id_is_taken_from_the_caller_and_returned(owner_client):
    response = owner_client.get("/accounts/team/", HTTP_X_REQUEST_ID="lb-7f3a.42")
    assert response.status_code == 200
    assert response["X-Request-ID"] == "lb-7f3a.42"


@pytest.mark.parametrize("bad", ["", "has space", "x" * 200, "line\nbreak"])
def test_unsafe_request_ids_are_replaced(anon_client, bad):
    response = anon_client.get("/health", HTTP_X_REQUEST_ID=bad)
    assert response["X-Request-ID"] != bad
    assert len(response["X-Request-ID"]) == 32
    int(response["X-Request-ID"], 16)  # hex digits


def test_each_request_logs_one_json_line_with_firm_user_route_status_duration(owner_client, owner, caplog):
    caplog.set_level(logging.INFO, logger="codex.request")
    response = owner_client.get("/accounts/team/", HTTP_X_REQUEST_ID="req-1")
    assert response.status_code == 200
    (record,) = _request_records(caplog)
    line = json.loads(_json_formatter().format(record))
    assert line["request_id"] == "req-1"
    assert line["firm"] == "acme"
    assert line["user"] == str(owner.pk)
    assert line["route"] == "/accounts/team/"
    assert line["method"] == "GET"
    assert line["status"] == 200
    assert line["duration_ms"] > 0
    assert line["level"] == "INFO" and line["logger"] == "codex.request"


def test_api_key_requests_log_the_key_prefix_not_a_user(firm, api_key_for, caplog):
    caplog.set_level(logging.INFO, logger="codex.request")
    raw = api_key_for(firm, "read")
    client = Client(HTTP_HOST="api.localhost")
    assert client.get("/api/v1/tenant/", HTTP_X_API_KEY=raw).status_code == 200
    (record,) = _request_records(caplog)
    assert record.firm == "acme"
    assert record.user == f"apikey:{raw.split('_')[1]}"


def test_the_signed_in_user_is_logged_even_where_the_view_never_looks_at_it(owner_client, owner, anon_client, caplog):
    caplog.set_level(logging.INFO, logger="codex.request")
    assert owner_client.get("/health").status_code == 200  # a view that never reads request.user
    assert anon_client.get("/health").status_code == 200
    signed_in, anonymous = _request_records(caplog)
    assert signed_in.user == str(owner.pk)
    assert anonymous.user == ""


def test_server_errors_are_logged_as_errors_with_status_500(owner_client, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="codex.request")
    from tenants import api

    def boom(self, request, *args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(api.TenantView, "get", boom)
    owner_client.raise_request_exception = False
    response = owner_client.get("/api/v1/tenant/", HTTP_X_REQUEST_ID="err-1")
    assert response.status_code == 500
    (record,) = _request_records(caplog)
    assert record.status == 500 and record.levelno == logging.ERROR
    assert record.request_id == "err-1" and record.route == "/api/v1/tenant/"


def test_log_lines_made_while_serving_carry_the_request_id_and_firm(firm):
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    RequestContextFilter().filter(record)
    assert record.firm == "acme"  # the connection is in acme's schema


def _samples(text: str, name: str):
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                yield sample


def test_latency_histogram_is_labelled_by_route_pattern_not_raw_path(owner_client):
    owner_client.post("/accounts/team/987654/role/", {"role": "viewer"})
    text = Client(HTTP_HOST="localhost").get("/metrics").content.decode()
    routes = {s.labels["route"] for s in _samples(text, "codex_http_request_duration_seconds_count")}
    assert "/accounts/team/<int:pk>/role/" in routes
    assert not any("987654" in r for r in routes)


def test_metrics_are_hidden_from_the_public(public_client):
    assert public_client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 404


@override_settings(METRICS_TOKEN="s3cret-token", METRICS_ALLOWED_IPS=[])
def test_metrics_need_the_bearer_token(public_client):
    assert public_client.get("/metrics").status_code == 404
    assert public_client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    response = public_client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


@override_settings(METRICS_TOKEN="", METRICS_ALLOWED_IPS=["10.0.0.0/8"])
def test_metrics_from_an_allowed_network(public_client):
    assert public_client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert public_client.get("/metrics", REMOTE_ADDR="11.1.2.3").status_code == 404
    # No token configured: any bearer header is refused rather than ignored.
    assert public_client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer x").status_code == 403


def test_metrics_are_not_served_on_firm_hosts(anon_client):
    assert anon_client.get("/metrics").status_code == 404


def test_firms_by_status_gauge_counts_the_database(public_client, other_firm):
    from tenants.services import tenant_suspend

    tenant_suspend(tenant=other_firm, actor="test", reason="test")
    text = public_client.get("/metrics").content.decode()
    gauge = {s.labels["status"]: s.value for s in _samples(text, "codex_firms")}
    for status in ("trialing", "active", "suspended", "closed"):
        assert gauge[status] == Tenant.objects.filter(status=status).count()
    assert gauge["suspended"] >= 1


@override_settings(CODEX_SLOW_QUERY_MS=10)
def test_slow_queries_are_logged_with_their_firm(firm, caplog):
    caplog.set_level(logging.WARNING, logger="codex.db.slow")
    assert slow_query_wrapper in connection.execute_wrappers  # every connection times its queries (codex.db)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(0.03)")
        cursor.execute("SELECT 1")
    (record,) = [r for r in caplog.records if r.name == "codex.db.slow"]
    assert record.firm == "acme"
    assert record.duration_ms >= 30
    assert "pg_sleep" in record.sql


@override_settings(CODEX_SLOW_QUERY_MS=0)
def test_the_middleware_times_every_query_of_a_request(owner_client, caplog):
    caplog.set_level(logging.WARNING, logger="codex.db.slow")
    response = owner_client.get("/accounts/team/", HTTP_X_REQUEST_ID="slow-req")
    slow = [r for r in caplog.records if r.name == "codex.db.slow"]
    assert slow, "threshold 0 logs every query"
    assert {r.firm for r in slow} <= {"acme", ""}
    assert any(r.firm == "acme" for r in slow)
    assert response["X-Request-ID"] == "slow-req"


@app.task(name="tests.ops.fails")
def _failing_task():
    raise ValueError("nope")


def _task_count(task: str, state: str) -> float:
    return metrics.TASKS.labels(task=task, state=state)._value.get()


def test_task_runs_and_failures_are_counted():
    from codex.tasks import current_schema

    started = _task_count("codex.current_schema", "started")
    succeeded = _task_count("codex.current_schema", "succeeded")
    failed = _task_count("tests.ops.fails", "failed")
    current_schema.apply()
    _failing_task.apply(throw=False)
    assert _task_count("codex.current_schema", "started") == started + 1
    assert _task_count("codex.current_schema", "succeeded") == succeeded + 1
    assert _task_count("tests.ops.fails", "failed") == failed + 1


@pytest.mark.parametrize("error", ["OperationalError", "InterfaceError"])
def test_database_outage_mid_request_is_a_503_with_retry_after(owner_client, monkeypatch, caplog, error):
    from django import db

    from tenants import api

    def lost(self, request, *args, **kwargs):
        raise getattr(db, error)("server closed the connection unexpectedly")

    monkeypatch.setattr(api.TenantView, "get", lost)
    response = owner_client.get("/api/v1/tenant/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "service_unavailable"
    assert any(r.name == "codex.db" for r in caplog.records)


def test_other_exceptions_are_not_turned_into_503(owner_client, monkeypatch):
    from tenants import api

    def boom(self, request, *args, **kwargs):
        raise ValueError("a bug")

    monkeypatch.setattr(api.TenantView, "get", boom)
    owner_client.raise_request_exception = False
    assert owner_client.get("/api/v1/tenant/").status_code == 500


def test_json_formatter_writes_one_object_with_extras_exceptions_and_utc_time():
    logger = logging.getLogger("codex.test")
    record = logger.makeRecord(
        "codex.test", logging.ERROR, __file__, 1, "failed %s", ("import",), None, extra={"firm": "acme", "rows": 3}
    )
    record.created = 1_795_000_000.25
    record.msecs = 250.0  # the milliseconds come from the record's msecs, as in logging.Formatter
    line = json.loads(_json_formatter().format(record))
    assert line == {
        "time": "2026-11-18T11:06:40.250Z",
        "level": "ERROR",
        "logger": "codex.test",
        "message": "failed import",
        "firm": "acme",
        "rows": 3,
    }
    try:
        raise ValueError("bad row 7")
    except ValueError:
        import sys

        failed = logger.makeRecord(
            "codex.test", logging.ERROR, __file__, 1, "x", (), sys.exc_info(), extra={"when": object()}
        )
    out = json.loads(_json_formatter().format(failed))
    assert "ValueError: bad row 7" in out["exc_info"]
    assert isinstance(out["when"], str)  # anything JSON cannot encode is written as text, never an error
    assert "\n" not in _json_formatter().format(failed)  # one line, however long the traceback


def test_gunicorn_writes_no_access_line_of_its_own():
    """Codex's request line is the only line per request: gunicorn's access log is off."""
    import runpy

    conf = runpy.run_path(str(settings.BASE_DIR / "gunicorn.conf.py"))
    assert conf["accesslog"] is None
    assert conf["errorlog"] == "-"  # gunicorn's own errors still go to stderr


def test_one_request_writes_one_json_line_through_the_configured_handler(owner_client, owner):
    """The ``console`` handler of ``LOGGING`` (a ``logging.StreamHandler`` with the request filter and
    python-json-logger's formatter) writes one JSON line per request, with the request's fields."""
    config = logging.config.DictConfigurator({})
    handler_spec = settings.LOGGING["handlers"]["console"]
    assert handler_spec["class"] == "logging.StreamHandler"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_json_formatter())
    handler.addFilter(config.configure_filter(dict(settings.LOGGING["filters"]["request_context"])))
    request_logger = logging.getLogger("codex.request")
    old_level = request_logger.level
    request_logger.setLevel(logging.INFO)
    request_logger.addHandler(handler)
    try:
        assert owner_client.get("/accounts/team/", HTTP_X_REQUEST_ID="one-line").status_code == 200
    finally:
        request_logger.removeHandler(handler)
        request_logger.setLevel(old_level)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["message"] == "GET /accounts/team/ 200" and line["logger"] == "codex.request"
    assert (line["request_id"], line["firm"], line["user"]) == ("one-line", "acme", str(owner.pk))
    assert (line["route"], line["status"]) == ("/accounts/team/", 200) and line["duration_ms"] > 0


def test_a_request_id_with_a_trailing_newline_is_replaced():
    from codex.observability import request_id_from

    assert request_id_from("abc\n") != "abc\n" and len(request_id_from("abc\n")) == 32
    assert request_id_from("lb-7f3a.42") == "lb-7f3a.42"


def test_a_removed_latency_child_is_not_observed_into():
    metrics.observe_request("GET", "/x-test/", 200, 0.001)
    metrics.REQUEST_LATENCY.remove("GET", "/x-test/", "200")
    metrics.observe_request("GET", "/x-test/", 200, 0.001)
    child = metrics.REQUEST_LATENCY.labels("GET", "/x-test/", "200")
    assert child._sum.get() == pytest.approx(0.001)  # only the observation made after the removal


_text_values = st.none() | st.booleans() | st.integers() | st.text()
# A LogRecord's own attributes cannot be passed in ``extra=``; the head keys are the line's own.
_reserved = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_reserved |= {"time", "level", "logger"}


@settings_hypothesis(max_examples=200, deadline=None)
@given(
    fields=st.dictionaries(
        # python-json-logger leaves out private names (a leading underscore), as a log line should.
        st.text(min_size=1).filter(lambda name: name not in _reserved and not name.startswith("_")),
        _text_values,
        max_size=8,
    ),
    message=st.text(),
)
@example(fields={"duration_ms": 1, "status": 200, "user": "", "path": '/a\n"b"/é'}, message="GET / 200")
def test_any_fields_make_one_line_of_json_with_each_field(fields, message):
    """Whatever a log call passes in ``extra=`` (names and values of any text), the line is one line
    of JSON holding each field as given, after the four head keys."""
    record = logging.getLogger("codex.request").makeRecord(
        "codex.request", logging.INFO, __file__, 0, "%s", (message,), None, extra=fields
    )
    text = _json_formatter().format(record)
    assert "\n" not in text
    line = json.loads(text)
    assert list(line)[:4] == ["time", "level", "logger", "message"]
    assert line["message"] == message and line["logger"] == "codex.request" and line["level"] == "INFO"
    assert {name: line[name] for name in fields} == fields
