"""The service's collaborators, created on first use.

Lazy creation keeps liveness independent of the cloud: `/healthz` answers even where no
credentials exist yet, and a missing backend shows up as a 503 on the routes that need it.
"""

from __future__ import annotations

import threading
import time
from datetime import date
from functools import cached_property

from google.cloud.pubsub_v1 import PublisherClient

from app.api.settings import Settings
from app.api.warehouse import FlightWarehouse
from app.gcp_clients import bigquery_client

NEWEST_DAY_TTL_SECONDS = 10.0


class Services:
    """Holds the clients for one app instance."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._newest_day: tuple[float, date | None] | None = None

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

    def newest_day(self) -> date | None:
        """The newest day with data, cached briefly: default windows end there."""
        with self._lock:
            cached = self._newest_day
        if cached is not None and time.monotonic() - cached[0] < NEWEST_DAY_TTL_SECONDS:
            return cached[1]
        newest = self.warehouse.newest_day()
        with self._lock:
            self._newest_day = (time.monotonic(), newest)
        return newest

    def close(self) -> None:
        if "publisher" in self.__dict__:
            self.publisher.stop()
        if "warehouse" in self.__dict__:
            self.warehouse.close()
