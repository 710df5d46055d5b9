"""What the service tells its operators that Cloud Run cannot: JSON lines in Cloud Logging's format.

Cloud Run already writes one request log entry per request (`run.googleapis.com/requests`, with
`httpRequest`, latency, status and trace: https://cloud.google.com/run/docs/logging), so the app
writes no access line of its own. It writes only what Cloud Run cannot know: one line per
refused request (`"kind": "refusal"`, with the reason and the principal), one per warehouse
query (`app/api/warehouse.py`: shape, outcome, latency, bytes billed), one per stored row that
breaks the contract, and once a minute per instance the cache results it counted
(`"kind": "cache_summary"`) instead of a line per cache hit.

Cloud Run ships each stdout line to Cloud Logging; a line that is a JSON object becomes a
structured entry whose special fields (`severity`, `logging.googleapis.com/trace`, ...) Cloud
Logging lifts out of `jsonPayload` into the `LogEntry`
(https://cloud.google.com/logging/docs/structured-logging#special-payload-fields). Every line
written while a request is served carries that request's trace (from `traceparent` or
`X-Cloud-Trace-Context`), which joins it to Cloud Run's request entry, and its request id,
echoed in the `X-Request-Id` response header.

Nothing secret is logged: no header, never a token.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from contextvars import Context, ContextVar
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("app.api.telemetry")

REQUEST_ID_HEADER = b"x-request-id"
_TRACE_HEADERS = (b"traceparent", b"x-cloud-trace-context")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_CLOUD_TRACE = re.compile(r"^([0-9a-f]{32})(?:/([0-9]+))?(?:;o=([01]))?$")
# How often an instance writes its cache tally: one line a minute instead of one per read.
CACHE_SUMMARY_SECONDS = 60.0

# This instance's random prefix and a counter: unique across instances without a system call per
# request (uuid4 reads the OS's random source each time, a sixth of a cache hit's cost).
_INSTANCE = secrets.token_hex(8)
_request_ids = (f"{_INSTANCE}-{n:x}" for n in itertools.count(1))


class RequestContext:
    """What every line written for one request shares; the trace is parsed only if a line is written."""

    def __init__(self, headers: Iterable[tuple[bytes, bytes]]) -> None:
        self._headers = headers
        incoming = next((v.decode("latin-1") for k, v in headers if k == REQUEST_ID_HEADER), "")
        self.request_id = incoming if _REQUEST_ID.match(incoming) else next(_request_ids)
        self.fields: dict[str, Any] = {}

    @cached_property
    def trace(self) -> tuple[str | None, str | None, bool]:
        """(trace id, span id as hex, sampled) of the request."""
        wanted = {k.decode(): v.decode("latin-1") for k, v in self._headers if k in _TRACE_HEADERS}
        return trace_of(wanted)


CURRENT: ContextVar[RequestContext | None] = ContextVar("request", default=None)


class CacheTally:
    """Cache results counted in memory and written as one `cache_summary` line a minute.

    The line is written by the read that completes the minute, outside that request's context
    (it belongs to no request). Counts of a minute an instance does not finish are not written.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._counts: Counter[str] = Counter()
        self._since = clock()

    def add(self, result: str) -> None:
        self._counts[result] += 1
        now = self._clock()
        if now - self._since >= CACHE_SUMMARY_SECONDS:
            counts, seconds = dict(self._counts), now - self._since
            self._counts, self._since = Counter(), now
            Context().run(
                log.info,
                "cache results in the last %.0f s: %s",
                seconds,
                counts,
                extra={
                    "json_fields": {"kind": "cache_summary", "cache": counts, "seconds": round(seconds, 1)}
                },
            )


CACHE_TALLY = CacheTally()


def annotate(**fields: Any) -> None:
    """Record what Cloud Run cannot know about the current request.

    `cache=<result>` is tallied into the instance's minute summary (no line per read);
    `rejected=<reason>` (with `principal=`, when known) makes the request write one refusal line.
    """
    if (result := fields.pop("cache", None)) is not None:
        CACHE_TALLY.add(result)
    if fields and (context := CURRENT.get()) is not None:
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
            trace_id, span_id, sampled = context.trace
            if trace_id:
                trace = f"projects/{self._project}/traces/{trace_id}" if self._project else trace_id
                entry["logging.googleapis.com/trace"] = trace
                entry["logging.googleapis.com/trace_sampled"] = sampled
            if span_id:
                entry["logging.googleapis.com/spanId"] = span_id
        entry.update(getattr(record, "json_fields", None) or {})
        # msgspec encodes a line ten times faster than json.dumps; anything else becomes str.
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
    """Outermost ASGI layer: request context in, `X-Request-Id` out, a line only for a refusal.

    It runs on every request, cache hits included, so it does as little as it can: one pass over
    the headers for the request id, no clock, no trace parsing unless a line is written.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context = RequestContext(scope["headers"])
        token = CURRENT.set(context)
        request_id_header = (REQUEST_ID_HEADER, context.request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), request_id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if "rejected" in context.fields:
                _log_refusal(scope, context.fields)
            CURRENT.reset(token)


def _log_refusal(scope: Scope, fields: dict[str, Any]) -> None:
    """One line per refused request: why, and who (Cloud Run's request log has the status and URL)."""
    method, reason = scope.get("method", ""), fields["rejected"]
    refusal = {"reason": reason, "method": method}
    if principal := fields.get("principal"):
        refusal["principal"] = principal
    log.info(
        "refused %s %s: %s",
        method,
        scope["path"],
        reason,
        extra={"json_fields": {"kind": "refusal", "refusal": refusal}},
    )
