"""Valid flight events for tests, built through the contract so they stay in step with it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.contract.flight_event import FlightEvent


def flight_event(event_id: str, departure: datetime | None = None, **overrides: Any) -> FlightEvent:
    """A delayed UA flight EWR→IAH departing at `departure` (microseconds kept, UTC)."""
    departure = departure or datetime(2013, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    fields: dict[str, Any] = {
        "event_id": event_id,
        "event_time": departure,
        "carrier": "UA",
        "flight_number": 1545,
        "tail_number": "N14228",
        "origin": "EWR",
        "destination": "IAH",
        "scheduled_departure": departure,
        "actual_departure": departure + timedelta(minutes=3),
        "scheduled_arrival": departure + timedelta(hours=3, minutes=50),
        "actual_arrival": departure + timedelta(hours=4, minutes=1),
        "departure_delay_minutes": 3,
        "arrival_delay_minutes": 11,
        "distance_miles": 1400,
        "air_time_minutes": 227,
        "cancelled": False,
    }
    return FlightEvent(**(fields | overrides))
