"""Read results cached per normalised query: fresh for a TTL, stale while the warehouse is away.

Every read is a BigQuery query (10 MB billed at least, hundreds of milliseconds), and callers
repeat themselves: dashboards poll the same page, clients follow the same links. Entries hold
the encoded response (body, status, ETag), so a hit costs no query and no encoding.

- **Fresh by what the answer says** (`ResultCache.ttl_for`, the one place the TTLs are decided):
  a page, an event or the newest day for `Settings.cache_ttl_seconds` (`APP_CACHE_TTL_SECONDS`,
  30 s), a "not found" for `Settings.cache_not_found_ttl_seconds` (5 s, so what was just
  published shows up soon), and "nothing there yet" (204: no data at all) never, so it cannot
  outlive the data's arrival.
- **Keyed by the normalised query**: the resolved window, filters, keyset and page size, not
  the raw query string, so `?to=2013-01-07&from=2013-01-01` and its reordering share an entry.
- **Read fresh on request**: `refresh=True` (a request's `Cache-Control: no-cache`) skips the
  stored answer and stores the new one (`Cache-Status: ...; fwd=request`).
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
        self,
        max_bytes: int,
        stale_seconds: float,
        ttl_seconds: float,
        not_found_ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: LRUCache[Hashable, Entry] = LRUCache(maxsize=max_bytes, getsizeof=self._size)
        self._in_flight: dict[Hashable, asyncio.Future[Entry]] = {}
        # Request targets (path and query string, exactly as sent) the API has already validated
        # and answered from an entry: the fast path serves their fresh entries without the framework.
        self._targets: LRUCache[bytes, tuple[Hashable, tuple[Hashable, Entry | None] | None]] = LRUCache(
            maxsize=MAX_TARGETS
        )
        self._stale_seconds = stale_seconds
        self._ttl, self._not_found_ttl = ttl_seconds, not_found_ttl_seconds
        self._clock = clock

    @staticmethod
    def _size(entry: Entry) -> int:
        return len(entry.body) + 200  # the body plus the entry's own bookkeeping, roughly

    def ttl_for(self, status: int) -> float:
        """How long an answer with this status stays fresh; 0: not stored."""
        return {200: self._ttl, 404: self._not_found_ttl}.get(status, 0.0)

    async def get(
        self, key: Hashable, load: Callable[[], Awaitable[tuple[bytes, int]]], *, refresh: bool = False
    ) -> Lookup:
        """The entry for `key`; `load()` -> (body, status) runs when it is missing, expired or refreshed."""
        now = self._clock()
        cached = self._entries.get(key)
        if not refresh and cached is not None and cached.fresh(now):
            return _hit(cached, now)
        if not refresh and (pending := self._in_flight.get(key)) is not None:
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
            body, status = await load()
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so an unawaited future does not warn
            if (stale := self._stale(cached, exc)) is None:
                raise
            return stale
        finally:
            if self._in_flight.get(key) is future:
                del self._in_flight[key]
        ttl = self.ttl_for(status)
        entry = Entry(body, status, etag_of(body), self._clock(), ttl)
        future.set_result(entry)
        if ttl > 0:
            self._entries[key] = entry
        else:
            self._entries.pop(key, None)
        forwarded = "request" if refresh else "miss"
        stored = f"stored; ttl={int(ttl)}" if ttl > 0 else "not stored"
        return Lookup(entry, f"{CACHE_NAME}; fwd={forwarded}; {stored}", "miss")

    def remember(self, target: bytes, key: Hashable, resolved_by: Hashable | None = None) -> None:
        """`target`, a request the API validated, is answered by the entry of `key`.

        `resolved_by` names the entry the API resolved `key` from (the newest day, for a default
        window): the target is answered in front only while that very entry is stored and fresh.
        """
        basis = None if resolved_by is None else (resolved_by, self._entries.get(resolved_by))
        self._targets[target] = (key, basis)

    def fresh_for(self, target: bytes) -> Lookup | None:
        """The fresh entry answering a request target seen before, or None (let the API answer)."""
        remembered = self._targets.get(target)
        if remembered is None:
            return None
        key, basis = remembered
        cached = self._entries.get(key)
        now = self._clock()
        if cached is None or not cached.fresh(now):
            return None
        if basis is not None:
            resolved_by, entry = basis
            if entry is None or self._entries.get(resolved_by) is not entry or not entry.fresh(now):
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
