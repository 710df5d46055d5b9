"""Backend failures are classified: retry later (503, Retry-After) or our own fault (500, logged at ERROR)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import requests
from google.api_core import exceptions as gexc
from google.auth.exceptions import RefreshError, TransportError
from litestar.testing import TestClient

from app.api.main import create_app
from app.api.problems import is_transient
from app.api.services import Services
from app.api.settings import Settings


def forbidden(reason: str) -> gexc.Forbidden:
    return gexc.Forbidden("denied", errors=[{"reason": reason, "message": "m"}])


TRANSIENT: list[Callable[[], BaseException]] = [
    lambda: TimeoutError(),
    lambda: requests.ConnectionError("refused"),
    lambda: requests.ReadTimeout("read timed out"),
    lambda: TransportError("metadata server unreachable"),
    lambda: gexc.ServiceUnavailable("unavailable"),
    lambda: gexc.TooManyRequests("slow down"),
    lambda: gexc.InternalServerError("backendError"),
    lambda: gexc.BadGateway("bad gateway"),
    lambda: gexc.GatewayTimeout("timeout"),
    lambda: gexc.DeadlineExceeded("deadline"),
    lambda: gexc.RetryError("gave up", cause=gexc.ServiceUnavailable("x")),
    lambda: forbidden("rateLimitExceeded"),
    lambda: forbidden("quotaExceeded"),
]
OURS: list[Callable[[], BaseException]] = [
    lambda: gexc.BadRequest("Syntax error: Unexpected identifier"),
    lambda: gexc.NotFound("Not found: Table p:d.t"),
    lambda: forbidden("accessDenied"),
    lambda: gexc.PermissionDenied("pubsub.topics.publish denied"),
    lambda: gexc.RetryError("gave up", cause=gexc.NotFound("x")),
    lambda: RefreshError("invalid_grant"),
    lambda: ValueError("a bug"),
]


@pytest.mark.parametrize("make", TRANSIENT)
def test_unavailable_slow_and_throttled_backends_are_transient(make: Callable[[], BaseException]) -> None:
    assert is_transient(make())


@pytest.mark.parametrize("make", OURS)
def test_our_own_faults_are_not_transient(make: Callable[[], BaseException]) -> None:
    assert not is_transient(make())


class FailingWarehouse:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def list_flights(self, *_: Any) -> Any:
        raise self.error

    get_flight = newest_day = list_flights

    def close(self) -> None:
        pass


def client_whose_warehouse_raises(error: BaseException) -> TestClient:
    services = Services(Settings(project_id="classify"))
    services.__dict__["warehouse"] = FailingWarehouse(error)
    return TestClient(create_app(services=services))


@pytest.mark.parametrize("make", TRANSIENT)
def test_a_transient_failure_is_a_503_to_retry(make: Callable[[], BaseException]) -> None:
    with client_whose_warehouse_raises(make()) as client:
        for path in ("/v1/flights?from=2013-01-01", "/v1/flights/x", "/v1/flights"):
            response = client.get(path)
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "2"
            assert response.headers["content-type"].startswith("application/problem+json")


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("make", OURS)
def test_our_own_fault_is_a_500_logged_at_error(make: Callable[[], BaseException]) -> None:
    logger = logging.getLogger("app.api.problems")
    records = Records()
    logger.addHandler(records)
    try:
        with client_whose_warehouse_raises(make()) as client:
            response = client.get("/v1/flights?from=2013-01-01")
    finally:
        logger.removeHandler(records)
    assert response.status_code == 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    (error,) = [r for r in records.records if r.levelno == logging.ERROR]
    assert error.exc_info is not None  # the traceback is in the log
