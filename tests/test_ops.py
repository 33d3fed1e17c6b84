"""Operations: liveness, readiness, Prometheus metrics, request ids and JSON logs."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from engine import metrics
from engine.logs import JsonFormatter, configure_logging, log_format
from tests.api_helpers import HOSTING_USERS, served
from tests.runtime_helpers import ORDER, Env, ecommerce  # noqa: F401 - fixture


async def test_health_readiness_and_request_ids(database_url: str) -> None:
    async with served("hosting-orders", database_url, HOSTING_USERS) as api:
        live = await api.client.get("/healthz")
        assert live.status_code == 200 and live.json() == {"status": "ok"}
        ready = await api.client.get("/readyz", headers={"X-Request-ID": "lb-probe.42"})
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert ready.headers["x-request-id"] == "lb-probe.42"
        odd = await api.client.get("/healthz", headers={"X-Request-ID": "no spaces <allowed>"})
        assert odd.headers["x-request-id"] != "no spaces <allowed>" and len(odd.headers["x-request-id"]) == 16
        # a newer definition version applied by another process: this server must leave the pool
        await api.db.execute("INSERT INTO rc_definition_version (fingerprint, applied_at) VALUES ({}, CURRENT_TIMESTAMP)",
                             "f" * 64)
        stale = await api.client.get("/readyz")
        assert stale.status_code == 503
        assert stale.json()["detail"] == "the database is at other definitions than served"
        assert stale.json()["applied"] == "f" * 12


async def test_metrics_count_requests_and_measure_queues(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async with served("hosting-orders", database_url, HOSTING_USERS) as api:
        made = await api.post("tom.berger", "/api/templates/hosting_order/orders", {"fields": {
            "domain_name": "example.org", "contact_email": "web@example.org", "monthly_price": "9.90"}})
        assert made.status_code == 201, made.text
        route = ("GET", "/api/orders/{number}")
        before = _sample(await _metrics(api), "routecard_http_requests_total", *route, "200")
        counted = _sample(await _metrics(api), "routecard_http_request_duration_seconds_count", *route)
        for _ in range(3):
            assert (await api.get("tom.berger", f"/api/orders/{made.json()['number']}")).status_code == 200
        assert (await api.get("tom.berger", "/api/orders/XX-404")).status_code == 404
        text = await _metrics(api)
        assert _sample(text, "routecard_http_requests_total", *route, "200") == before + 3
        assert _sample(text, "routecard_http_requests_total", *route, "404") >= 1
        assert _sample(text, "routecard_http_request_duration_seconds_count", *route) == counted + 4
        queue = made.json()["queue"]
        assert f'routecard_open_work_orders{{queue="{queue}"}} 1' in text
        assert "routecard_outbox_backlog " in text and "routecard_jobs_due " in text
        monkeypatch.setenv("ROUTECARD_METRICS_TOKEN", "s3cret")
        assert (await api.client.get("/metrics")).status_code == 403
        wrong = await api.client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        right = await api.client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 200 and "routecard_open_work_orders" in right.text


async def _metrics(api: Any) -> str:
    page = await api.client.get("/metrics")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
    return str(page.text)


def _sample(text: str, name: str, method: str, route: str, status: str | None = None) -> float:
    """The value of one series on a metrics page (0 when it is not there yet)."""
    labels = f'method="{method}",route="{route}"' + (f',status="{status}"' if status else "")
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_each_request_is_logged_with_its_id(database_url: str) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign,assignment]
    logger = logging.getLogger("routecard.request")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        async with served("hosting-orders", database_url, HOSTING_USERS) as api:
            await api.client.get("/api/orders", headers={"X-Request-ID": "trace-1"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    (record,) = [r for r in records if getattr(r, "request_id", None) == "trace-1"]
    assert (record.method, record.route, record.status) == ("GET", "/api/orders", 401)  # type: ignore[attr-defined]
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "trace-1" and line["status"] == 401 and line["level"] == "info"
    assert line["logger"] == "routecard.request" and "GET /api/orders 401" in line["message"]


def test_log_format_is_chosen_by_option_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROUTECARD_LOG_FORMAT", raising=False)
    assert log_format(None) == "text"
    monkeypatch.setenv("ROUTECARD_LOG_FORMAT", "JSON")
    assert log_format(None) == "json"
    assert log_format("text") == "text"
    with pytest.raises(ValueError, match="unknown log format 'xml'"):
        log_format("xml")
    config = configure_logging("json")
    assert config["formatters"]["routecard"] == {"()": JsonFormatter}
    configure_logging("text")


async def test_rule_firings_are_counted(ecommerce: Env) -> None:
    before = metrics.RULE_FIRINGS.value("express_first", "fired")
    lukas = await ecommerce.actor("lukas.maier")
    view = await ecommerce.rt.create(lukas, "customer_order", {"fields": {**ORDER, "express_delivery": True}})
    assert view["priority"] == "high"
    assert metrics.RULE_FIRINGS.value("express_first", "fired") == before + 1
    assert 'routecard_rule_firings_total{rule="express_first",outcome="fired"}' in metrics.render()
