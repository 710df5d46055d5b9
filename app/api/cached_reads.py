"""Read responses served through the result cache, with HTTP's validators and freshness headers.

- `ETag` (a hash of the body) on every cached answer; a request whose `If-None-Match` names it
  gets `304 Not Modified` and no body.
- `Cache-Control: private, max-age=<seconds left>`: the answer may be reused by the caller
  for the rest of its TTL, never by a shared cache (reads are per-caller authorised).
- A request's `Cache-Control: no-cache` (RFC 9111 §5.2.1.4) reads fresh: the stored answer is
  not used, the warehouse's answer is, and is stored for the next callers (read-after-write).
- `Cache-Status` (RFC 9211) says whether the answer was a hit, a miss, collapsed into another
  request's query, forwarded at the request's wish (`fwd=request`), or stale (`fwd=stale;
  fwd-status=503`: the warehouse is unavailable and this is the last answer it gave), and `Age`
  how old the answer is.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from litestar import Request, Response
from litestar.datastructures import ResponseHeader
from litestar.enums import MediaType
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ASGIApp, HTTPResponseStartEvent, Receive, Scope, Send

from app.api.cache import Lookup
from app.api.limits import RateLimit
from app.api.problems import PROBLEM_JSON
from app.api.services import Services
from app.api.telemetry import annotate, client_of

CACHE_HEADERS = [
    ResponseHeader(
        name="ETag",
        documentation_only=True,
        description="Validator of this answer; send it back as If-None-Match.",
    ),
    ResponseHeader(
        name="Cache-Control",
        documentation_only=True,
        description="private, max-age=<seconds the answer stays fresh>",
    ),
    ResponseHeader(
        name="Cache-Status",
        documentation_only=True,
        description="RFC 9211: hit, fwd=miss, collapsed, or fwd=stale with fwd-status=503 when the warehouse "
        "is unavailable and the last answer it gave is served instead.",
    ),
    ResponseHeader(
        name="Age",
        documentation_only=True,
        description="Seconds since the answer was read from the warehouse.",
    ),
]
_FAST_PATH_HEADERS = frozenset({b"if-none-match", b"cache-control"})
NOT_MODIFIED = {
    304: ResponseSpec(data_container=None, description="Not Modified: the If-None-Match ETag is current.")
}


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


def answer(lookup: Lookup, if_none_match: str | None) -> tuple[int, dict[str, str], bytes, str]:
    """Status, headers, body and media type of a cached answer, 304 when the caller's ETag is current."""
    entry, now = lookup.entry, time.monotonic()
    fresh_for = 0 if lookup.result == "stale" else max(0, lookup.remaining_ttl(now))
    headers = {
        "etag": entry.etag,
        "cache-control": f"private, max-age={fresh_for}",
        "cache-status": lookup.cache_status,
        "age": str(int(entry.age(now))),
    }
    if entry.status == 200 and _matches(if_none_match, entry.etag):
        return 304, headers, b"", MediaType.JSON
    return entry.status, headers, entry.body, MediaType.JSON if entry.status < 400 else PROBLEM_JSON


def target_of(scope: Scope) -> bytes:
    """The request target as sent: path and raw query string."""
    return scope["raw_path"] + b"?" + scope["query_string"]


def wants_fresh(cache_control: str | None) -> bool:
    """True when a request's Cache-Control says not to answer it from a stored response."""
    return cache_control is not None and "no-cache" in cache_control.lower()


async def cached_read(
    request: Request[Any, Any, Any],
    services: Services,
    key: Hashable,
    load: Callable[[], Awaitable[tuple[bytes, int]]],
    resolved_by: Hashable | None = None,
) -> Response[bytes]:
    """The answer for `key` from the cache, or from `load()` -> (body, status) on a miss or when the
    request asks for a fresh answer; `resolved_by` is the cache entry `key` was derived from."""
    lookup = await services.cache.get(key, load, refresh=wants_fresh(request.headers.get("cache-control")))
    services.cache.remember(target_of(request.scope), key, resolved_by)
    annotate(cache=lookup.result)
    status, headers, body, media_type = answer(lookup, request.headers.get("if-none-match"))
    return Response(body, status_code=status, media_type=media_type, headers=headers)


class CachedReadsFastPath:
    """ASGI layer in front of the framework: a GET the API already validated and answered from the
    cache, whose answer is still fresh, is answered here, byte for byte as the API would.

    Profiling showed Litestar's request cycle (routing, parameter parsing, dependency injection,
    response building) at about 80% of a cache hit's cost; hits are the common case, and their
    answer is already encoded. Everything else (misses, stale answers, new or invalid requests)
    goes through the API. The per-client rate limit applies here too.
    """

    def __init__(self, app: ASGIApp, services: Services, limit: RateLimit | None) -> None:
        self.app, self.cache, self.limit = app, services.cache, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "GET":
            lookup = self.cache.fresh_for(target_of(scope))
            read = {k: v for k, v in scope["headers"] if k in _FAST_PATH_HEADERS} if lookup else {}
            if (
                lookup is not None
                and not wants_fresh(read.get(b"cache-control", b"").decode("latin-1"))
                and (self.limit is None or self.limit.retry_after(client_of(scope)) is None)
            ):
                annotate(cache=lookup.result)
                if_none_match = read[b"if-none-match"].decode("latin-1") if b"if-none-match" in read else None
                status, headers, body, media_type = answer(lookup, if_none_match)
                raw_headers = [(k.encode(), v.encode()) for k, v in headers.items()]
                raw_headers += [
                    (b"content-type", media_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                ]
                start: HTTPResponseStartEvent = {
                    "type": "http.response.start",
                    "status": status,
                    "headers": raw_headers,
                }
                await send(start)
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
        await self.app(scope, receive, send)
