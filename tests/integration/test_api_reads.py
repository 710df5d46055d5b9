"""The API's reads against the emulated warehouse: windows, filters, keyset pages, dedup."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.contract.flight_event import FlightEvent, decode_event, encode_event
from tests.factories import flight_event

pytestmark = pytest.mark.integration

# A year no other test writes to, so counts here are exact.
FIRST = datetime(2015, 6, 1, 0, 30, tzinfo=UTC)
CARRIERS = ("AA", "B6", "DL", "UA")
ROUTES = (("JFK", "LAX"), ("EWR", "SFO"), ("LGA", "ORD"))


def sample_events() -> list[FlightEvent]:
    """90 flights over three UTC days, spread across carriers and routes."""
    events = []
    for n in range(90):
        origin, destination = ROUTES[n % len(ROUTES)]
        events.append(
            flight_event(
                f"reads-{n:03d}",
                departure=FIRST + timedelta(minutes=47 * n),
                carrier=CARRIERS[n % len(CARRIERS)],
                origin=origin,
                destination=destination,
                flight_number=n + 1,
            )
        )
    return events


@pytest.fixture(scope="module")
def stored(local_stack) -> Iterator[tuple[httpx.Client, list[FlightEvent]]]:
    events = sample_events()
    publisher = local_stack.publisher()
    futures = [publisher.publish(local_stack.topic_path, encode_event(e)) for e in events]
    # At-least-once delivery can store an event twice; the view must still serve it once.
    futures.append(publisher.publish(local_stack.topic_path, encode_event(events[0])))
    for future in futures:
        future.result(timeout=30)
    with httpx.Client(base_url=local_stack.api_base_url, timeout=30) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(list_all(client, {"from": "2015-06-01", "to": "2015-06-03"}, limit=500)) == len(events):
                break
            time.sleep(0.5)
        yield client, events


def list_all(client: httpx.Client, params: dict, limit: int) -> list[dict]:
    """Follow next_cursor to the end; fails on a page that breaks the order or repeats a row."""
    items: list[dict] = []
    cursor = None
    while True:
        response = client.get(
            "/v1/flights", params=params | {"limit": limit} | ({"cursor": cursor} if cursor else {})
        )
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_pages_cover_the_window_exactly_once_in_order(stored) -> None:
    client, events = stored
    items = list_all(client, {"from": "2015-06-01", "to": "2015-06-03"}, limit=7)
    assert [i["event_id"] for i in items] == [e.event_id for e in events]
    keys = [(i["event_time"], i["event_id"]) for i in items]
    assert keys == sorted(keys)


def test_filters_select_exactly_the_matching_flights(stored) -> None:
    client, events = stored
    params = {
        "from": "2015-06-01",
        "to": "2015-06-03",
        "carrier": "DL",
        "origin": "EWR",
        "destination": "SFO",
    }
    expected = [e.event_id for e in events if (e.carrier, e.origin, e.destination) == ("DL", "EWR", "SFO")]
    assert expected
    assert [i["event_id"] for i in list_all(client, params, limit=5)] == expected


def test_window_bounds_are_utc_days_inclusive(stored) -> None:
    client, events = stored
    on_second_day = [e.event_id for e in events if e.event_time.date().isoformat() == "2015-06-02"]
    items = list_all(client, {"from": "2015-06-02", "to": "2015-06-02"}, limit=500)
    assert [i["event_id"] for i in items] == on_second_day


def test_one_flight_by_id_with_and_without_its_day(stored) -> None:
    client, events = stored
    event = events[45]
    for params in ({}, {"on": event.event_time.date().isoformat()}):
        response = client.get(f"/v1/flights/{event.event_id}", params=params)
        assert response.status_code == 200, response.text
        assert decode_event(response.content) == event
    missing = client.get(f"/v1/flights/{event.event_id}", params={"on": "2015-07-01"})
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def wait_until(condition, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return condition()


def test_a_correction_replaces_the_earlier_copy_even_when_its_time_moved(local_stack, stored) -> None:
    """The same event id published again, a day later in event time: one row, the latest, everywhere."""
    client, _ = stored
    first = flight_event("correction-1", departure=datetime(2015, 7, 1, 10, 0, tzinfo=UTC))
    correction = flight_event(
        "correction-1",
        departure=datetime(2015, 7, 1, 10, 0, tzinfo=UTC),
        event_time=datetime(2015, 7, 2, 9, 30, tzinfo=UTC),
        arrival_delay_minutes=95,
    )
    publisher = local_stack.publisher()
    publisher.publish(local_stack.topic_path, encode_event(first)).result(timeout=30)
    assert wait_until(lambda: client.get("/v1/flights/correction-1").status_code == 200)
    publisher.publish(local_stack.topic_path, encode_event(correction)).result(timeout=30)

    def served(**params: str) -> FlightEvent | None:
        response = client.get("/v1/flights/correction-1", params=params)
        return decode_event(response.content) if response.status_code == 200 else None

    assert wait_until(lambda: served() == correction)
    assert served(on="2015-07-01") == correction  # looked up on the old day: still the latest copy
    assert served(on="2015-07-02") == correction
    both_days = list_all(client, {"from": "2015-07-01", "to": "2015-07-02"}, limit=500)
    assert [decode_event(json.dumps(i)) for i in both_days if i["event_id"] == "correction-1"] == [correction]
    old_day = list_all(client, {"from": "2015-07-01", "to": "2015-07-01"}, limit=500)
    assert "correction-1" not in [i["event_id"] for i in old_day]
