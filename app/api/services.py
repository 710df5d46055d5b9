"""The service's collaborators, created on first use, and the deadlines every backend call runs under.

Lazy creation keeps liveness independent of the cloud: `/health` answers even where no
credentials exist yet, and a missing backend shows up as a 503 on the routes that need it.
Blocking calls (the BigQuery client, certificate fetches) run on a small thread pool of their
own, awaited with the read deadline: when BigQuery stalls, requests answer 503 on time and the
pool bounds how many stuck calls can pile up. Each backend has a circuit breaker, and reads go
through the result cache, which can answer from stale entries while the warehouse is away.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from functools import cached_property
from typing import Any, TypeVar

import msgspec
from google.api_core.retry import Retry
from google.cloud.pubsub_v1 import PublisherClient

from app.api.auth import TokenVerifier
from app.api.breaker import CircuitBreaker
from app.api.cache import ResultCache
from app.api.settings import Settings
from app.api.warehouse import Extent, FlightWarehouse
from app.gcp_clients import bigquery_client

T = TypeVar("T")


def newest_day_key(latest: date) -> Hashable:
    """The cache key of the newest-day lookup, which default windows are resolved from."""
    return ("newest-day", latest)


class Services:
    """Holds the clients, the cache and the breakers of one app instance."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool = ThreadPoolExecutor(settings.warehouse_concurrency, thread_name_prefix="blocking")
        self.cache = ResultCache(
            settings.cache_max_bytes,
            settings.cache_stale_seconds,
            settings.cache_ttl_seconds,
            settings.cache_not_found_ttl_seconds,
        )
        self.warehouse_breaker = CircuitBreaker(
            "BigQuery", settings.breaker_failures, settings.breaker_cooldown_seconds
        )
        self.pubsub_breaker = CircuitBreaker(
            "Pub/Sub", settings.breaker_failures, settings.breaker_cooldown_seconds
        )

    @cached_property
    def warehouse(self) -> FlightWarehouse:
        return FlightWarehouse(
            bigquery_client(self.settings.project_id, self.settings.bigquery_api_endpoint), self.settings
        )

    @cached_property
    def publisher(self) -> PublisherClient:
        return PublisherClient()

    @cached_property
    def token_verifier(self) -> TokenVerifier:
        return TokenVerifier(self.settings)

    @property
    def topic_path(self) -> str:
        return PublisherClient.topic_path(self.settings.project_id, self.settings.topic)

    async def call_blocking(self, call: Callable[..., T], *args: Any) -> T:
        """Run a blocking call on the pool, in the request's log context; TimeoutError at the deadline."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        return await asyncio.wait_for(
            loop.run_in_executor(self._pool, context.run, call, *args), self.settings.read_deadline_seconds
        )

    async def read(self, call: Callable[..., T], *args: Any) -> T:
        """A warehouse call behind the BigQuery breaker and the read deadline."""
        return await self.warehouse_breaker.call(lambda: self.call_blocking(call, *args))

    async def publish(self, data: bytes, **attributes: str) -> str:
        """Publish one message; its Pub/Sub message id, or TimeoutError (a 503) after the deadline.

        The client's own retries stop at the same deadline, so a message the caller was told
        failed is not quietly published minutes later (a caller's retry would be harmless
        anyway: readers keep one row per event id).
        """
        deadline = self.settings.publish_deadline_seconds

        async def publish_once() -> str:
            future = self.publisher.publish(
                self.topic_path, data, retry=Retry(timeout=deadline), timeout=deadline, **attributes
            )
            return await asyncio.wait_for(asyncio.wrap_future(future), deadline)

        return await self.pubsub_breaker.call(publish_once)

    async def newest_day(self, latest: date, *, refresh: bool = False) -> Extent | None:
        """The newest day with data up to `latest` and the rows stored by then, through the cache
        (served stale while BigQuery is away); None, never cached, while there is no data."""

        async def load() -> tuple[bytes, int]:
            extent = await self.read(self.warehouse.newest_day, latest)
            return (b"", 204) if extent is None else (msgspec.json.encode(extent), 200)

        found = await self.cache.get(newest_day_key(latest), load, refresh=refresh)
        return msgspec.json.decode(found.entry.body, type=Extent) if found.entry.status == 200 else None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if "publisher" in self.__dict__:
            self.publisher.stop()
        if "warehouse" in self.__dict__:
            self.warehouse.close()
