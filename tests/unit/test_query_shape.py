"""Every warehouse query filters the partition column and binds user input as parameters.

The emulator does not enforce `require_partition_filter`, so the shape is checked here.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from app.api.settings import Settings
from app.api.warehouse import FlightQuery, FlightWarehouse


class RecordingClient:
    """Stands in for bigquery.Client: records each query and answers with no rows."""

    def __init__(self) -> None:
        self.queries: list[tuple[str, dict[str, Any]]] = []

    def query(self, sql: str, job_config: Any, **_: Any) -> RecordingClient:
        self.queries.append((sql, {p.name: p.value for p in job_config.query_parameters}))
        return self

    def result(self, **_: Any) -> list[Any]:
        return []


def run(call) -> tuple[str, dict[str, Any]]:
    client = RecordingClient()
    call(FlightWarehouse(client, Settings(project_id="shape")))  # type: ignore[arg-type]
    (query,) = client.queries
    return query


def test_list_filters_the_partition_and_binds_every_value() -> None:
    sql, params = run(
        lambda w: w.list_flights(
            FlightQuery(
                start=datetime(2013, 1, 1, tzinfo=UTC),
                end=datetime(2013, 1, 8, tzinfo=UTC),
                limit=51,
                carrier="UA' OR 1=1 --",
                origin="EWR",
                after=(datetime(2013, 1, 2, tzinfo=UTC), "x"),
            )
        )
    )
    assert re.search(r"event_time >= @start AND event_time < @end", sql)
    assert "FROM `shape.airline_analytics.flight_events_latest`" in sql
    assert "UA'" not in sql
    assert params["carrier"] == "UA' OR 1=1 --"
    assert {"start", "end", "limit", "carrier", "origin", "after_time", "after_id"} == set(params)


def test_lookup_by_id_filters_the_partition_with_or_without_a_day() -> None:
    for on in (None, date(2013, 1, 2)):
        sql, params = run(lambda w, on=on: w.get_flight("abc", on))
        assert "event_time >= @start AND event_time < @end" in sql
        assert params["event_id"] == "abc"
    _, params = run(lambda w: w.get_flight("abc", date(2013, 1, 2)))
    assert (params["start"], params["end"]) == (
        datetime(2013, 1, 2, tzinfo=UTC),
        datetime(2013, 1, 3, tzinfo=UTC),
    )
