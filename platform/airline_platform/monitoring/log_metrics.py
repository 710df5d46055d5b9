"""Metrics Cloud Run does not give, counted from log entries (log-based metrics).

Two logs of the service feed them (https://cloud.google.com/run/docs/logging):

- Cloud Run's own request log, `run.googleapis.com/requests`: one entry per request it served
  or refused, with `httpRequest` (method, URL, status, latency) and the trace. It sees what the
  container never sees (callers refused by IAM, 429 when no instance is free), so metrics on
  requests read it.
- The API's structured lines on stdout, `run.googleapis.com/stdout` (`app/api/telemetry.py`,
  `app/api/warehouse.py`): only what Cloud Run cannot know, one line per warehouse query, per
  refused request and per stored row that breaks the contract. Cloud Logging lifts the special
  fields (`severity`, `httpRequest`, the trace) out of `jsonPayload` into the `LogEntry`
  (https://cloud.google.com/logging/docs/structured-logging#special-payload-fields): filters and
  extractors read `httpRequest.status`, never `jsonPayload.httpRequest.status`.

Cloud Logging turns each into a metric under `logging.googleapis.com/user/`, which alerts and
the dashboard read like any other. Chosen over an OpenTelemetry exporter: no agent or extra
dependency in the image, no export path that can fail, and the same entries are what a responder
reads in the logs. `tests/platform/test_log_metrics.py` evaluates every filter and extractor over
the entries Cloud Logging would store for the API's real lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

SERVICE_LOGS = 'resource.type="cloud_run_revision" AND resource.labels.service_name="{service}"'
METRIC_PREFIX = "logging.googleapis.com/user/"


class Log(StrEnum):
    """A Cloud Run service's logs, by log id (URL-encoded in `logName`)."""

    REQUESTS = "run.googleapis.com%2Frequests"
    APP = "run.googleapis.com%2Fstdout"

    def log_name(self, project: str) -> str:
        return f"projects/{project}/logs/{self.value}"


@dataclass(frozen=True)
class LogMetricSpec:
    """A counter (or, with `value`, a distribution) over the entries of one log matching `where`."""

    name: str
    description: str
    log: Log
    where: str
    labels: Mapping[str, str] = field(default_factory=dict)  # label -> its extractor expression
    value: str | None = None  # the extractor of the number a distribution is made of
    unit: str = "1"

    @property
    def metric_type(self) -> str:
        return METRIC_PREFIX + self.name

    def log_filter(self, service: str, project: str) -> str:
        log_name = self.log.log_name(project)
        return f'{SERVICE_LOGS.format(service=service)} AND logName="{log_name}" AND {self.where}'


PUBLISH_RESPONSES = LogMetricSpec(
    "flight_api/publish_responses",
    "POST /v1/events answered, by HTTP status, from Cloud Run's request log: includes publishes Cloud "
    "Run refused before the container (403 from IAM, 429 with no instance free).",
    Log.REQUESTS,
    'httpRequest.requestMethod="POST" AND httpRequest.requestUrl:"/v1/events"',
    {"status": "EXTRACT(httpRequest.status)"},
)
WAREHOUSE_QUERIES = LogMetricSpec(
    "flight_api/warehouse_queries",
    "BigQuery queries the API ran (each one a cache miss), by query shape and outcome (ok, error, "
    "bytes-limit).",
    Log.APP,
    'jsonPayload.kind="warehouse_query"',
    {"shape": "EXTRACT(jsonPayload.warehouse.shape)", "outcome": "EXTRACT(jsonPayload.warehouse.outcome)"},
)
WAREHOUSE_LATENCY = LogMetricSpec(
    "flight_api/warehouse_query_latency",
    "Time a BigQuery query took as the API saw it, by query shape.",
    Log.APP,
    'jsonPayload.kind="warehouse_query"',
    {"shape": "EXTRACT(jsonPayload.warehouse.shape)"},
    value="EXTRACT(jsonPayload.warehouse.latency_ms)",
    unit="ms",
)
WAREHOUSE_BYTES_BILLED = LogMetricSpec(
    "flight_api/warehouse_bytes_billed",
    "Bytes BigQuery billed per query (10 MB at least), by query shape: the API's cost.",
    Log.APP,
    'jsonPayload.kind="warehouse_query"',
    {"shape": "EXTRACT(jsonPayload.warehouse.shape)"},
    value="EXTRACT(jsonPayload.warehouse.bytes_billed)",
    unit="By",
)
REJECTED_PUBLISHES = LogMetricSpec(
    "flight_api/rejected_publishes",
    "POST /v1/events the API refused, by reason (contract, media-type, empty, unauthenticated, "
    "invalid-token, not-a-publisher, rate-limited): events a producer meant to send that are not in "
    "the pipeline.",
    Log.APP,
    'jsonPayload.kind="refusal" AND jsonPayload.refusal.method="POST"',
    {"reason": "EXTRACT(jsonPayload.refusal.reason)"},
)
CONTRACT_BREACHES = LogMetricSpec(
    "flight_api/contract_breaches",
    "Stored rows withheld from readers because they break the event contract (published straight to "
    "the topic by a producer that skipped the API's checks).",
    Log.APP,
    'jsonPayload.kind="contract_breach"',
)
LOG_METRICS = (
    PUBLISH_RESPONSES,
    WAREHOUSE_QUERIES,
    WAREHOUSE_LATENCY,
    WAREHOUSE_BYTES_BILLED,
    REJECTED_PUBLISHES,
    CONTRACT_BREACHES,
)
