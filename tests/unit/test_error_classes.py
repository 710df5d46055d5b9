"""One classification of Google's errors (`app/gcp_errors.py`), and both of its consumers agree with it.

Each row: a failure as the client libraries raise it, its class, and what each consumer does with
it: the API answers 503 with Retry-After (transient; the cache serves stale and the breaker
counts it) or 500 logged at ERROR (ours); the bridge reports the table state a BigQuery
subscription would, and whether one row may be to blame (then it probes).
"""

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
from app.bridge.warehouse import TableState, problem_from
from app.gcp_errors import Failure, classify


def bigquery_error(cls: type[gexc.GoogleAPICallError], reason: str, message: str = "m") -> Exception:
    """An error as google-cloud-bigquery raises it: the HTTP class, with the body's `errors` reasons."""
    return cls(message, errors=[{"reason": reason, "message": message, "domain": "global"}])


U, NF, PD, INV = Failure.UNAVAILABLE, Failure.NOT_FOUND, Failure.PERMISSION_DENIED, Failure.INVALID
TABLE: list[tuple[str, Callable[[], BaseException], Failure, TableState, bool]] = [
    ("timeout", TimeoutError, U, TableState.UNAVAILABLE, False),
    ("connection-refused", lambda: requests.ConnectionError("refused"), U, TableState.UNAVAILABLE, False),
    ("read-timeout", lambda: requests.ReadTimeout("read timed out"), U, TableState.UNAVAILABLE, False),
    ("metadata-unreachable", lambda: TransportError("metadata"), U, TableState.UNAVAILABLE, False),
    ("http-503", lambda: gexc.ServiceUnavailable("x"), U, TableState.UNAVAILABLE, False),
    ("http-429", lambda: gexc.TooManyRequests("slow down"), U, TableState.UNAVAILABLE, False),
    # A bare 500 is also bqemulator's answer to one row it cannot convert: the bridge probes.
    ("http-500", lambda: gexc.InternalServerError("boom"), U, TableState.UNAVAILABLE, True),
    ("http-502", lambda: gexc.BadGateway("x"), U, TableState.UNAVAILABLE, False),
    ("http-504", lambda: gexc.GatewayTimeout("x"), U, TableState.UNAVAILABLE, False),
    ("retry-gave-up", lambda: gexc.RetryError("gave up", cause=None), U, TableState.UNAVAILABLE, False),
    (
        "retry-on-503",
        lambda: gexc.RetryError("gave up", cause=gexc.ServiceUnavailable("x")),
        U,
        TableState.UNAVAILABLE,
        False,
    ),
    # BigQuery throttles with 403: the reason decides, not the status.
    (
        "403-rateLimitExceeded",
        lambda: bigquery_error(gexc.Forbidden, "rateLimitExceeded"),
        U,
        TableState.UNAVAILABLE,
        False,
    ),
    (
        "403-quotaExceeded",
        lambda: bigquery_error(gexc.Forbidden, "quotaExceeded"),
        U,
        TableState.UNAVAILABLE,
        False,
    ),
    (
        "backendError",
        lambda: bigquery_error(gexc.ServiceUnavailable, "backendError"),
        U,
        TableState.UNAVAILABLE,
        False,
    ),
    (
        "400-jobBackendError",
        lambda: bigquery_error(gexc.BadRequest, "jobBackendError"),
        U,
        TableState.UNAVAILABLE,
        False,
    ),
    # Pub/Sub's gRPC codes its client retries.
    ("grpc-ABORTED", lambda: gexc.Aborted("x"), U, TableState.UNAVAILABLE, False),
    ("grpc-RESOURCE_EXHAUSTED", lambda: gexc.ResourceExhausted("x"), U, TableState.UNAVAILABLE, False),
    ("grpc-DEADLINE_EXCEEDED", lambda: gexc.DeadlineExceeded("x"), U, TableState.UNAVAILABLE, False),
    ("grpc-UNKNOWN", lambda: gexc.Unknown("x"), U, TableState.UNAVAILABLE, False),
    # Ours: a request the service calls wrong, a missing resource, a permission we lack.
    (
        "invalidQuery",
        lambda: bigquery_error(gexc.BadRequest, "invalidQuery", "Syntax error"),
        INV,
        TableState.UNAVAILABLE,
        True,
    ),
    (
        "invalid-schema",
        lambda: bigquery_error(gexc.BadRequest, "invalid", "no such field: gate"),
        INV,
        TableState.SCHEMA_MISMATCH,
        False,
    ),
    (
        "bytes-billed-cap",
        lambda: bigquery_error(gexc.BadRequest, "bytesBilledLimitExceeded"),
        INV,
        TableState.UNAVAILABLE,
        True,
    ),
    ("grpc-INVALID_ARGUMENT", lambda: gexc.InvalidArgument("x"), INV, TableState.UNAVAILABLE, True),
    ("duplicate-409", lambda: bigquery_error(gexc.Conflict, "duplicate"), INV, TableState.UNAVAILABLE, True),
    ("notFound", lambda: bigquery_error(gexc.NotFound, "notFound"), NF, TableState.NOT_FOUND, False),
    ("retry-on-404", lambda: gexc.RetryError("x", cause=gexc.NotFound("x")), NF, TableState.NOT_FOUND, False),
    (
        "accessDenied",
        lambda: bigquery_error(gexc.Forbidden, "accessDenied"),
        PD,
        TableState.PERMISSION_DENIED,
        False,
    ),
    ("grpc-PERMISSION_DENIED", lambda: gexc.PermissionDenied("x"), PD, TableState.PERMISSION_DENIED, False),
    ("http-401", lambda: gexc.Unauthorized("x"), PD, TableState.PERMISSION_DENIED, False),
    ("refresh-invalid-grant", lambda: RefreshError("invalid_grant"), PD, TableState.PERMISSION_DENIED, False),
    ("tls-certificate", lambda: requests.exceptions.SSLError("cert"), INV, TableState.UNAVAILABLE, False),
    ("a-bug", lambda: ValueError("a bug"), INV, TableState.UNAVAILABLE, False),
]
IDS = [row[0] for row in TABLE]


