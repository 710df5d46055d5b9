"""Per-client rate limits answer 429 problems; the app logs refusals and queries, never a plain request.

Cloud Run writes the request log (`run.googleapis.com/requests`); the app adds only what Cloud Run
cannot know. The log lines are checked in the shape Cloud Logging reads (`CloudLoggingFormatter`),
as they leave the process; a request's lines share its trace and its request id, and no token is
logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from app.api.limits import RateLimit
from app.api.main import create_app
from app.api.services import Services
from app.api.settings import Settings
from app.api.telemetry import CACHE_SUMMARY_SECONDS, CacheTally, CloudLoggingFormatter
from tests.unit.test_cached_reads import FakeWarehouse

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"  # pragma: allowlist secret (a W3C example trace id)


class Lines(logging.Handler):
    """Collects what the process would print, formatted for Cloud Logging."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(CloudLoggingFormatter("log-test"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture
def logs() -> Iterator[Lines]:
    handler = Lines()
    app_logger = logging.getLogger("app")
    app_logger.addHandler(handler)
    previous = app_logger.level
    app_logger.setLevel(logging.INFO)
    yield handler
    app_logger.removeHandler(handler)
    app_logger.setLevel(previous)


def client_with(**settings: Any) -> TestClient:
    services = Services(Settings(project_id="log-test", **settings))
    services.__dict__["warehouse"] = FakeWarehouse()
    return TestClient(create_app(services=services))


def test_a_client_over_its_rate_gets_429_problems_and_others_go_on() -> None:
    with client_with(rate_limit_per_minute=3) as client:
        for _ in range(3):
            assert client.get("/v1/flights/known-1").status_code == 200
        limited = client.get("/v1/flights/known-1")
        assert limited.status_code == 429
        assert limited.headers["content-type"].startswith("application/problem+json")
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["status"] == 429
        # Another client (Google's front end appends the caller's address last) is not affected.
        other = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
        assert client.get("/v1/flights/known-1", headers=other).status_code == 200
        # Prepending an address cannot pass for another client.
        spoofed = {"X-Forwarded-For": "203.0.113.9, testclient"}
        assert client.get("/v1/flights/known-1", headers=spoofed).status_code == 429
        # Probes and docs are never limited.
        assert all(client.get("/health").status_code == 200 for _ in range(5))


def test_buckets_refill_with_time() -> None:
    now = [0.0]
    limiter = RateLimit(per_minute=60, clock=lambda: now[0])
    assert limiter.retry_after("a") is None
    for _ in range(59):
        assert limiter.retry_after("a") is None
    wait = limiter.retry_after("a")
    assert wait is not None
    assert 0 < wait <= 1.0
    now[0] += 1.0  # one token a second
    assert limiter.retry_after("a") is None
    assert limiter.retry_after("a") is not None


def test_a_read_writes_no_line_and_a_refusal_one_with_its_trace(logs: Lines) -> None:
    secret = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2Vu.c2lnbmF0dXJl"  # pragma: allowlist secret (made up)
    with client_with(rate_limit_per_minute=1) as client:
        read = client.get(
            "/v1/flights?from=2013-03-01&to=2013-03-02",
            headers={"Authorization": f"Bearer {secret}", "User-Agent": "analyst-notebook/1.0"},
        )
        refused = client.get(
            "/v1/flights?from=2013-03-01&to=2013-03-02",
            headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01", "Authorization": f"Bearer {secret}"},
        )
    assert (read.status_code, refused.status_code) == (200, 429)
    # Cloud Run's request log has every request; the app repeats none of it.
    assert not [e for e in logs.entries() if e.get("requestId") == read.headers["x-request-id"]]
    assert all("httpRequest" not in e for e in logs.entries())
    (refusal,) = [e for e in logs.entries() if e.get("requestId") == refused.headers["x-request-id"]]
    assert refusal["kind"] == "refusal"
    assert refusal["refusal"] == {"reason": "rate-limited", "method": "GET"}
    assert refusal["severity"] == "INFO"
    assert refusal["logging.googleapis.com/trace"] == f"projects/log-test/traces/{TRACE}"
    assert refusal["logging.googleapis.com/spanId"] == "00f067aa0ba902b7"
    assert refusal["logging.googleapis.com/trace_sampled"] is True
    assert all(secret not in line for line in logs.lines)
    assert all("Bearer" not in line for line in logs.lines)


def test_google_trace_header_and_incoming_request_ids(logs: Lines) -> None:
    with client_with(rate_limit_per_minute=1) as client:
        client.get("/v1/flights/known-1")
        kept = client.get(
            "/v1/flights/known-1",
            headers={"X-Request-Id": "req-123", "X-Cloud-Trace-Context": f"{TRACE}/1;o=1"},
        )
        replaced = client.get("/health", headers={"X-Request-Id": "bad id with spaces"})
    assert kept.headers["x-request-id"] == "req-123"
    assert replaced.headers["x-request-id"] != "bad id with spaces"
    entries = {e["requestId"]: e for e in logs.entries() if e.get("kind") == "refusal"}
    assert entries["req-123"]["logging.googleapis.com/trace"] == f"projects/log-test/traces/{TRACE}"
    assert entries["req-123"]["logging.googleapis.com/spanId"] == f"{1:016x}"


def test_cache_results_are_one_summary_line_a_minute_outside_any_request(logs: Lines) -> None:
    now = [0.0]
    tally = CacheTally(clock=lambda: now[0])
    for result in ("miss", "hit", "hit"):
        tally.add(result)
    assert not logs.lines, "nothing is written per read"
    now[0] = CACHE_SUMMARY_SECONDS
    tally.add("stale")
    (summary,) = logs.entries()
    assert summary["kind"] == "cache_summary"
    assert summary["cache"] == {"miss": 1, "hit": 2, "stale": 1}
    assert summary["seconds"] == CACHE_SUMMARY_SECONDS
    assert "requestId" not in summary
    tally.add("hit")
    assert len(logs.lines) == 1, "the next minute starts empty"


def test_warehouse_queries_and_errors_carry_the_request_trace(logs: Lines) -> None:
    services = Services(Settings(project_id="log-test", bigquery_api_endpoint="http://127.0.0.1:9"))
    with TestClient(create_app(services=services)) as client:
        response = client.get("/v1/flights/abc", headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-00"})
    assert response.status_code == 503
    request_id = response.headers["x-request-id"]
    mine = [e for e in logs.entries() if e.get("requestId") == request_id]
    query = next(e for e in mine if e.get("kind") == "warehouse_query")
    assert query["warehouse"]["shape"] == "lookup"
    assert query["warehouse"]["outcome"] == "error"
    assert query["logging.googleapis.com/trace"] == f"projects/log-test/traces/{TRACE}"
