"""What the service tells its operators: JSON logs in Cloud Logging's format, one access line per request.

Cloud Run ships each stdout line to Cloud Logging; a line that is a JSON object becomes a
structured entry, and some keys are understood: `severity`, `message`, `httpRequest`, and
`logging.googleapis.com/trace` (which links the entry to the request's trace and to Cloud
Run's own request log). Every line written while a request is served carries that request's
trace (from `traceparent` or `X-Cloud-Trace-Context`) and its request id, which is echoed in
the `X-Request-Id` response header. Other fields go under `jsonPayload`; the Pulumi program
turns some into log-based metrics (cache results, warehouse latency and bytes billed,
rejected events, contract breaches).

Nothing secret is logged: no header except the user agent, never a token.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import re
import secrets
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("app.api.access")

REQUEST_ID_HEADER = "x-request-id"
_READ_HEADERS = {REQUEST_ID_HEADER.encode(), b"traceparent", b"x-cloud-trace-context", b"user-agent"}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_CLOUD_TRACE = re.compile(r"^([0-9a-f]{32})(?:/([0-9]+))?(?:;o=([01]))?$")


@dataclass
class RequestContext:
    """What every log line of one request shares, and what its handlers add for the access line."""

    request_id: str
    trace_id: str | None = None
    span_id: str | None = None
    sampled: bool = False
    fields: dict[str, Any] = field(default_factory=dict)


# This instance's random prefix and a counter: unique across instances without a system call per
# request (uuid4 reads the OS's random source each time, a sixth of a cache hit's cost).
_INSTANCE = secrets.token_hex(8)
_request_ids = (f"{_INSTANCE}-{n:x}" for n in itertools.count(1))
CURRENT: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("request", default=None)


def annotate(**fields: Any) -> None:
    """Add fields to the current request's access line (cache result, principal, rejection reason)."""
    if (context := CURRENT.get()) is not None:
        context.fields.update(fields)


def trace_of(headers: dict[str, str]) -> tuple[str | None, str | None, bool]:
    """(trace id, span id as hex, sampled) from W3C `traceparent` or Google's `X-Cloud-Trace-Context`."""
    if match := _TRACEPARENT.match(headers.get("traceparent", "")):
        return match[1], match[2], match[3] == "01"
    if match := _CLOUD_TRACE.match(headers.get("x-cloud-trace-context", "")):
        span = f"{int(match[2]):016x}" if match[2] else None
        return match[1], span, match[3] == "1"
    return None, None, False


def client_of(scope: Scope) -> str:
    """The caller's address: on Cloud Run the rightmost `X-Forwarded-For` entry, which Google's
    front end appends (a client may prepend anything, not replace it); elsewhere the peer."""
    for name, value in scope["headers"]:
        if name == b"x-forwarded-for":
            return value.decode("latin-1").rsplit(",", 1)[-1].strip()
    client = scope.get("client")
    return client[0] if client else "unknown"


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per record, with the keys Cloud Logging understands."""

    def __init__(self, project: str | None) -> None:
        super().__init__()
        self._project = project

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            # Error Reporting finds exceptions by the traceback in the message.
            message = f"{message}\n{self.formatException(record.exc_info)}"
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": message,
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        if (context := CURRENT.get()) is not None:
            entry["requestId"] = context.request_id
            if context.trace_id:
                trace = (
                    f"projects/{self._project}/traces/{context.trace_id}"
                    if self._project
                    else context.trace_id
                )
                entry["logging.googleapis.com/trace"] = trace
                entry["logging.googleapis.com/trace_sampled"] = context.sampled
            if context.span_id:
                entry["logging.googleapis.com/spanId"] = context.span_id
        entry.update(getattr(record, "json_fields", None) or {})
        # msgspec encodes an access line ten times faster than json.dumps; anything else becomes str.
        return msgspec.json.encode(entry, enc_hook=str).decode()


class LineBatchingHandler(logging.StreamHandler):
    """Writes each event-loop turn's lines in one write: under load, one system call for many lines.

    A line waits at most until the loop finishes its current turn (no timer, nothing lost to a
    quiet period); records from other threads are written at once.
    """

    def __init__(self) -> None:
        super().__init__(sys.stdout)
        self._pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            super().emit(record)
            return
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        if not self._pending:
            loop.call_soon(self.flush_pending)
        self._pending.append(line)

    def flush_pending(self) -> None:
        lines, self._pending = self._pending, []
        self.acquire()
        try:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()
        finally:
            self.release()


def configure_logging(project: str | None, level: int = logging.INFO) -> None:
    """Send every logger's records to stdout as Cloud Logging JSON (call once, at process start).

    The logging module's documented optimisations are on: no caller frame, thread or process
    lookups per record (none of them is in the JSON).
    """
    logging._srcfile = None  # documented in the logging HOWTO (optimisation)
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = LineBatchingHandler()
    handler.setFormatter(CloudLoggingFormatter(project))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "google.auth", "google.api_core", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class TelemetryMiddleware:
    """Outermost ASGI layer: request context in, `X-Request-Id` out, one access line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # One pass over the raw headers for the few this layer reads (it runs on every request).
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _READ_HEADERS
        }
        incoming = headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _REQUEST_ID.match(incoming) else next(_request_ids)
        context = RequestContext(request_id, *trace_of(headers))
        token = CURRENT.set(context)
        started = time.perf_counter()
        status, size = 500, 0
        request_id_header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), request_id_header]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            query = scope["query_string"].decode("latin-1")
            http_request = {
                "requestMethod": scope.get("method", ""),
                "requestUrl": scope["path"] + (f"?{query}" if query else ""),
                "status": status,
                "responseSize": str(size),
                "latency": f"{time.perf_counter() - started:.6f}s",
                "protocol": f"HTTP/{scope.get('http_version', '1.1')}",
                "userAgent": headers.get("user-agent", ""),
                "remoteIp": client_of(scope),
            }
            log.log(
                logging.WARNING if status >= 500 else logging.INFO,
                "%s %s %s",
                http_request["requestMethod"],
                scope["path"],
                status,
                extra={"json_fields": {"kind": "access", "httpRequest": http_request, **context.fields}},
            )
            CURRENT.reset(token)
