"""Every warehouse query filters the partition column, binds user input, and keeps one row per event id.

The emulator does not enforce `require_partition_filter`, so the shape is checked here; the
integration tests check what the queries return.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import pytest

from app.api.settings import Settings
from app.api.warehouse import Extent, FlightQuery, FlightWarehouse, StoredEventBreaksContract
from app.contract.examples import EXAMPLE_EVENT
from app.contract.flight_event import CORRECTION_HORIZON, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP
from tests.factories import flight_event

PARTITION_FILTER = re.compile(r"WHERE event_time >= @scan_start AND event_time < @scan_end")


class RecordingClient:
    """Stands in for bigquery.Client: records each query and answers with the given rows."""

    def __init__(self, rows: list[dict[str, Any]] | None = None) -> None:
        self.queries: list[tuple[str, dict[str, Any]]] = []
        self.rows = rows or []

    def query(self, sql: str, job_config: Any, **_: Any) -> RecordingClient:
        self.queries.append((sql, {p.name: p.value for p in job_config.query_parameters}))
        return self

    def result(self, **_: Any) -> list[dict[str, Any]]:
        return self.rows


def warehouse(rows: list[dict[str, Any]] | None = None) -> tuple[FlightWarehouse, RecordingClient]:
    client = RecordingClient(rows)
    return FlightWarehouse(client, Settings(project_id="shape")), client  # type: ignore[arg-type]


WINDOW = FlightQuery(
    start=datetime(2013, 1, 1, tzinfo=UTC),
    end=datetime(2013, 1, 8, tzinfo=UTC),
    limit=50,
    carrier="UA' OR 1=1 --",
    origin="EWR",
    after=(datetime(2013, 1, 2, tzinfo=UTC), "x"),
)


def test_list_prunes_partitions_to_the_window_and_the_correction_horizon() -> None:
    store, client = warehouse()
    store.list_flights(WINDOW)
    ((sql, params),) = client.queries
    assert PARTITION_FILTER.search(sql)
    assert (params["scan_start"], params["scan_end"]) == (
        WINDOW.start - CORRECTION_HORIZON,
        WINDOW.end + CORRECTION_HORIZON,
    )
    assert "FROM `shape.airline_analytics.flight_events`" in sql
    assert params["limit"] == WINDOW.limit + 1  # one more row says whether a next page exists


def test_list_keeps_the_latest_copy_of_each_id_before_it_filters() -> None:
    store, client = warehouse()
    store.list_flights(WINDOW)
    ((sql, _),) = client.queries
    dedup = "ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY publish_time DESC, message_id DESC)"
    assert dedup in sql
    inner, outer = sql.split(") WHERE ", 1)
    # Window and filters apply to the latest copy, not to any copy: a correction moves the row.
    assert "copy_rank = 1" in outer
    assert "event_time >= @start AND event_time < @end" in outer
    assert "carrier = @carrier" in outer
    inner_where = inner.rsplit("WHERE", 1)[1]
    assert "@start" not in inner_where
    assert "@carrier" not in inner_where


def test_list_binds_every_value() -> None:
    store, client = warehouse()
    store.list_flights(WINDOW)
    ((sql, params),) = client.queries
    assert "UA'" not in sql
    assert params["carrier"] == "UA' OR 1=1 --"
    assert set(params) == {
        "scan_start",
        "scan_end",
        "start",
        "end",
        "limit",
        "carrier",
        "origin",
        "after_time",
        "after_id",
    }


@pytest.mark.parametrize(
    ("on", "scan"),
    [
        (None, (EARLIEST_TIMESTAMP, LATEST_TIMESTAMP)),
        (
            date(2013, 1, 2),
            (
                datetime(2013, 1, 2, tzinfo=UTC) - CORRECTION_HORIZON,
                datetime(2013, 1, 3, tzinfo=UTC) + CORRECTION_HORIZON,
            ),
        ),
    ],
)
def test_lookup_by_id_prunes_partitions_and_takes_the_latest_copy(
    on: date | None, scan: tuple[datetime, datetime]
) -> None:
    store, client = warehouse()
    assert store.get_flight("abc", on) is None
    ((sql, params),) = client.queries
    assert PARTITION_FILTER.search(sql)
    assert sql.endswith("ORDER BY publish_time DESC, message_id DESC LIMIT 1")
    assert (params["scan_start"], params["scan_end"]) == scan
    assert params["event_id"] == "abc"


def test_newest_day_ignores_days_after_the_bound() -> None:
    store, client = warehouse([{"newest": "20130109", "total_rows": 120}])
    assert store.newest_day(date(2026, 11, 29)) == Extent(newest=date(2013, 1, 9), rows=120)
    ((sql, params),) = client.queries
    assert "partition_id BETWEEN @earliest AND @latest" in sql
    assert (params["earliest"], params["latest"]) == ("20000101", "20261129")


def row(**changes: Any) -> dict[str, Any]:
    """A stored row as the emulator returns it: timestamps naive, in UTC."""
    values = {name: getattr(stored, name) for name in stored.__struct_fields__}
    return {k: v.replace(tzinfo=None) if isinstance(v, datetime) else v for k, v in values.items()} | changes


stored = flight_event("row")


def test_rows_that_break_the_contract_are_withheld_counted_and_do_not_end_the_pages() -> None:
    rows = [
        row(event_id="a", event_time=datetime(2013, 1, 2, 1)),
        row(event_id="b", event_time=datetime(2013, 1, 2, 2), flight_number=0),  # stored, out of range
        row(event_id="c", event_time=datetime(2013, 1, 2, 3), carrier="not a carrier"),
    ]
    store, _ = warehouse(rows)
    page = store.list_flights(FlightQuery(start=WINDOW.start, end=WINDOW.end, limit=2))
    assert [e.event_id for e in page.events] == ["a"]
    assert page.more  # a third row exists
    assert page.last_key == (datetime(2013, 1, 2, 2, tzinfo=UTC), "b")  # resumes after the bad row
    assert store.breaches.count == 1

    only_bad, _ = warehouse([row(event_id="b", flight_number=0), row(event_id="c")])
    page = only_bad.list_flights(FlightQuery(start=WINDOW.start, end=WINDOW.end, limit=1))
    assert page.events == []
    assert page.more
    assert page.last_key is not None


def test_a_lookup_whose_latest_copy_breaks_the_contract_says_so() -> None:
    store, _ = warehouse([row(event_id=EXAMPLE_EVENT["event_id"], origin="EWR", destination="EWR")])
    with pytest.raises(StoredEventBreaksContract):
        store.get_flight(EXAMPLE_EVENT["event_id"])
    assert store.breaches.count == 1


def test_stored_timestamps_are_served_in_utc() -> None:
    store, _ = warehouse([row()])
    event = store.get_flight("row")
    assert event == flight_event("row")
    assert event is not None
    assert event.event_time.tzinfo is UTC
