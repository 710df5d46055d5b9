"""Reads flights from the BigQuery table, one row per event id: its latest published copy.

Every query filters the partitioning column (the table requires it) and binds user input as
query parameters; identifiers come from settings, never from requests.

Deduplication and its cost: the table holds every delivered message, so an event id can have
several rows - redeliveries (same payload) and corrections (a later publish of the same id,
possibly with another `event_time`). A filter on `event_time` cannot be pushed below a window
partitioned by `event_id` alone, so a view that deduplicates by id could never be pruned. The
reads therefore deduplicate inside each query, over the requested window widened by the
contract's correction horizon on both sides: a window of d days scans d + 2 x horizon days of
partitions. A correction that moves `event_time` further than the horizon from an earlier
copy leaves that copy visible in its old window's lists (the lookup by id, which scans every
partition, still returns the latest copy).
"""

from __future__ import annotations

import logging
import threading
import time as clock
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import msgspec
from google.api_core.exceptions import GoogleAPICallError
from google.api_core.retry import Retry
from google.cloud import bigquery
from google.cloud.bigquery.enums import QueryApiMethod

from app.api.settings import Settings
from app.contract.flight_event import (
    CORRECTION_HORIZON,
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    FlightEvent,
    contract_fields,
)
from app.contract.synthetic import REAL_ROWS_SQL

log = logging.getLogger(__name__)

EVENT_COLUMNS = tuple(f.name for f in contract_fields())
# Which stored copy of an event id is the latest: the last published (message id breaks ties).
LATEST_FIRST = "publish_time DESC, message_id DESC"
# BigQuery's reason when a query would bill more than `maximum_bytes_billed` (it is refused, not billed).
BYTES_LIMIT_REASON = "bytesBilledLimitExceeded"


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
    # Synthetic events (the canary's, the fuzzer's) are left out unless asked for.
    include_synthetic: bool = False


class Extent(msgspec.Struct, frozen=True):
    """The newest day holding data and how many rows the table held up to it: a default window's basis."""

    newest: date
    rows: int


@dataclass(frozen=True)
class RowsPage:
    """Up to `limit` valid events, and the keyset of the last row read whether it was valid or not."""

    events: list[FlightEvent]
    last_key: tuple[datetime, str] | None
    more: bool


@dataclass
class ContractBreaches:
    """How many stored rows were withheld because they break the event contract."""

    count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.count += n


class StoredEventBreaksContract(Exception):
    """The latest stored copy of an event id does not satisfy the contract, so it is not served."""


def day_window(first: date, last: date) -> tuple[datetime, datetime]:
    """Inclusive UTC days as a half-open timestamp window."""
    return datetime.combine(first, time(), UTC), datetime.combine(last + timedelta(days=1), time(), UTC)


def _scan_filter(include_synthetic: bool) -> str:
    """What a read scans besides the window: every row, or real rows only (`app/contract/synthetic.py`)."""
    return "" if include_synthetic else f" AND {REAL_ROWS_SQL}"


