"""Every error leaves as `application/problem+json` (RFC 9457), classified by whose fault it is.

- The client's: 4xx with what was wrong, naming the public parameter (`from`, not `from_`).
- A backend that is down, slow or throttling us (timeouts, connection errors, 429, 5xx): 503
  with `Retry-After`, so callers retry and nothing is lost.
- Ours (bad SQL, a missing table or topic, a permission we lack, a bug): 500, logged at ERROR
  with the traceback, so the availability SLO and the alerts see it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from app import gcp_errors
from app.api.query_params import public_name
from app.api.settings import Settings

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 2


class BackendUnavailable(Exception):
    """A backend known to be down (its circuit breaker is open): answer 503 at once, saying when to retry."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


BACKEND_ERRORS: tuple[type[Exception], ...] = (BackendUnavailable, *gcp_errors.GOOGLE_CALL_ERRORS)


class ProblemDetails(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem document, as every error response carries it."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


def too_large(limit: int | None) -> str:
    return f"The body is larger than the {limit} bytes this operation accepts."


def too_many(per_minute: int) -> str:
    return f"More than {per_minute} requests a minute from this client; slow down."


# Examples every operation that can answer these statuses shares; the others are each operation's own
# (`problem_responses`), so a document never shows one operation's error under another.
# The rate limit's is the API's default; each stack sets its own (APP_RATE_LIMIT_PER_MINUTE: prod's is
# higher), and the answer names it, as does its RateLimit-Policy header.
RATE_LIMITED = too_many(Settings.rate_limit_per_minute)
UNAVAILABLE = "A backing service (Pub/Sub or BigQuery) is unavailable or too slow; retry later."


def problem_responses(details: Mapping[int, str]) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error statuses an operation answers, each with its own example detail."""
    return {
        status: ResponseSpec(
            data_container=ProblemDetails,
            media_type=PROBLEM_JSON,
            description=HTTPStatus(status).phrase,
            generate_examples=False,
            examples=[
                Example(
                    summary=HTTPStatus(status).phrase,
                    value=ProblemDetails("about:blank", HTTPStatus(status).phrase, status, detail),
                )
            ],
        )
        for status, detail in details.items()
    }


def problem(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> Response[Any]:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    return Response(body | extra, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_body(status: int, detail: str) -> bytes:
    """A problem document as bytes, for answers stored in the result cache."""
    return msgspec.json.encode(ProblemDetails("about:blank", HTTPStatus(status).phrase, status, detail))


def is_transient(exc: BaseException) -> bool:
    """True when retrying later can succeed: a breaker is open, or Google's answer says so (`gcp_errors`)."""
    return isinstance(exc, BackendUnavailable) or gcp_errors.is_transient(exc)


def _public_keys(request: Request[Any, Any, Any], errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e | {"key": public_name(request, e["key"])} if "key" in e else e for e in errors]


def http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    extra: dict[str, Any] = {}
    detail = exc.detail
    if exc.status_code == 413:
        detail = too_large(request.route_handler.resolve_request_max_body_size())
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list) and exc.extra:
        extra["errors"] = exc.extra
        if detail.startswith("Validation failed"):  # Litestar's own: it names parameters by their Python name
            extra["errors"] = _public_keys(request, exc.extra)
            keys = ", ".join(f"`{e['key']}`" for e in extra["errors"] if "key" in e)
            detail = f"Invalid {keys}: " + "; ".join(str(e.get("message", "")) for e in extra["errors"])
    return problem(exc.status_code, detail, headers=exc.headers, **extra)


def backend_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if is_transient(exc):
        log.warning("backend unavailable on %s %s: %r", request.method, request.url.path, exc)
        retry_after = exc.retry_after_seconds if isinstance(exc, BackendUnavailable) else RETRY_AFTER_SECONDS
        return problem(
            503,
            "A backing service (Pub/Sub or BigQuery) is unavailable or too slow; retry later.",
            headers={"Retry-After": str(retry_after)},
        )
    return unexpected(request, exc)


def unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "Unexpected error; it has been logged.")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    HTTPException: http_exception,
    **dict.fromkeys(BACKEND_ERRORS, backend_error),
    Exception: unexpected,
}
