"""Service settings, read once from the environment (Cloud Run or the local runner sets them)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from app.contract.pipeline import PIPELINE
from app.contract.service_env import SERVICE_ENV, ConfigError, env_int, read_env, render_env

PUBLISH_AUTH_MODES = ("google-id-token", "none")
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"


@dataclass(frozen=True)
class Settings:
    """Where the service's Google clients point and how it answers."""

    project_id: str
    topic: str = PIPELINE.topic
    dataset: str = PIPELINE.dataset
    table: str = PIPELINE.table
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
    # After this many transient failures in a row a backend is left alone (503 at once, or stale
    # cached reads) for the cool-down; then one trial call decides.
    breaker_failures: int = 5
    breaker_cooldown_seconds: float = 10.0
    cache_ttl_seconds: float = 30.0
    # A "not found" is cached briefly, so an event just published shows up soon.
    cache_not_found_ttl_seconds: float = 5.0
    cache_stale_seconds: float = 600.0
    cache_max_bytes: int = 64 * 1024 * 1024
    max_bytes_billed: int = 1024**3
    publish_auth: str = "google-id-token"
    publishers: tuple[str, ...] = ()
    token_audiences: tuple[str, ...] = ()
    token_certs_url: str = GOOGLE_CERTS_URL
    # Cloud Run's invoker check guards every request (no allUsers): a token it verified and
    # stripped of its signature may name the publisher (app/api/auth.py).
    trust_cloud_run_iam: bool = False
    rate_limit_per_minute: int = 600
    # Publishers that may mark events synthetic (X-Synthetic): the deploy pipeline's canary and fuzzer.
    synthetic_publishers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.publish_auth not in PUBLISH_AUTH_MODES:
            raise ConfigError(
                f"APP_PUBLISH_AUTH must be one of {PUBLISH_AUTH_MODES}, got {self.publish_auth!r}"
            )

    @classmethod
    def from_env(cls) -> Settings:
        """Read the variables of the service's environment interface, plus HOST and PORT."""
        values = read_env(os.environ)
        values.setdefault("project_id", os.environ.get("GOOGLE_CLOUD_PROJECT"))
        if not values["project_id"]:
            raise ConfigError("set APP_PROJECT_ID (or GOOGLE_CLOUD_PROJECT) to the Google Cloud project id")
        return cls(**values, host=os.environ.get("HOST", "127.0.0.1"), port=env_int(os.environ, "PORT", 8000))

    def data_env(self) -> dict[str, str]:
        """The interface's variables for these settings: what Cloud Run and the local runner set."""
        return render_env({var.field: getattr(self, var.field) for var in SERVICE_ENV})


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return Settings.from_env()
