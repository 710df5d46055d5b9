"""The log-based metrics read fields the API really writes: one contract between its logs and the platform.

The API serves a few requests (a cached read, a query, a stored row that breaks the contract, a
refused publish); its log lines, formatted for Cloud Logging, are then matched against each
metric's filter and extractors. Renaming a log field without the metric fails here, not in prod.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime
from typing import Any

import pytest
from airline_platform.monitoring.log_metrics import LOG_METRICS, LogMetricSpec
from airline_platform.plan import Plan
from litestar.testing import TestClient

from app.api.main import create_app
from app.api.services import Services
from app.api.settings import Settings
from app.api.telemetry import CloudLoggingFormatter
from app.api.warehouse import FlightWarehouse
from tests.factories import flight_event

CONDITION = re.compile(r'^(?P<path>jsonPayload(?:\.[A-Za-z_]+)+)(?:="(?P<value>[^"]*)"|(?P<present>:\*))$')


class Rows:
    """A BigQuery client answering every query with two stored rows, the second breaking the contract."""

    def query(self, sql: str, **_: Any) -> Rows:
        return self

    def result(self, **_: Any) -> list[dict[str, Any]]:
        good = flight_event("row-good")
        values = {name: getattr(good, name) for name in good.__struct_fields__}
        values = {k: v.replace(tzinfo=None) if isinstance(v, datetime) else v for k, v in values.items()}
        return [values, values | {"event_id": "row-bad", "flight_number": 0}]

    def close(self) -> None:
        pass


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(CloudLoggingFormatter("p"))
        self.entries: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.entries.append(json.loads(self.format(record)))


@pytest.fixture(scope="module")
def payloads() -> list[dict[str, Any]]:
    """The API's log entries as Cloud Logging stores them: the JSON object is `jsonPayload`."""
    lines = Lines()
    logger = logging.getLogger("app")
    logger.addHandler(lines)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        settings = Settings(project_id="p", publish_auth="none")
        services = Services(settings)
        services.__dict__["warehouse"] = FlightWarehouse(Rows(), settings)  # type: ignore[arg-type]
        with TestClient(create_app(services=services)) as client:
            for _ in range(2):  # a miss, then a hit
                assert client.get("/v1/flights?from=2013-03-01&to=2013-03-02").status_code == 200
            json_body = {"content-type": "application/json"}
            refused = client.post("/v1/events", content=b'{"event_id": 1}', headers=json_body)
            assert refused.status_code == 400
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
    return [{"jsonPayload": entry} for entry in lines.entries]


def resolve(entry: dict[str, Any], path: str) -> Any:
    value: Any = entry
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def matches(entry: dict[str, Any], where: str) -> bool:
    for condition in where.split(" AND "):
        parsed = CONDITION.match(condition.strip())
        assert parsed, f"this test does not understand the filter condition {condition!r}"
        value = resolve(entry, parsed["path"])
        if value is None or (parsed["value"] is not None and str(value) != parsed["value"]):
            return False
    return True


@pytest.mark.parametrize("spec", LOG_METRICS, ids=lambda spec: spec.name)
def test_each_metric_finds_the_lines_and_fields_it_reads(
    payloads: list[dict[str, Any]], spec: LogMetricSpec
) -> None:
    matching = [entry for entry in payloads if matches(entry, spec.where)]
    assert matching, f"no log line of the API matches {spec.where!r}"
    for entry in matching:
        for label, path in spec.labels.items():
            assert resolve(entry, path) not in (None, ""), (label, entry)
        if spec.value is not None:
            assert isinstance(resolve(entry, spec.value), int | float), entry


def test_the_cache_metric_sees_both_misses_and_hits(payloads: list[dict[str, Any]]) -> None:
    results = [resolve(e, "jsonPayload.cache") for e in payloads if matches(e, LOG_METRICS[0].where)]
    assert results == ["miss", "hit"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_stack_declares_each_metric_on_the_services_logs(plans: dict[str, Plan], stack: str) -> None:
    declared = {
        r["inputs"]["name"]: r["inputs"]
        for r in plans[stack].resources
        if r["type"] == "gcp:logging/metric:Metric"
    }
    assert set(declared) == {spec.name for spec in LOG_METRICS}
    for spec in LOG_METRICS:
        metric = declared[spec.name]
        assert metric["filter"] == spec.log_filter("flight-api")
        assert metric.get("labelExtractors", {}) == {k: f"EXTRACT({v})" for k, v in spec.labels.items()}
        kind = metric["metricDescriptor"]["valueType"]
        assert kind == ("DISTRIBUTION" if spec.value else "INT64")
