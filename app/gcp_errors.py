"""What a failed call to a Google API means, decided once for the API and the bridge alike.

The answer comes from Google's documented error semantics, most specific first:

- BigQuery's error `reason` (https://cloud.google.com/bigquery/docs/error-messages): BigQuery
  throttles with HTTP 403 and `rateLimitExceeded` or `quotaExceeded`
  (https://cloud.google.com/bigquery/docs/troubleshoot-quotas), so the status alone would call a
  throttle a permission problem. The retryable reasons are those of Google's own client
  (`google.cloud.bigquery.retry`: `_RETRYABLE_REASONS` and `job_retry_reasons`), plus
  `quotaExceeded`, which the quota page says to wait out.
- The gRPC status code (Pub/Sub, https://cloud.google.com/pubsub/docs/reference/error-codes): the
  codes the Pub/Sub client's own publish retry retries are the transient ones.
- The HTTP status class, for everything else: 408, 429 and 5xx are transient; 401/403 deny; 404
  does not exist; other 4xx say the request itself is wrong.

Connection failures, timeouts and a retry that gave up on them are transient too.
"""

from __future__ import annotations

from enum import StrEnum

import grpc
import requests
from google.api_core.exceptions import GoogleAPICallError, GoogleAPIError, RetryError
from google.auth.exceptions import GoogleAuthError, TransportError

# Everything a call through the official clients raises when the service (or the way to it) fails.
GOOGLE_CALL_ERRORS: tuple[type[Exception], ...] = (
    GoogleAPIError,
    GoogleAuthError,
    requests.RequestException,
    TimeoutError,  # also what asyncio and concurrent.futures raise (aliases since Python 3.11)
)


class Failure(StrEnum):
    """Whose move it is after a failed call."""

    UNAVAILABLE = "UNAVAILABLE"  # down, slow, overloaded or throttling: the same call can succeed later
    NOT_FOUND = "NOT_FOUND"  # the dataset, table, topic or subscription does not exist
    PERMISSION_DENIED = "PERMISSION_DENIED"  # the caller's identity may not do this
    INVALID = "INVALID"  # the request itself is wrong (our SQL, a value, a row): retrying cannot help


TRANSIENT_REASONS = frozenset(
    {
        "rateLimitExceeded",
        "quotaExceeded",
        "backendError",
        "internalError",
        "badGateway",
        "jobBackendError",
        "jobInternalError",
        "jobRateLimitExceeded",
    }
)
REASONS = {
    "accessDenied": Failure.PERMISSION_DENIED,
    "billingNotEnabled": Failure.PERMISSION_DENIED,
    "notFound": Failure.NOT_FOUND,
    "invalid": Failure.INVALID,
    "invalidQuery": Failure.INVALID,
    "bytesBilledLimitExceeded": Failure.INVALID,
    "responseTooLarge": Failure.INVALID,
} | dict.fromkeys(TRANSIENT_REASONS, Failure.UNAVAILABLE)
TRANSIENT_GRPC_CODES = frozenset(
    {
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.UNKNOWN,
    }
)
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def _reasons(exc: GoogleAPICallError) -> list[str]:
    return [e["reason"] for e in exc.errors if isinstance(e, dict) and isinstance(e.get("reason"), str)]


def classify(exc: BaseException) -> Failure:
    """The class of a failed call; anything unrecognised counts as INVALID (not worth retrying)."""
    if isinstance(exc, RetryError):  # the client's retry gave up: judge what it last saw
        return Failure.UNAVAILABLE if exc.cause is None else classify(exc.cause)
    if isinstance(exc, GoogleAPICallError):
        known = [REASONS[r] for r in _reasons(exc) if r in REASONS]
        if known:
            return Failure.UNAVAILABLE if Failure.UNAVAILABLE in known else known[0]
        if exc.grpc_status_code in TRANSIENT_GRPC_CODES or exc.code in TRANSIENT_STATUSES:
            return Failure.UNAVAILABLE
        if exc.code in (401, 403):
            return Failure.PERMISSION_DENIED
        if exc.code == 404:
            return Failure.NOT_FOUND
        return Failure.INVALID
    if isinstance(exc, requests.exceptions.SSLError):  # a certificate problem does not go away
        return Failure.INVALID
    if isinstance(exc, GoogleAuthError) and not isinstance(exc, TransportError):
        return Failure.PERMISSION_DENIED  # credentials that cannot be refreshed (e.g. invalid_grant)
    transient = (
        TimeoutError,
        ConnectionError,
        TransportError,
        requests.ConnectionError,
        requests.Timeout,
        requests.exceptions.ChunkedEncodingError,
    )
    return Failure.UNAVAILABLE if isinstance(exc, transient) else Failure.INVALID


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same call later can succeed."""
    return classify(exc) is Failure.UNAVAILABLE
