"""Every error leaves as `application/problem+json` (RFC 9457).

Client mistakes keep their 4xx status; an unreachable backend is a 503, so callers can
retry; anything unexpected is logged and answered as a problem document too.
"""

from __future__ import annotations

import logging
from concurrent.futures import TimeoutError as FutureTimeoutError
from http import HTTPStatus
from typing import Any

import msgspec
from google.api_core.exceptions import GoogleAPIError
from google.auth.exceptions import GoogleAuthError
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from requests.exceptions import RequestException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
# Raised by the Google clients when a backend is down, slow, or refuses our identity.
BACKEND_ERRORS: tuple[type[Exception], ...] = (
    GoogleAPIError,
    GoogleAuthError,
    RequestException,
    FutureTimeoutError,
)


class ProblemDetails(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem document, as every error response carries it."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error statuses a route can answer."""
    return {
        status: ResponseSpec(
            data_container=ProblemDetails,
            media_type=PROBLEM_JSON,
            description=HTTPStatus(status).phrase,
            generate_examples=False,
        )
        for status in statuses
    }


def problem(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> Response[Any]:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    return Response(body | extra, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationException) and exc.extra:
        extra["errors"] = exc.extra
    return problem(exc.status_code, exc.detail, headers=exc.headers, **extra)


def backend_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.warning("backend call failed on %s %s: %r", request.method, request.url.path, exc)
    return problem(503, "A backing service (Pub/Sub or BigQuery) is unavailable; retry later.")


def unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "Unexpected error; it has been logged.")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    HTTPException: http_exception,
    **dict.fromkeys(BACKEND_ERRORS, backend_unavailable),
    Exception: unexpected,
}
