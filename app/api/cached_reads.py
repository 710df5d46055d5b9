"""Read responses served through the result cache, with HTTP's validators and freshness headers.

- `ETag` (a hash of the body) on every cached answer; a request whose `If-None-Match` names it
  gets `304 Not Modified` and no body.
- `Cache-Control: private, max-age=<seconds left>`: the answer may be reused by the caller
  for the rest of its TTL, never by a shared cache (reads are per-caller authorised).
- `Cache-Status` (RFC 9211) says whether the answer was a hit, a miss, collapsed into another
  request's query, or stale (`fwd=stale; fwd-status=503`: the warehouse is unavailable and
  this is the last answer it gave), and `Age` how old the answer is.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from litestar import Request, Response
from litestar.datastructures import ResponseHeader
from litestar.enums import MediaType
from litestar.openapi.datastructures import ResponseSpec

from app.api.cache import Lookup
from app.api.problems import PROBLEM_JSON
from app.api.services import Services
from app.api.telemetry import annotate

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
NOT_MODIFIED = {
    304: ResponseSpec(data_container=None, description="Not Modified: the If-None-Match ETag is current.")
}


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


def respond(request: Request[Any, Any, Any], lookup: Lookup) -> Response[bytes]:
    entry, now = lookup.entry, time.monotonic()
    fresh_for = 0 if lookup.result == "stale" else max(0, lookup.remaining_ttl(now))
    headers = {
        "ETag": entry.etag,
        "Cache-Control": f"private, max-age={fresh_for}",
        "Cache-Status": lookup.cache_status,
        "Age": str(int(entry.age(now))),
    }
    if entry.status == 200 and _matches(request.headers.get("if-none-match"), entry.etag):
        return Response(b"", status_code=304, headers=headers)
    media_type = MediaType.JSON if entry.status < 400 else PROBLEM_JSON
    return Response(entry.body, status_code=entry.status, media_type=media_type, headers=headers)


async def cached_read(
    request: Request[Any, Any, Any],
    services: Services,
    key: Hashable,
    load: Callable[[], Awaitable[tuple[bytes, int, float]]],
) -> Response[bytes]:
    """The answer for `key` from the cache, or from `load()` -> (body, status, ttl) on a miss."""
    lookup = await services.cache.get(key, load)
    annotate(cache=lookup.result)
    return respond(request, lookup)
