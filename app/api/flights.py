"""Read flights: a filtered, keyset-paginated list and a lookup by event id."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import PathParameter, QueryParameter

from app.api.problems import problem_responses
from app.api.services import Services
from app.api.warehouse import FlightQuery, day_window
from app.contract.flight_event import (
    AIRPORT_PATTERN,
    CARRIER_PATTERN,
    EVENT_ID_MAX_LENGTH,
    EVENT_ID_PATTERN,
    FlightEvent,
)

# Far enough from date.min/max that window arithmetic cannot overflow.
EARLIEST_DAY = date(1970, 1, 1)
LATEST_DAY = date(9999, 1, 1)


class FlightPage(msgspec.Struct):
    """A page of flights; pass `next_cursor` back as `cursor` to read on."""

    items: list[FlightEvent]
    next_cursor: str | None


def encode_cursor(event: FlightEvent) -> str:
    raw = msgspec.json.encode([event.event_time, event.event_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        event_time, event_id = msgspec.json.decode(raw, type=tuple[datetime, str], strict=True)
    except (binascii.Error, ValueError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValidationException("cursor is not one this API issued", extra=[{"key": "cursor"}]) from exc
    if event_time.tzinfo is None:
        raise ValidationException("cursor is not one this API issued", extra=[{"key": "cursor"}])
    return event_time.astimezone(UTC), event_id


def resolve_window(
    services: NamedDependency[Services], first: date | None, last: date | None
) -> tuple[date, date]:
    """Fill in a missing end of the window and enforce its bounds.

    With no dates the window is the week ending on the newest day holding data, so a
    replay of 2013 flights is browsable without knowing its dates.
    """
    settings = services.settings
    span = timedelta(days=settings.default_window_days - 1)
    for day in (first, last):
        if day is not None and not EARLIEST_DAY <= day <= LATEST_DAY:
            raise ValidationException(
                f"dates must lie between {EARLIEST_DAY} and {LATEST_DAY}", extra=[{"key": "from/to"}]
            )
    if first is None and last is None:
        last = services.newest_day() or datetime.now(UTC).date()
    if first is None:
        assert last is not None  # noqa: S101 - narrowed above
        first = last - span
    if last is None:
        last = first + span
    if last < first:
        raise ValidationException("`to` must not be before `from`", extra=[{"key": "to"}])
    if (last - first).days + 1 > settings.max_window_days:
        raise ValidationException(
            f"the window may span at most {settings.max_window_days} days", extra=[{"key": "to"}]
        )
    return first, last


@get(
    "/v1/flights",
    tags=["flights"],
    summary="List flights",
    sync_to_thread=True,
    responses=problem_responses(400, 503),
)
def list_flights(
    services: NamedDependency[Services],
    from_: Annotated[
        date | None, QueryParameter(name="from", description="First UTC day of event time (inclusive).")
    ] = None,
    to: Annotated[date | None, QueryParameter(description="Last UTC day of event time (inclusive).")] = None,
    carrier: Annotated[
        str | None, QueryParameter(pattern=CARRIER_PATTERN, description="Carrier code.")
    ] = None,
    origin: Annotated[
        str | None, QueryParameter(pattern=AIRPORT_PATTERN, description="Origin airport.")
    ] = None,
    destination: Annotated[
        str | None, QueryParameter(pattern=AIRPORT_PATTERN, description="Destination airport.")
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500, description="Page size.")] = 50,
    cursor: Annotated[
        str | None, QueryParameter(max_length=200, description="`next_cursor` of the previous page.")
    ] = None,
) -> FlightPage:
    """Flights whose event time falls in the window, oldest first, deduplicated by event id."""
    after = decode_cursor(cursor) if cursor else None
    first, last = resolve_window(services, from_, to)
    start, end = day_window(first, last)
    query = FlightQuery(
        start=start,
        end=end,
        limit=limit + 1,  # one extra row tells whether another page exists
        carrier=carrier,
        origin=origin,
        destination=destination,
        after=after,
    )
    rows = services.warehouse.list_flights(query)
    items = rows[:limit]
    return FlightPage(items=items, next_cursor=encode_cursor(items[-1]) if len(rows) > limit else None)


@get(
    "/v1/flights/{event_id:str}",
    tags=["flights"],
    summary="Get one flight",
    sync_to_thread=True,
    responses=problem_responses(400, 404, 503),
)
def get_flight(
    services: NamedDependency[Services],
    event_id: Annotated[
        str, PathParameter(pattern=EVENT_ID_PATTERN, max_length=EVENT_ID_MAX_LENGTH, description="Event id.")
    ],
    on: Annotated[
        date | None, QueryParameter(description="The flight's UTC event day; makes the lookup cheap.")
    ] = None,
) -> FlightEvent:
    """The stored flight event with this id (the latest published copy)."""
    event = services.warehouse.get_flight(event_id, on)
    if event is None:
        raise NotFoundException(f"no flight event with id {event_id!r}")
    return event
