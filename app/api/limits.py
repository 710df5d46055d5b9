"""Per-client rate limiting: a token bucket per client and instance, answered with a 429 problem.

A client is its address (`telemetry.client_of`). It is a fairness tool (one noisy client
cannot starve the rest of an instance), not a security boundary: Cloud Run IAM, the publish
allow-list and max instances are.

Written here rather than with Litestar's `RateLimitConfig`: that keeps every request's
timestamp for the window, serialised through the store and one lock for all clients on every
request (its cost grows with the limit); a bucket is two floats per client. Buckets live in a
bounded LRU, so a flood of new addresses cannot grow memory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import LRUCache
from litestar.enums import ScopeType
from litestar.exceptions import TooManyRequestsException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from app.api.problems import too_many
from app.api.telemetry import annotate, client_of

MAX_CLIENTS = 100_000
EXEMPT_PREFIXES = ("/health", "/ready", "/schema")


@dataclass
class Bucket:
    tokens: float
    updated: float


class RateLimit(ASGIMiddleware):
    """`per_minute` requests per client, in bursts of up to the same number (probes and docs exempt).

    One instance serves every request: the buckets are meant to be shared.
    """

    scopes = (ScopeType.HTTP,)

    @staticmethod
    def should_bypass_for_scope(scope: Scope) -> bool:
        return scope["path"].startswith(EXEMPT_PREFIXES)

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.refill_per_second = per_minute / 60.0
        self._buckets: LRUCache[str, Bucket] = LRUCache(maxsize=MAX_CLIENTS)
        self._clock = clock

    def retry_after(self, client: str) -> float | None:
        """None when the client may go ahead (one token taken), else the seconds until it may."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.refill_per_second)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return (1 - bucket.tokens) / self.refill_per_second

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        wait = self.retry_after(client_of(scope))
        if wait is not None:
            annotate(rejected="rate-limited")
            raise TooManyRequestsException(
                too_many(int(self.capacity)),
                headers={
                    "Retry-After": str(max(1, math.ceil(wait))),
                    "RateLimit-Policy": f"{int(self.capacity)};w=60",
                },
            )
        await next_app(scope, receive, send)