def _timestamp(value: Any) -> Any:
    # The emulator returns naive timestamps; BigQuery TIMESTAMPs are always UTC.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class FlightWarehouse:
    """Query access to the flight events table of one project."""

    def __init__(self, client: bigquery.Client, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        self._table = f"`{settings.project_id}.{settings.dataset}.{settings.table}`"
        self.breaches = ContractBreaches()

    def _run(self, shape: str, sql: str, params: Sequence[bigquery.ScalarQueryParameter]) -> list[Any]:
        """One query, bounded in time by the read deadline and in cost by `max_bytes_billed`.

        `jobs.query` answers small queries in one round trip; unlike `query_and_wait` it also
        raises on the emulator when the SQL or the table is wrong. No job retry: a caller that
        gets a 503 retries, and the deadline must hold. Each query leaves one log line with its
        shape, outcome, latency and bytes (log-based metrics in the Pulumi program read them).
        """
        deadline = self._settings.read_deadline_seconds
        retry = Retry(timeout=deadline)
        started = clock.perf_counter()
        job: bigquery.QueryJob | None = None
        outcome = "error"
        try:
            job = self._client.query(
                sql,
                job_config=bigquery.QueryJobConfig(
                    query_parameters=list(params), maximum_bytes_billed=self._settings.max_bytes_billed
                ),
                api_method=QueryApiMethod.QUERY,
                retry=retry,
                job_retry=None,
                timeout=deadline,
            )
            rows = list(job.result(timeout=deadline, retry=retry))
            outcome = "ok"
            return rows
        except GoogleAPICallError as exc:
            if any(isinstance(e, dict) and e.get("reason") == BYTES_LIMIT_REASON for e in exc.errors):
                outcome = "bytes-limit"
            raise
        finally:
            stats = {
                "shape": shape,
                "outcome": outcome,
                "latency_ms": round((clock.perf_counter() - started) * 1000, 1),
                "bytes_processed": getattr(job, "total_bytes_processed", None) or 0,
                "bytes_billed": getattr(job, "total_bytes_billed", None) or 0,
            }
            log.info(
                "warehouse query %s: %s in %s ms",
                shape,
                outcome,
                stats["latency_ms"],
                extra={"json_fields": {"kind": "warehouse_query", "warehouse": stats}},
            )

    def _event(self, row: Any) -> FlightEvent | None:
        """The row as a contract-valid event, or None (counted and logged) when it breaks the contract."""
        values = {name: _timestamp(row[name]) for name in EVENT_COLUMNS}
        try:
            return msgspec.convert(values, FlightEvent)
        except msgspec.ValidationError as exc:
            self.breaches.add()
            log.warning(
                "stored row of event %r breaks the event contract and is not served: %s",
                values.get("event_id"),
                exc,
                extra={
                    "json_fields": {
                        "kind": "contract_breach",
                        "event_id": values.get("event_id"),
                        "reason": str(exc),
                    }
                },
            )
            return None

    def list_statement(self, query: FlightQuery) -> tuple[str, list[bigquery.ScalarQueryParameter]]:
        """The SQL and bound parameters of one page: `limit + 1` rows of the latest copies.

        Scans the window widened by the correction horizon (the partition filter), keeps the
        latest copy of each event id, then applies the window, the filters and the keyset.
        """
        where = ["event_time >= @start", "event_time < @end"]
        params = [
            bigquery.ScalarQueryParameter("scan_start", "TIMESTAMP", query.start - CORRECTION_HORIZON),
            bigquery.ScalarQueryParameter("scan_end", "TIMESTAMP", query.end + CORRECTION_HORIZON),
            bigquery.ScalarQueryParameter("start", "TIMESTAMP", query.start),
            bigquery.ScalarQueryParameter("end", "TIMESTAMP", query.end),
            bigquery.ScalarQueryParameter("limit", "INT64", query.limit + 1),
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
        columns = ", ".join(EVENT_COLUMNS)
        sql = (
            f"SELECT {columns} FROM ("  # noqa: S608 - identifiers from settings, values bound
            f" SELECT {columns},"
            f" ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY {LATEST_FIRST}) AS copy_rank"
            f" FROM {self._table} WHERE event_time >= @scan_start AND event_time < @scan_end"
            f"{_scan_filter(query.include_synthetic)}"
            f") WHERE copy_rank = 1 AND {' AND '.join(where)} ORDER BY event_time, event_id LIMIT @limit"
        )
        return sql, params

    def list_flights(self, query: FlightQuery) -> RowsPage:
        """One page in (event_time, event_id) order, the latest copy of each event id.

        Reads `limit + 1` rows: the extra one says whether another page exists. Rows that break
        the contract are left out of `events` but still advance `last_key`, so a page of bad
        rows never ends the sequence early.
        """
        rows = self._run("list", *self.list_statement(query))
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        events = [event for row in rows if (event := self._event(row)) is not None]
        last_key = (_timestamp(rows[-1]["event_time"]), rows[-1]["event_id"]) if rows else None
        return RowsPage(events=events, last_key=last_key, more=more)

    def get_flight(
        self, event_id: str, on: date | None = None, include_synthetic: bool = False
    ) -> FlightEvent | None:
        """The latest copy of one event id, or None (synthetic copies only with `include_synthetic`).

        Without `on` the lookup reads the `event_id` column of every partition; `on` (the
        event's UTC day) prunes it to that day and the correction horizon around it.
        Raises StoredEventBreaksContract when the latest copy is not a valid event.
        """
        if on is None:
            scan_start, scan_end = EARLIEST_TIMESTAMP, LATEST_TIMESTAMP
        else:
            start, end = day_window(on, on)
            scan_start, scan_end = start - CORRECTION_HORIZON, end + CORRECTION_HORIZON
        sql = (
            f"SELECT {', '.join(EVENT_COLUMNS)} FROM {self._table}"  # noqa: S608 - identifiers from settings
            " WHERE event_time >= @scan_start AND event_time < @scan_end AND event_id = @event_id"
            f"{_scan_filter(include_synthetic)} ORDER BY {LATEST_FIRST} LIMIT 1"
        )
        rows = self._run(
            "lookup" if on is None else "lookup-on-day",
            sql,
            [
                bigquery.ScalarQueryParameter("scan_start", "TIMESTAMP", scan_start),
                bigquery.ScalarQueryParameter("scan_end", "TIMESTAMP", scan_end),
                bigquery.ScalarQueryParameter("event_id", "STRING", event_id),
            ],
        )
        if not rows:
            return None
        event = self._event(rows[0])
        if event is None:
            raise StoredEventBreaksContract(event_id)
        return event

    def newest_day(self, latest: date) -> Extent | None:
        """The newest UTC day holding data, no later than `latest`, from partition metadata (no scan),
        and the rows stored up to it: any arrival changes the extent, and so a default window's key.

        The bound keeps a stored row with a far-future time (a producer may publish one
        straight to the topic) from moving everybody's default window.
        """
        sql = (
            "SELECT MAX(partition_id) AS newest, SUM(total_rows) AS total_rows"  # noqa: S608 - identifiers from settings
            f" FROM `{self._settings.project_id}.{self._settings.dataset}.INFORMATION_SCHEMA.PARTITIONS`"
            " WHERE table_name = @table AND REGEXP_CONTAINS(partition_id, r'^[0-9]{8}$')"
            " AND partition_id BETWEEN @earliest AND @latest AND total_rows > 0"
        )
        rows = self._run(
            "newest-day",
            sql,
            [
                bigquery.ScalarQueryParameter("table", "STRING", self._settings.table),
                bigquery.ScalarQueryParameter("earliest", "STRING", f"{EARLIEST_TIMESTAMP:%Y%m%d}"),
                bigquery.ScalarQueryParameter("latest", "STRING", f"{latest:%Y%m%d}"),
            ],
        )
        newest = rows[0]["newest"] if rows else None
        if not newest:
            return None
        day = datetime.strptime(newest, "%Y%m%d").replace(tzinfo=UTC).date()
        return Extent(newest=day, rows=int(rows[0].get("total_rows") or 0))

    def check(self) -> None:
        """Raises unless the table is reachable (readiness)."""
        deadline = self._settings.read_deadline_seconds
        self._client.get_table(
            f"{self._settings.project_id}.{self._settings.dataset}.{self._settings.table}",
            retry=Retry(timeout=deadline),
            timeout=deadline,
        )

    def close(self) -> None:
        self._client.close()
