"""Service settings, read once from the environment (Cloud Run or the local runner sets them)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from app.contract.pipeline import PIPELINE


class SettingsError(ValueError):
    """An environment variable is missing or malformed."""


def _number(name: str, default: float, kind: type[int] | type[float]) -> Any:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Where the service's Google clients point and how it answers."""

    project_id: str
    topic: str = PIPELINE.topic
    dataset: str = PIPELINE.dataset
    table: str = PIPELINE.table
    view: str = PIPELINE.latest_view
    # Set locally to bqemulator's REST address; unset in the cloud.
    bigquery_api_endpoint: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # Every call to BigQuery or Pub/Sub is bounded by these, so a request whose backend is
    # down or stalled answers 503 within 2 s instead of holding the client.
    read_deadline_seconds: float = 1.5
    publish_deadline_seconds: float = 1.5
    # Concurrent warehouse calls; more wait (within their deadline) rather than pile up.
    warehouse_concurrency: int = 8
    max_window_days: int = 31
    default_window_days: int = 7

    @classmethod
    def from_env(cls) -> Settings:
        project = os.environ.get("APP_PROJECT_ID") or os.environ.get("GOOGLE_CLOUD_PROJECT")
        if not project:
            raise SettingsError("set APP_PROJECT_ID (or GOOGLE_CLOUD_PROJECT) to the Google Cloud project id")
        return cls(
            project_id=project,
            topic=os.environ.get("APP_TOPIC", PIPELINE.topic),
            dataset=os.environ.get("APP_DATASET", PIPELINE.dataset),
            table=os.environ.get("APP_TABLE", PIPELINE.table),
            view=os.environ.get("APP_VIEW", PIPELINE.latest_view),
            bigquery_api_endpoint=os.environ.get("BIGQUERY_API_ENDPOINT") or None,
            host=os.environ.get("HOST", "127.0.0.1"),
            port=_number("PORT", 8000, int),
            read_deadline_seconds=_number("APP_READ_DEADLINE_SECONDS", cls.read_deadline_seconds, float),
            publish_deadline_seconds=_number(
                "APP_PUBLISH_DEADLINE_SECONDS", cls.publish_deadline_seconds, float
            ),
            warehouse_concurrency=_number("APP_WAREHOUSE_CONCURRENCY", cls.warehouse_concurrency, int),
        )

    def data_env(self) -> dict[str, str]:
        """The variables `from_env` reads to find its data: what Cloud Run and the local runner set."""
        env = {
            "APP_PROJECT_ID": self.project_id,
            "APP_TOPIC": self.topic,
            "APP_DATASET": self.dataset,
            "APP_TABLE": self.table,
            "APP_VIEW": self.view,
        }
        if self.bigquery_api_endpoint:
            env["BIGQUERY_API_ENDPOINT"] = self.bigquery_api_endpoint
        return env


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return Settings.from_env()
