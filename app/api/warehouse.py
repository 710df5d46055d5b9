"""Reads flights from the deduplicated BigQuery view.

Every query filters on the partitioning column (the table requires it) and uses query
parameters only; identifiers come from settings, never from requests.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from google.api_core.retry import Retry
from google.cloud import bigquery

from app.api.settings import Settings
from app.contract.flight_event import FlightEvent, contract_fields

log = logging.getLogger(__name__)

EVENT_COLUMNS = tuple(f.name for f in contract_fields())
# The earliest instant any lookup considers: a partition filter that keeps id lookups legal
# under `require_partition_filter` (they scan every partition of the event_id column).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True)
class FlightQuery:
    """A page request: a half-open UTC window, optional filters, and the keyset to resume after."""

    start: datetime
    end: datetime
    limit: int
    carrier: str | None = None
    origin: str | None = None
    destination: str | None = None
    after: tuple[datetime, str] | None = None


def day_window(first: date, last: date) -> tuple[datetime, datetime]:
    """Inclusive UTC days as a half-open timestamp window."""
    return datetime.combine(first, time(), UTC), datetime.combine(last + timedelta(days=1), time(), UTC)


def _as_event(row: Any) -> FlightEvent | None:
    values = {name: row[name] for name in EVENT_COLUMNS}
    for name, value in values.items():
        # The emulator returns naive timestamps; BigQuery TIMESTAMPs are always UTC.
        if isinstance(value, datetime) and value.tzinfo is None:
            values[name] = value.replace(tzinfo=UTC)
    try:
        return FlightEvent(**values)
    except (TypeError, ValueError) as exc:
        log.warning("row %s breaks the event contract and is not served: %s", values.get("event_id"), exc)
        return None


class FlightWarehouse:
    """Query access to the flights view for one project."""

    def __init__(self, client: bigquery.Client, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        self._view = f"`{settings.project_id}.{settings.dataset}.{settings.view}`"
        self._retry = Retry(deadline=settings.query_timeout_seconds)

    def _run(self, sql: str, params: Sequence[bigquery.ScalarQueryParameter]) -> list[Any]:
        job = self._client.query(
            sql,
            job_config=bigquery.QueryJobConfig(query_parameters=list(params)),
            retry=self._retry,
            job_retry=None,  # the default wraps the insert in a 10-minute retry of its own
            timeout=self._settings.query_timeout_seconds,
        )
        return list(job.result(timeout=self._settings.query_timeout_seconds, retry=self._retry))

    def list_flights(self, query: FlightQuery) -> list[FlightEvent]:
        """One page of flights in (event_time, event_id) order; `limit` rows at most."""
        where = ["event_time >= @start", "event_time < @end"]
        params = [
            bigquery.ScalarQueryParameter("start", "TIMESTAMP", query.start),
            bigquery.ScalarQueryParameter("end", "TIMESTAMP", query.end),
            bigquery.ScalarQueryParameter("limit", "INT64", query.limit),
        ]
        for column in ("carrier", "origin", "destination"):
            value = getattr(query, column)
            if value is not None:
                where.append(f"{column} = @{column}")
                params.append(bigquery.ScalarQueryParameter(column, "STRING", value))
        if query.after is not None:
            where.append("(event_time > @after_time OR (event_time = @after_time AND event_id > @after_id))")
            params.append(bigquery.ScalarQueryParameter("after_time", "TIMESTAMP", query.after[0]))
            params.append(bigquery.ScalarQueryParameter("after_id", "STRING", query.after[1]))
        sql = (
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM {self._view}"  # noqa: S608 - identifiers from settings
            f" WHERE {' AND '.join(where)} ORDER BY event_time, event_id LIMIT @limit"
        )
        return [event for row in self._run(sql, params) if (event := _as_event(row)) is not None]

    def get_flight(self, event_id: str, on: date | None = None) -> FlightEvent | None:
        """One flight by event id; `on` (its UTC day) prunes the scan to one partition."""
        start, end = day_window(on, on) if on else (EPOCH, END_OF_TIME)
        sql = (
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM {self._view}"  # noqa: S608 - identifiers from settings
            " WHERE event_time >= @start AND event_time < @end AND event_id = @event_id LIMIT 1"
        )
        rows = self._run(
            sql,
            [
                bigquery.ScalarQueryParameter("start", "TIMESTAMP", start),
                bigquery.ScalarQueryParameter("end", "TIMESTAMP", end),
                bigquery.ScalarQueryParameter("event_id", "STRING", event_id),
            ],
        )
        return _as_event(rows[0]) if rows else None

    def newest_day(self) -> date | None:
        """The newest UTC day holding data, from partition metadata (no table scan)."""
        sql = (
            "SELECT MAX(partition_id) AS newest"  # noqa: S608 - identifiers from settings
            f" FROM `{self._settings.project_id}.{self._settings.dataset}.INFORMATION_SCHEMA.PARTITIONS`"
            " WHERE table_name = @table AND REGEXP_CONTAINS(partition_id, r'^[0-9]{8}$')"
            " AND total_rows > 0"
        )
        rows = self._run(sql, [bigquery.ScalarQueryParameter("table", "STRING", self._settings.table)])
        newest = rows[0]["newest"] if rows else None
        return datetime.strptime(newest, "%Y%m%d").replace(tzinfo=UTC).date() if newest else None

    def check(self) -> None:
        """Raises unless the view is reachable (readiness)."""
        self._client.get_table(
            f"{self._settings.project_id}.{self._settings.dataset}.{self._settings.view}",
            retry=Retry(deadline=5),
            timeout=5,
        )

    def close(self) -> None:
        self._client.close()
