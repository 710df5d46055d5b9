"""The service's environment interface: which variables a deployment sets and what each carries.

Defined once, here, because three parties must agree on it: the API's settings read these
variables, and the Pulumi program (Cloud Run) and the local runner set them. Adding a setting
is one `EnvVar` line below (plus the `Settings` field it fills); `parse`/`render` say how a
non-text value travels, for example `EnvVar("APP_MAX_BYTES_BILLED", "max_bytes_billed", int)`.
Process settings that no deployment chooses (`HOST`, `PORT`) stay with the API's settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.contract.pipeline import PipelineSettings


class ConfigError(ValueError):
    """A setting is missing or holds a value it cannot take (the API's, the bridge's, the runner's)."""


def env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    """An integer variable; unset or blank gives `default`, anything else must be an integer."""
    raw = environ.get(name, "")
    if not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


@dataclass(frozen=True)
class EnvVar:
    """One variable: its name, the settings field it fills, and how its value is written and read."""

    name: str
    field: str
    parse: Callable[[str], Any] = str
    render: Callable[[Any], str] = str
    # The PipelineSettings attribute it carries when it names one of the pipeline's resources.
    pipeline: str | None = None


def _names(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _joined(values: tuple[str, ...]) -> str:
    return ",".join(values)


def _flag(raw: str) -> bool:
    if raw not in ("true", "false"):
        raise ValueError("expected true or false")
    return raw == "true"


def _flag_text(value: bool) -> str:
    return "true" if value else "false"


SERVICE_ENV: tuple[EnvVar, ...] = (
    EnvVar("APP_PROJECT_ID", "project_id"),
    EnvVar("APP_TOPIC", "topic", pipeline="topic"),
    EnvVar("APP_DATASET", "dataset", pipeline="dataset"),
    EnvVar("APP_TABLE", "table", pipeline="table"),
    # Set locally to bqemulator's REST address; never in the cloud.
    EnvVar("BIGQUERY_API_ENDPOINT", "bigquery_api_endpoint"),
    # How long a request waits for BigQuery or Pub/Sub before answering 503, and how many
    # warehouse calls run at once.
    EnvVar("APP_READ_DEADLINE_SECONDS", "read_deadline_seconds", float),
    EnvVar("APP_PUBLISH_DEADLINE_SECONDS", "publish_deadline_seconds", float),
    EnvVar("APP_WAREHOUSE_CONCURRENCY", "warehouse_concurrency", int),
    # Reads are cached per normalised query: fresh for the TTL, then served stale (marked) while the
    # warehouse is unavailable, up to the stale limit; the cache holds at most this many bytes.
    EnvVar("APP_CACHE_TTL_SECONDS", "cache_ttl_seconds", float),
    EnvVar("APP_CACHE_STALE_SECONDS", "cache_stale_seconds", float),
    EnvVar("APP_CACHE_MAX_BYTES", "cache_max_bytes", int),
    # BigQuery refuses (and does not bill) a query that would bill more than this.
    EnvVar("APP_MAX_BYTES_BILLED", "max_bytes_billed", int),
    # Who may publish: "google-id-token" (verify the caller's Google-signed ID token against the
    # allow-list of IAM members) or "none" (the local stack only).
    EnvVar("APP_PUBLISH_AUTH", "publish_auth"),
    EnvVar("APP_PUBLISHERS", "publishers", _names, _joined),
    # Cloud Run's invoker check guards every request (no allUsers), so a publisher's token that
    # Cloud Run verified and stripped of its signature is trusted (app/api/auth.py).
    EnvVar("APP_TRUST_CLOUD_RUN_IAM", "trust_cloud_run_iam", _flag, _flag_text),
    # Token audiences accepted besides the URL the request was sent to (custom domains).
    EnvVar("APP_TOKEN_AUDIENCES", "token_audiences", _names, _joined),
    # Requests per minute per client and instance; 0 turns the limit off (load tests).
    EnvVar("APP_RATE_LIMIT_PER_MINUTE", "rate_limit_per_minute", int),
    # Publishers allowed to mark events synthetic (X-Synthetic; app/contract/synthetic.py).
    EnvVar("APP_SYNTHETIC_PUBLISHERS", "synthetic_publishers", _names, _joined),
)
_BY_FIELD = {var.field: var for var in SERVICE_ENV}


def pipeline_values(pipeline: PipelineSettings) -> dict[str, Any]:
    """The settings fields that name pipeline resources, filled from `pipeline`."""
    return {var.field: getattr(pipeline, var.pipeline) for var in SERVICE_ENV if var.pipeline}


def render_env(values: Mapping[str, Any]) -> dict[str, str]:
    """The variables that carry `values` (settings field -> value); `None` values are left unset."""
    unknown = sorted(set(values) - _BY_FIELD.keys())
    if unknown:
        raise ConfigError(f"not part of the service's environment interface: {', '.join(unknown)}")
    return {
        _BY_FIELD[field].name: _BY_FIELD[field].render(value)
        for field, value in values.items()
        if value is not None
    }


def read_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings fields from the variables that are set; an empty variable counts as unset."""
    values: dict[str, Any] = {}
    for var in SERVICE_ENV:
        raw = environ.get(var.name)
        if raw is None or raw == "":
            continue
        try:
            values[var.field] = var.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{var.name} holds {raw!r}, which {var.field} cannot take: {exc}") from exc
    return values
