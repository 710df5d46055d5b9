"""The service's collaborators, created on first use, and the deadlines every backend call runs under.

Lazy creation keeps liveness independent of the cloud: `/healthz` answers even where no
credentials exist yet, and a missing backend shows up as a 503 on the routes that need it.
Warehouse calls run on a small thread pool of their own (the BigQuery client blocks), awaited
with the read deadline: when BigQuery stalls, requests answer 503 on time and the pool bounds
how many stuck calls can pile up.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from functools import cached_property
from typing import Any, TypeVar

from google.api_core.retry import Retry
from google.cloud.pubsub_v1 import PublisherClient

from app.api.settings import Settings
from app.api.warehouse import FlightWarehouse
from app.gcp_clients import bigquery_client

NEWEST_DAY_TTL_SECONDS = 10.0
T = TypeVar("T")


class Services:
    """Holds the clients for one app instance."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool = ThreadPoolExecutor(settings.warehouse_concurrency, thread_name_prefix="warehouse")
        self._lock = threading.Lock()
        self._newest_day: tuple[float, date, date | None] | None = None

    @cached_property
    def warehouse(self) -> FlightWarehouse:
        return FlightWarehouse(
            bigquery_client(self.settings.project_id, self.settings.bigquery_api_endpoint), self.settings
        )

    @cached_property
    def publisher(self) -> PublisherClient:
        return PublisherClient()

    @property
    def topic_path(self) -> str:
        return PublisherClient.topic_path(self.settings.project_id, self.settings.topic)

    async def read(self, call: Callable[..., T], *args: Any) -> T:
        """Run a blocking warehouse call; TimeoutError (a 503) once the read deadline passes."""
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(
            loop.run_in_executor(self._pool, call, *args), self.settings.read_deadline_seconds
        )

    async def publish(self, data: bytes, **attributes: str) -> str:
        """Publish one message; its Pub/Sub message id, or TimeoutError (a 503) after the deadline.

        The client's own retries stop at the same deadline, so a message the caller was told
        failed is not quietly published minutes later (a caller's retry would be harmless
        anyway: readers keep one row per event id).
        """
        deadline = self.settings.publish_deadline_seconds
        future = self.publisher.publish(
            self.topic_path, data, retry=Retry(timeout=deadline), timeout=deadline, **attributes
        )
        return await asyncio.wait_for(asyncio.wrap_future(future), deadline)

    async def newest_day(self, latest: date) -> date | None:
        """The newest day with data up to `latest`, cached briefly: default windows end there."""
        with self._lock:
            cached = self._newest_day
        if (
            cached is not None
            and cached[1] == latest
            and time.monotonic() - cached[0] < NEWEST_DAY_TTL_SECONDS
        ):
            return cached[2]
        newest = await self.read(self.warehouse.newest_day, latest)
        with self._lock:
            self._newest_day = (time.monotonic(), latest, newest)
        return newest

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if "publisher" in self.__dict__:
            self.publisher.stop()
        if "warehouse" in self.__dict__:
            self.warehouse.close()
