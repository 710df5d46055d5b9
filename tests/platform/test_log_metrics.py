"""Every log-based metric counts a known log entry, read as Cloud Logging stores it.

The API serves a few requests (a read that misses the cache and finds a stored row breaking the
contract, the same read again from the cache, a publish the API refuses), and Cloud Run refuses
one publish before the container (IAM). Each line the API prints becomes the `LogEntry` Cloud
Logging builds from it (special fields lifted out of `jsonPayload`, `cloud_logging.py`); each
request also gets the entry Cloud Run writes in its request log. Every metric's filter and
extractors, and every log query in the runbooks, are then evaluated over those entries.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from airline_platform.monitoring.log_metrics import LOG_METRICS, Log, LogMetricSpec
from airline_platform.plan import Plan, stack_config
from google.api_core.exceptions import BadRequest, ServiceUnavailable
from litestar.testing import TestClient

from app.api import telemetry
from app.api.main import create_app
from app.api.services import Services
from app.api.settings import Settings
from app.api.telemetry import CloudLoggingFormatter
from app.api.warehouse import BYTES_LIMIT_REASON, FlightWarehouse
from tests.factories import flight_event
from tests.platform import cloud_logging
from tests.platform.cloud_logging import PROJECT, SPECIAL_FIELDS, container_entry, extract, matches

SERVICE = "flight-api"
HOST = "https://flight-api-abc123-ew.a.run.app"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"  # pragma: allowlist secret (a W3C example trace id)
DOCS = Path(__file__).resolve().parents[2] / "docs"
# What each metric must count in the scenario: one tuple of label values per entry.
EXPECTED: dict[str, list[tuple[str, ...]]] = {
    "flight_api/publish_responses": [("400",), ("403",)],
    "flight_api/warehouse_queries": [("list", "bytes-limit"), ("list", "ok"), ("lookup", "error")],
    "flight_api/warehouse_query_latency": [("list",), ("list",), ("lookup",)],
    "flight_api/warehouse_bytes_billed": [("list",), ("list",), ("lookup",)],
    "flight_api/rejected_publishes": [("contract",)],
    "flight_api/contract_breaches": [()],
}


class Rows:
    """A BigQuery client: the first list query finds two stored rows, the second breaking the
    contract; later list queries exceed `maximum_bytes_billed`; lookups meet BigQuery's 503."""

    total_bytes_billed = 10_485_760
    total_bytes_processed = 2_048

    def __init__(self) -> None:
        self.lists = 0

    def query(self, sql: str, **_: Any) -> Rows:
        if "@start" not in sql:
            raise ServiceUnavailable("backendError")
        self.lists += 1
        if self.lists > 1:
            raise BadRequest("too many bytes", errors=[{"reason": BYTES_LIMIT_REASON}])
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
        self.setFormatter(CloudLoggingFormatter(PROJECT))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def entries() -> list[dict[str, Any]]:
    """The service's log entries as Cloud Logging stores them: the API's lines and Cloud Run's."""
    lines = Lines()
    logger = logging.getLogger("app")
    logger.addHandler(lines)
    level = logger.level
    logger.setLevel(logging.INFO)
    requests = []
    traced = {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}
    # A tally of its own: one that earlier tests filled could write its minute summary here.
    tally, telemetry.CACHE_TALLY = telemetry.CACHE_TALLY, telemetry.CacheTally()
    try:
        settings = Settings(project_id=PROJECT, publish_auth="none")
        services = Services(settings)
        services.__dict__["warehouse"] = FlightWarehouse(Rows(), settings)  # type: ignore[arg-type]
        with TestClient(create_app(services=services)) as client:
            for _ in range(2):  # a miss, then a hit
                url = "/v1/flights?from=2013-03-01&to=2013-03-02"
                requests.append(("GET", url, client.get(url, headers=traced).status_code))
            json_body = {"content-type": "application/json"} | traced
            refused = client.post("/v1/events", content=b'{"event_id": 1}', headers=json_body)
            requests.append(("POST", "/v1/events", refused.status_code))
            for url in ("/v1/flights/some-id", "/v1/flights?from=2013-03-03&to=2013-03-04"):
                requests.append(("GET", url, client.get(url, headers=traced).status_code))
    finally:
        telemetry.CACHE_TALLY = tally
        logger.removeHandler(lines)
        logger.setLevel(level)
    assert [status for *_, status in requests] == [200, 200, 400, 503, 500]
    trace = f"projects/{PROJECT}/traces/{TRACE}"
    served = [cloud_logging.request_entry(SERVICE, m, HOST + url, s, trace) for m, url, s in requests]
    iam_refused = cloud_logging.request_entry(SERVICE, "POST", f"{HOST}/v1/events", 403)
    app = [container_entry(json.loads(line), SERVICE) for line in lines.lines]
    return [*served, iam_refused, *app]


