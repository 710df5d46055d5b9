"""Read results cached per normalised query: fresh for a TTL, stale while the warehouse is away.

Every read is a BigQuery query (10 MB billed at least, hundreds of milliseconds), and callers
repeat themselves: dashboards poll the same page, clients follow the same links. Entries hold
the encoded response (body, status, ETag), so a hit costs no query and no encoding.

- **Keyed by the normalised query**: the resolved window, filters, keyset and page size, not
  the raw query string, so `?to=2013-01-07&from=2013-01-01` and its reordering share an entry.
- **One query in flight per key**: concurrent misses wait for the first caller's result
  instead of sending the same query again ("collapsed").
- **Stale on error**: when the refresh of an expired entry fails with a transient error (or
  the breaker is open), the expired entry is served, marked, up to `stale_seconds` old.
- **Bounded by bytes**: least recently used entries go first (cachetools' `LRUCache`).

`Cache-Status` (RFC 9211) says what happened: `hit`, `fwd=miss`, `fwd=stale; fwd-status=503`.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

from cachetools import LRUCache

from app.api.problems import is_transient

CACHE_NAME = "flight-api"
MAX_TARGETS = 100_000


@dataclass(frozen=True)
class Entry:
    """One cached answer: the encoded body, its status and ETag, and when it was stored."""

    body: bytes
    status: int
    etag: str
    stored_at: float
    ttl: float

    def age(self, now: float) -> float:
        return now - self.stored_at

    def fresh(self, now: float) -> bool:
        return self.age(now) < self.ttl


@dataclass(frozen=True)
class Lookup:
    """An answer and how the cache came by it (the `Cache-Status` header value)."""

    entry: Entry
    cache_status: str
    result: str  # hit, miss, collapsed or stale: what the per-minute cache tally counts

    def remaining_ttl(self, now: float) -> int:
        return int(self.entry.ttl - self.entry.age(now))


def _hit(entry: Entry, now: float) -> Lookup:
    return Lookup(entry, f"{CACHE_NAME}; hit; ttl={int(entry.ttl - entry.age(now))}", "hit")


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


class ResultCache:
    """The cache of one API instance."""

    def __init__(
        self, max_bytes: int, stale_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: LRUCache[Hashable, Entry] = LRUCache(maxsize=max_bytes, getsizeof=self._size)
        self._in_flight: dict[Hashable, asyncio.Future[Entry]] = {}
        # Request targets (path and query string, exactly as sent) the API has already validated
        # and answered from an entry: the fast path serves their fresh entries without the framework.
        self._targets: LRUCache[bytes, Hashable] = LRUCache(maxsize=MAX_TARGETS)
        self._stale_seconds = stale_seconds
        self._clock = clock

    @staticmethod
    def _size(entry: Entry) -> int:
        return len(entry.body) + 200  # the body plus the entry's own bookkeeping, roughly

    async def get(self, key: Hashable, load: Callable[[], Awaitable[tuple[bytes, int, float]]]) -> Lookup:
        """The entry for `key`, loading it with `load()` -> (body, status, ttl) when missing or expired."""
        now = self._clock()
        cached = self._entries.get(key)
        if cached is not None and cached.fresh(now):
            return _hit(cached, now)
        if (pending := self._in_flight.get(key)) is not None:
            try:
                entry = await asyncio.shield(pending)
            except Exception as exc:
                if (stale := self._stale(cached, exc)) is None:
                    raise
                return stale
            return Lookup(entry, f"{CACHE_NAME}; fwd=miss; collapsed", "collapsed")
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            body, status, ttl = await load()
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so an unawaited future does not warn
            if (stale := self._stale(cached, exc)) is None:
                raise
            return stale
        finally:
            self._in_flight.pop(key, None)
        entry = Entry(body, status, etag_of(body), self._clock(), ttl)
        future.set_result(entry)
        if ttl > 0:
            self._entries[key] = entry
        return Lookup(entry, f"{CACHE_NAME}; fwd=miss; stored; ttl={int(ttl)}", "miss")

    def remember(self, target: bytes, key: Hashable) -> None:
        """`target`, a request the API validated, is answered by the entry of `key`."""
        self._targets[target] = key

    def fresh_for(self, target: bytes) -> Lookup | None:
        """The fresh entry answering a request target seen before, or None (let the API answer)."""
        key = self._targets.get(target)
        cached = None if key is None else self._entries.get(key)
        now = self._clock()
        if cached is None or not cached.fresh(now):
            return None
        return _hit(cached, now)

    def _stale(self, cached: Entry | None, exc: Exception) -> Lookup | None:
        """The expired entry, when the refresh failed for a reason worth waiting out."""
        if cached is None or not is_transient(exc):
            return None
        age = cached.age(self._clock())
        if age > cached.ttl + self._stale_seconds:
            return None
        return Lookup(
            cached, f"{CACHE_NAME}; fwd=stale; fwd-status=503; ttl={int(cached.ttl - age)}", "stale"
        )