@pytest.mark.parametrize(("name", "make", "failure", "state", "row_suspect"), TABLE, ids=IDS)
def test_one_classification_and_both_consumers_agree(
    name: str, make: Callable[[], BaseException], failure: Failure, state: TableState, row_suspect: bool
) -> None:
    error = make()
    assert classify(error) is failure
    # The API's cache, breaker and problem responses ask is_transient.
    assert is_transient(error) is (failure is Failure.UNAVAILABLE)
    # The bridge holds its messages and retries, or reports the table state.
    problem = problem_from(error)
    assert (problem.state, problem.row_suspect) == (state, row_suspect)
    if failure is Failure.UNAVAILABLE:
        assert problem.state is TableState.UNAVAILABLE


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


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize(("name", "make", "failure", "state", "row_suspect"), TABLE, ids=IDS)
def test_the_api_answers_each_class(
    name: str, make: Callable[[], BaseException], failure: Failure, state: TableState, row_suspect: bool
) -> None:
    logger = logging.getLogger("app.api.problems")
    records = Records()
    logger.addHandler(records)
    try:
        with client_whose_warehouse_raises(make()) as client:
            responses = [
                client.get(path) for path in ("/v1/flights?from=2013-01-01", "/v1/flights/x", "/v1/flights")
            ]
    finally:
        logger.removeHandler(records)
    for response in responses:
        assert response.headers["content-type"].startswith("application/problem+json")
        if failure is Failure.UNAVAILABLE:
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "2"
        else:
            assert response.status_code == 500, response.text
    errors = [r for r in records.records if r.levelno == logging.ERROR]
    if failure is Failure.UNAVAILABLE:
        assert not errors
    else:  # our own fault: logged with its traceback, once per request
        assert len(errors) == len(responses)
        assert all(r.exc_info is not None for r in errors)
