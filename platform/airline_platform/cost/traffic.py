"""What a stack is priced at: the traffic its stack file declares, and what one request costs.

The declaration (`airline-data-platform:traffic` in `stacks/Pulumi.<env>.yaml`) says how the stack
is used; `Measured` holds what the project measured about one request or event, in one place, so a
new measurement (e.g. fewer log bytes per request) is one edit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from app.contract.examples import EXAMPLE_EVENT
from app.contract.flight_event import CORRECTION_HORIZON

MONTH_SECONDS = 30 * 86_400  # Google's pricing examples use a 30-day month
READ_KINDS = ("list_default", "list_filtered", "get")


class TrafficError(ValueError):
    """The stack's traffic declaration is missing or holds invalid values."""


@dataclass(frozen=True)
class Traffic:
    """Monthly averages the estimate is priced at (`mix` shares add up to 1, publishes included)."""

    requests_per_second: float
    events_per_second: float
    mix: dict[str, float]
    cache_hit_ratio: float
    # How old the oldest partition is where the table sets no expiry (prod keeps its data).
    data_age_days: int
    log_retention_days: int
    deploys_per_month: int

    @classmethod
    def from_config(cls, config: dict[str, str]) -> Traffic:
        """Read `airline-data-platform:traffic` from a stack's config (as `plan.stack_config` gives it)."""
        raw = config.get("airline-data-platform:traffic")
        if raw is None:
            raise TrafficError("the stack declares no airline-data-platform:traffic (docs/operations.md)")
        data: dict[str, Any] = json.loads(raw)
        try:
            traffic = cls(
                requests_per_second=float(data["requestsPerSecond"]),
                events_per_second=float(data["eventsPerSecond"]),
                mix={kind: float(share) for kind, share in data["mix"].items()},
                cache_hit_ratio=float(data["cacheHitRatio"]),
                data_age_days=int(data["dataAgeDays"]),
                log_retention_days=int(data["logRetentionDays"]),
                deploys_per_month=int(data["deploysPerMonth"]),
            )
        except KeyError as missing:
            raise TrafficError(f"airline-data-platform:traffic needs {missing.args[0]}") from None
        if problems := traffic.problems():
            raise TrafficError("airline-data-platform:traffic: " + "; ".join(problems))
        return traffic

    def problems(self) -> list[str]:
        errors = []
        if set(self.mix) != {*READ_KINDS, "publish"}:
            errors.append(f"mix needs exactly {', '.join((*READ_KINDS, 'publish'))}")
        elif abs(sum(self.mix.values()) - 1) > 1e-6:
            errors.append(f"mix shares add up to {sum(self.mix.values()):g}, not 1")
        if not 0 <= self.cache_hit_ratio <= 1:
            errors.append("cacheHitRatio must be between 0 and 1")
        if min(self.requests_per_second, self.events_per_second, self.data_age_days) < 0:
            errors.append("rates and ages cannot be negative")
        if self.log_retention_days < 1:
            errors.append("logRetentionDays must be at least 1")
        return errors

    def scaled(self, factor: float, same_queries: bool = False) -> Traffic:
        """The same stack at `factor` times the requests and events (docs: what 10x costs).

        `same_queries`: the readers ask the same distinct questions more often, so the cache
        answers the extra reads and the queries per second stay as they were.
        """
        misses = 1 - self.cache_hit_ratio
        return Traffic(
            **{
                **asdict(self),
                "requests_per_second": self.requests_per_second * factor,
                "events_per_second": self.events_per_second * factor,
                "cache_hit_ratio": 1 - misses / factor if same_queries else self.cache_hit_ratio,
            }
        )


def _logical_bytes(value: Any) -> int:
    """BigQuery's logical size of one value: STRING 2 + UTF-8 bytes, INT64/TIMESTAMP 8, BOOL 1, NULL 0."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return 1
    if isinstance(value, str) and not value.endswith("Z"):
        return 2 + len(value.encode())
    return 8  # integers and the contract's RFC 3339 timestamps (stored as TIMESTAMP)


# The metadata columns the BigQuery subscription writes (write_metadata): a typical message id,
# the subscription's full name, publish time, and empty attributes.
_METADATA = {
    "subscription_name": "projects/airline-data-prod/subscriptions/flight-events-to-warehouse",
    "message_id": "13579246801357924",
    "publish_time": "2013-01-01T10:15:01Z",
    "attributes": "{}",
}


@dataclass(frozen=True)
class Measured:
    """What one request, query or event costs in bytes and seconds; each field says where it is from."""

    # Cloud Logging bills the size of each LogEntry (payload plus resource, labels, timestamps,
    # trace): the JSON of a representative entry, built with the fields Cloud Run's logging page
    # lists (https://cloud.google.com/run/docs/logging), is ~1,100 B for its request log entry
    # (run.googleapis.com/requests, one per request) and ~1,000 B for one of the API's stdout lines.
    request_log_bytes: int = 1_100
    # The API writes no access line (Cloud Run's request log has every request): a line per query,
    # per refusal (rare; not priced) and a cache tally per instance a minute (app/api/telemetry.py).
    app_log_bytes_per_request: int = 0
    app_log_bytes_per_query: int = 1_000
    app_log_bytes_per_instance_minute: int = 1_000
    # Billed instance time: Cloud Run rounds each request up to 100 ms; an uncached read waits on
    # BigQuery (231 ms p50 in make bench, hundreds of ms in the cloud, docs/performance.md).
    cached_request_seconds: float = 0.1
    uncached_request_seconds: float = 0.3
    publish_request_seconds: float = 0.1
    # One event as published (its JSON) and as stored (logical bytes of every column).
    message_bytes: int = len(json.dumps(EXAMPLE_EVENT).encode())
    stored_bytes_per_event: int = sum(map(_logical_bytes, (EXAMPLE_EVENT | _METADATA).values()))
    # The columns every read scans: the contract's plus publish_time and message_id (bench/cost.py).
    read_bytes_per_event: int = sum(
        map(
            _logical_bytes,
            (EXAMPLE_EVENT | {k: _METADATA[k] for k in ("publish_time", "message_id")}).values(),
        )
    )
    # Days of partitions each read kind scans (app/api/warehouse.py widens by the correction horizon
    # on both sides; docs/api.md#cost): the default week, one day, one day by id.
    scanned_days: dict[str, int] = field(
        default_factory=lambda: {
            "list_default": 7 + 2 * CORRECTION_HORIZON.days,
            "list_filtered": 1 + 2 * CORRECTION_HORIZON.days,
            "get": 1 + 2 * CORRECTION_HORIZON.days,
        }
    )
    # Values each log-based metric label takes (the metrics' descriptions in monitoring/log_metrics.py;
    # `status`: the publish answers 202, 400, 401, 403, 415, 429). A label not listed here stops the
    # estimate, so a new label is priced, not counted as one series.
    label_values: dict[str, int] = field(
        default_factory=lambda: {"shape": 4, "outcome": 3, "reason": 7, "status": 6}
    )
    # The runtime image (make bench, docs/performance.md) and what one more push adds (the code layer).
    image_bytes: int = 234_100_000
    image_layer_bytes_per_push: int = 1_000_000
    # A stack's Pulumi state file and the writes one `pulumi up` makes (one checkpoint per step).
    state_bytes: int = 400_000