def counted(spec: LogMetricSpec, entries: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """The label values of each entry the metric counts, as Cloud Logging would extract them."""
    selected = [e for e in entries if matches(e, spec.log_filter(SERVICE, PROJECT))]
    return [tuple(str(extract(e, x)) for x in spec.labels.values()) for e in selected]


@pytest.mark.parametrize("spec", LOG_METRICS, ids=lambda spec: spec.name)
def test_each_metric_counts_the_entries_it_is_for(entries: list[dict[str, Any]], spec: LogMetricSpec) -> None:
    assert sorted(counted(spec, entries)) == EXPECTED[spec.name]
    for entry in (e for e in entries if matches(e, spec.log_filter(SERVICE, PROJECT))):
        assert entry["logName"] == spec.log.log_name(PROJECT)
        if spec.value is not None:
            assert isinstance(extract(entry, spec.value), int | float), entry


def test_every_metric_is_checked() -> None:
    assert sorted(EXPECTED) == sorted(spec.name for spec in LOG_METRICS)


def test_no_filter_or_extractor_reads_a_special_field_inside_json_payload() -> None:
    """Cloud Logging moves these out of `jsonPayload`: a path into it there always reads nothing."""
    lifted = re.compile(r"jsonPayload\.(?:" + "|".join(re.escape(k) for k in SPECIAL_FIELDS) + r")\b")
    for spec in LOG_METRICS:
        texts = [spec.log_filter(SERVICE, PROJECT), *spec.labels.values(), spec.value or ""]
        assert not [t for t in texts if lifted.search(t)], spec.name


def test_the_old_filter_reads_nothing_from_stored_entries(entries: list[dict[str, Any]]) -> None:
    # The shape this file used to assume (the whole line as jsonPayload) would have matched here.
    old = 'jsonPayload.httpRequest.requestMethod="POST"'
    assert not [e for e in entries if matches(e, old)]
    assert [e for e in entries if matches(e, 'httpRequest.requestMethod="POST"')]


def test_the_api_repeats_nothing_cloud_run_logs(entries: list[dict[str, Any]]) -> None:
    app = [e for e in entries if e["logName"] == Log.APP.log_name(PROJECT)]
    assert app, "the API's lines are in the scenario"
    assert not [e for e in app if "httpRequest" in e], "Cloud Run's request log has the request"
    kinds = Counter(e["jsonPayload"].get("kind") for e in app)
    # Four reads, one refusal: three queries (the hit costs no line), one breach, one refusal; the
    # error handler explains the 503 and the 500 once each.
    assert kinds == {"warehouse_query": 3, "contract_breach": 1, "refusal": 1, None: 2}
    assert all(e["trace"] == f"projects/{PROJECT}/traces/{TRACE}" for e in app)


def runbook_queries() -> list[tuple[str, str]]:
    found = []
    for doc in sorted(DOCS.rglob("*.md")):
        for query in re.findall(r"gcloud logging read '([^']+)'", doc.read_text()):
            found.append((doc.name, query.replace("$PROJECT", PROJECT).replace("${PROJECT}", PROJECT)))
    return found


@pytest.mark.parametrize(("doc", "query"), runbook_queries())
def test_runbook_log_queries_find_what_they_look_for(
    entries: list[dict[str, Any]], doc: str, query: str
) -> None:
    """Every query parses; one that reads the service's logs finds a known entry here."""
    hits = [e for e in entries if matches(e, query)]
    if "protoPayload" not in query and "revision_name" not in query:
        assert hits, f"{doc}: {query} finds nothing in the service's entries"


def test_the_evaluator_follows_the_query_language() -> None:
    entry = {
        "severity": "WARNING",
        "httpRequest": {"status": 503, "requestUrl": "https://h/v1/Flights?x=1"},
        "jsonPayload": {"kind": "refusal", "refusal": {"reason": "contract"}},
    }
    assert matches(entry, "httpRequest.status>=500")
    assert not matches(entry, "httpRequest.status<500")
    assert matches(entry, "severity>=WARNING")
    assert not matches(entry, "severity>=ERROR")
    assert matches(entry, 'httpRequest.requestUrl:"/v1/flights"'), "has is case-insensitive"
    assert matches(entry, "jsonPayload.refusal:*")
    assert not matches(entry, "jsonPayload.principal:*")
    assert matches(entry, 'jsonPayload.principal!="x"')
    assert matches(entry, 'NOT jsonPayload.kind="access"')
    # OR binds tighter than AND: a AND (b OR c).
    assert matches(entry, 'jsonPayload.kind="refusal" AND severity="ERROR" OR httpRequest.status=503')
    assert not matches(entry, 'jsonPayload.kind="access" AND severity="ERROR" OR httpRequest.status=503')
    assert matches(entry, 'jsonPayload.kind="refusal" httpRequest.status=503'), "implicit AND"
    assert matches(entry, 'jsonPayload.kind=("access" OR "refusal")')
    with pytest.raises(ValueError, match="expected a comparison"):
        matches(entry, "httpRequest.status>=500 && severity=ERROR")
    assert extract(entry, 'REGEXP_EXTRACT(httpRequest.requestUrl, "/v1/(\\\\w+)")') == "Flights"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_stack_declares_each_metric_on_the_services_logs(plans: dict[str, Plan], stack: str) -> None:
    declared = {
        r["inputs"]["name"]: r["inputs"]
        for r in plans[stack].resources
        if r["type"] == "gcp:logging/metric:Metric"
    }
    assert set(declared) == {spec.name for spec in LOG_METRICS}
    project = stack_config(stack)["gcp:project"]
    for spec in LOG_METRICS:
        metric = declared[spec.name]
        assert metric["filter"] == spec.log_filter(SERVICE, project)
        assert metric.get("labelExtractors", {}) == dict(spec.labels)
        assert metric.get("valueExtractor") == spec.value
        kind = metric["metricDescriptor"]["valueType"]
        assert kind == ("DISTRIBUTION" if spec.value else "INT64")
