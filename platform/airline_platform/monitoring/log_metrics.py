"""Metrics Cloud Run does not give, counted from the API's structured logs (log-based metrics).

The API writes one JSON access line per request and one line per warehouse query
(`app/api/telemetry.py`, `app/api/warehouse.py`); Cloud Logging turns the fields below into
metrics under `logging.googleapis.com/user/`, which alerts and the dashboard read like any
other. Chosen over an OpenTelemetry exporter: no agent or extra dependency in the image, no
export path that can fail, and the same lines are what a responder reads in the logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SERVICE_LOGS = 'resource.type="cloud_run_revision" AND resource.labels.service_name="{service}"'
METRIC_PREFIX = "logging.googleapis.com/user/"


@dataclass(frozen=True)
class LogMetricSpec:
    """A counter (or, with `value`, a distribution) over the service's log entries matching `where`."""

    name: str
    description: str
    where: str
    labels: Mapping[str, str] = field(default_factory=dict)  # label -> the field it is extracted from
    value: str | None = None  # the numeric field a distribution is made of
    unit: str = "1"

    @property
    def metric_type(self) -> str:
        return METRIC_PREFIX + self.name

    def log_filter(self, service: str) -> str:
        return f"{SERVICE_LOGS.format(service=service)} AND {self.where}"


CACHE_LOOKUPS = LogMetricSpec(
    "flight_api/cache_lookups",
    "Reads answered from the result cache: hit, miss, collapsed (waited for another request's query) "
    "or stale (the warehouse was unavailable).",
    'jsonPayload.kind="access" AND jsonPayload.cache:*',
    {"result": "jsonPayload.cache"},
)
WAREHOUSE_QUERIES = LogMetricSpec(
    "flight_api/warehouse_queries",
    "BigQuery queries the API ran, by query shape and outcome (ok, error, bytes-limit).",
    'jsonPayload.kind="warehouse_query"',
    {"shape": "jsonPayload.warehouse.shape", "outcome": "jsonPayload.warehouse.outcome"},
)
WAREHOUSE_LATENCY = LogMetricSpec(
    "flight_api/warehouse_query_latency",
    "Time a BigQuery query took as the API saw it, by query shape.",
    'jsonPayload.kind="warehouse_query"',
    {"shape": "jsonPayload.warehouse.shape"},
    value="jsonPayload.warehouse.latency_ms",
    unit="ms",
)
WAREHOUSE_BYTES_BILLED = LogMetricSpec(
    "flight_api/warehouse_bytes_billed",
    "Bytes BigQuery billed per query (10 MB at least), by query shape: the API's cost.",
    'jsonPayload.kind="warehouse_query"',
    {"shape": "jsonPayload.warehouse.shape"},
    value="jsonPayload.warehouse.bytes_billed",
    unit="By",
)
REJECTED_PUBLISHES = LogMetricSpec(
    "flight_api/rejected_publishes",
    "POST /v1/events refused, by reason (contract, media-type, empty, unauthenticated, invalid-token, "
    "not-a-publisher, rate-limited): events a producer meant to send that are not in the pipeline.",
    'jsonPayload.kind="access" AND jsonPayload.httpRequest.requestMethod="POST" AND jsonPayload.rejected:*',
    {"reason": "jsonPayload.rejected"},
)
CONTRACT_BREACHES = LogMetricSpec(
    "flight_api/contract_breaches",
    "Stored rows withheld from readers because they break the event contract (published straight to "
    "the topic by a producer that skipped the API's checks).",
    'jsonPayload.kind="contract_breach"',
)
LOG_METRICS = (
    CACHE_LOOKUPS,
    WAREHOUSE_QUERIES,
    WAREHOUSE_LATENCY,
    WAREHOUSE_BYTES_BILLED,
    REJECTED_PUBLISHES,
    CONTRACT_BREACHES,
)
