"""Read flights: a filtered, keyset-paginated list and a lookup by event id."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example, Link
from litestar.params import HeaderParameter, PathParameter, QueryParameter

from app.api.cached_reads import CACHE_HEADERS, NOT_MODIFIED, cached_read, wants_fresh
from app.api.cursor import CURSOR_MAX_LENGTH, PageCursor, cursor_error, decode_cursor, encode_cursor
from app.api.openapi import OperationDocs, documented
from app.api.problems import RATE_LIMITED, UNAVAILABLE, problem_body, problem_responses
from app.api.services import Services, newest_day_key
from app.api.warehouse import FlightQuery, StoredEventBreaksContract, day_window
from app.contract.examples import EXAMPLE_EVENT
from app.contract.flight_event import (
    AIRPORT_PATTERN,
    CARRIER_PATTERN,
    EARLIEST_TIMESTAMP,
    EVENT_ID_MAX_LENGTH,
    EVENT_ID_PATTERN,
    EVENT_TIME_MAX_AHEAD,
    LATEST_TIMESTAMP,
    FlightEvent,
)
from app.contract.synthetic import INCLUDE

# Query dates share the contract's bounds, so no window arithmetic can overflow. The pattern
# states the same range in the OpenAPI schema (a `date` format cannot carry bounds).
FIRST_QUERY_DAY = EARLIEST_TIMESTAMP.date()
LAST_QUERY_DAY = LATEST_TIMESTAMP.date() - timedelta(days=1)
DATE_PATTERN = r"^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
DATE_RANGE = f"between {FIRST_QUERY_DAY} and {LAST_QUERY_DAY}"
# The widest window one query may span, and the window a query without dates gets.
MAX_WINDOW_DAYS = 31
DEFAULT_WINDOW_DAYS = 7
DEFAULT_LIMIT, MAX_LIMIT = 50, 500


class FlightPage(msgspec.Struct):
    """A page of flights; pass `next_cursor` back as `cursor` (alone) to read on."""

    items: list[FlightEvent]
    next_cursor: str | None


def _invalid(key: str, message: str) -> ValidationException:
    return ValidationException(
        f"`{key}`: {message}", extra=[{"key": key, "source": "query", "message": message}]
    )


def _check_day(key: str, day: date | None) -> None:
    if day is not None and not FIRST_QUERY_DAY <= day <= LAST_QUERY_DAY:
        raise _invalid(key, f"must lie {DATE_RANGE}")


def latest_event_day() -> date:
    """The latest day an accepted event may have: a default window never ends later."""
    return (datetime.now(UTC) + EVENT_TIME_MAX_AHEAD).date()


def resolve_window(first: date | None, last: date | None, newest: date | None) -> tuple[date, date]:
    """Fill in a missing end of the window and enforce its bounds.

    With no dates the window is the week ending on `newest`, the newest day holding data (today
    while there is none), so a replay of 2013 flights is browsable without knowing its dates.
    """
    span = timedelta(days=DEFAULT_WINDOW_DAYS - 1)
    _check_day("from", first)
    _check_day("to", last)
    if first is None and last is None:
        last = newest or datetime.now(UTC).date()
    if first is None:
        assert last is not None  # noqa: S101 - narrowed above
        first = max(last - span, FIRST_QUERY_DAY)
    if last is None:
        last = min(first + span, LAST_QUERY_DAY)
    _check_span(first, last)
    return first, last


def _check_span(first: date, last: date) -> None:
    if last < first:
        raise _invalid("to", "must not be before `from`")
    if (last - first).days + 1 > MAX_WINDOW_DAYS:
        raise _invalid("to", f"the window may span at most {MAX_WINDOW_DAYS} days")


def _continued(text: str, given: Mapping[str, object]) -> PageCursor:
    """The query a cursor continues; other parameters, where given, must agree with it."""
    cursor = decode_cursor(text)
    carried = {"from": cursor.first, "to": cursor.last} | {f: getattr(cursor, f) for f in FILTERS}
    carried["synthetic"] = INCLUDE if cursor.include_synthetic else None
    if differing := sorted(k for k, v in given.items() if v is not None and v != carried[k]):
        raise cursor_error(f"continues another query (it differs in {', '.join(differing)}); send it alone")
    for key, day in (("from", cursor.first), ("to", cursor.last)):
        _check_day(key, day)
    _check_span(cursor.first, cursor.last)
    return cursor


def _date_parameter(description: str, example: str, name: str | None = None) -> QueryParameter:
    return QueryParameter(
        name=name,
        description=f"{description} ({DATE_RANGE}).",
        schema_extra={"pattern": DATE_PATTERN},
        examples=[Example(value=example)],
    )


def _example(value: object) -> list[Example]:
    return [Example(value=value)]


CacheControl = Annotated[
    str | None,
    HeaderParameter(
        name="Cache-Control",
        description="`no-cache` reads fresh from the warehouse instead of this instance's cached answer "
        "(read-after-write; each such read is a warehouse query).",
        examples=_example("no-cache"),
    ),
]
IfNoneMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-None-Match",
        description="The ETag of an answer you hold: 304 Not Modified while it is current.",
        examples=_example('"3f2a1c0d9e8b7a6f5e4d3c2b1a0f9e8d"'),
    ),
]


FILTERS = ("carrier", "origin", "destination")
LIST_DESCRIPTION = (
    "Flights whose event time falls in the window, oldest first, one row per event id (its latest "
    f"copy). At most {MAX_WINDOW_DAYS} days; without dates, the {DEFAULT_WINDOW_DAYS} days ending on "
    f"the newest day that holds data. Pages of `limit` rows (default {DEFAULT_LIMIT}, at most "
    f"{MAX_LIMIT}); to read on, send `next_cursor` as `cursor`: it carries the window and filters of "
    "its query. Answers are cached (see the API's description); send `Cache-Control: no-cache` to "
    "read fresh."
)
Synthetic = Annotated[
    Literal["include"] | None,
    QueryParameter(
        description="`include` also reads synthetic events (the deploy canary's and fuzzer's), "
        "which are left out by default.",
        examples=_example(INCLUDE),
    ),
]
EXAMPLE_CURSOR = PageCursor(
    after_time=datetime.fromisoformat(EXAMPLE_EVENT["event_time"]),
    after_id=EXAMPLE_EVENT["event_id"],
    first=date(2013, 1, 1),
    last=date(2013, 1, 3),
    carrier="UA",
    origin="EWR",
    destination="IAH",
)
LIST_DOCS = OperationDocs(
    links={
        "200": {
            "GetListedFlight": Link(
                operation_id="getFlight",
                parameters={"event_id": "$response.body#/items/0/event_id"},
                description="Read one listed flight by its id.",
            ),
            "NextPage": Link(
                operation_id="listFlights",
                parameters={"cursor": "$response.body#/next_cursor"},
                description="The next page of the same query (absent on the last page).",
            ),
        }
    },
    response_examples={
        "200": {"one-flight": Example(value={"items": [EXAMPLE_EVENT], "next_cursor": None})},
    },
)
LOOKUP_DOCS = OperationDocs(response_examples={"200": {"first-flight-of-2013": Example(value=EXAMPLE_EVENT)}})


@get(
    "/v1/flights",
    tags=["flights"],
    summary="List flights",
    operation_id="listFlights",
    description=LIST_DESCRIPTION,
    operation_class=documented(LIST_DOCS),
    responses={200: ResponseSpec(FlightPage, description="A page of flights", generate_examples=False)}
    | NOT_MODIFIED
    | problem_responses(
        {
            400: "`limit`: given more than once "
            "(accepted: carrier, cursor, destination, from, limit, origin, synthetic, to)",
            429: RATE_LIMITED,
            503: UNAVAILABLE,
        }
    ),
    response_headers=CACHE_HEADERS,
)
async def list_flights(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    if_none_match: IfNoneMatch = None,
    cache_control: CacheControl = None,
    from_: Annotated[
        date | None, _date_parameter("First UTC day of event time, inclusive", "2013-01-01", name="from")
    ] = None,
    to: Annotated[date | None, _date_parameter("Last UTC day of event time, inclusive", "2013-01-03")] = None,
    carrier: Annotated[
        str | None,
        QueryParameter(pattern=CARRIER_PATTERN, description="Carrier code.", examples=_example("UA")),
    ] = None,
    origin: Annotated[
        str | None,
        QueryParameter(pattern=AIRPORT_PATTERN, description="Origin airport.", examples=_example("EWR")),
    ] = None,
    destination: Annotated[
        str | None,
        QueryParameter(pattern=AIRPORT_PATTERN, description="Destination airport.", examples=_example("IAH")),
    ] = None,
    limit: Annotated[
        int,
        QueryParameter(
            ge=1, le=MAX_LIMIT, description=f"Page size (default {DEFAULT_LIMIT}).", examples=_example(10)
        ),
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        QueryParameter(
            max_length=CURSOR_MAX_LENGTH,
            description="`next_cursor` of the previous page; it carries that page's window and filters.",
            examples=_example(encode_cursor(EXAMPLE_CURSOR)),
        ),
    ] = None,
    synthetic: Synthetic = None,
) -> Response[bytes]:
    """One page of flights (the operation's description is LIST_DESCRIPTION)."""
    resolved_by = None
    extent = None
    if cursor:
        given = {"from": from_, "to": to, "carrier": carrier, "origin": origin, "destination": destination}
        page_cursor = _continued(cursor, given | {"synthetic": synthetic})
        first, last = page_cursor.first, page_cursor.last
        carrier, origin, destination = page_cursor.carrier, page_cursor.origin, page_cursor.destination
        after: tuple[datetime, str] | None = (page_cursor.after_time, page_cursor.after_id)
        include_synthetic = page_cursor.include_synthetic
    else:
        if from_ is None and to is None:  # the default window ends on the newest day holding data
            latest = latest_event_day()
            resolved_by = newest_day_key(latest)
            extent = await services.newest_day(latest, refresh=wants_fresh(cache_control))
        first, last = resolve_window(from_, to, extent.newest if extent else None)
        after = None
        include_synthetic = synthetic == INCLUDE
    start, end = day_window(first, last)
    query = FlightQuery(
        start=start,
        end=end,
        limit=limit,
        carrier=carrier,
        origin=origin,
        destination=destination,
        after=after,
        include_synthetic=include_synthetic,
    )

    async def load() -> tuple[bytes, int]:
        page = await services.read(services.warehouse.list_flights, query)
        next_cursor = None
        if page.more and page.last_key:
            next_cursor = encode_cursor(
                PageCursor(*page.last_key, first, last, query.carrier, origin, destination, include_synthetic)
            )
        return msgspec.json.encode(FlightPage(items=page.events, next_cursor=next_cursor)), 200

    # A default window's answer is keyed on the data it was resolved from: rows that arrive later
    # make a new key, so no answer read before they landed outlives their arrival.
    key = ("list", query, extent.rows if extent else None)
    return await cached_read(request, services, key, load, resolved_by)


@get(
    "/v1/flights/{event_id:str}",
    tags=["flights"],
    summary="Get one flight",
    operation_id="getFlight",
    operation_class=documented(LOOKUP_DOCS),
    responses={200: ResponseSpec(FlightEvent, description="The flight event", generate_examples=False)}
    | NOT_MODIFIED
    | problem_responses(
        {
            400: "Invalid `on`: Invalid RFC3339 encoded date",
            404: f"no flight event with id {EXAMPLE_EVENT['event_id']!r}",
            429: RATE_LIMITED,
            503: UNAVAILABLE,
        }
    ),
    response_headers=CACHE_HEADERS,
)
async def get_flight(
    request: Request[Any, Any, Any],
    services: NamedDependency[Services],
    event_id: Annotated[
        str,
        PathParameter(
            pattern=EVENT_ID_PATTERN,
            max_length=EVENT_ID_MAX_LENGTH,
            description="Event id.",
            examples=_example(EXAMPLE_EVENT["event_id"]),
        ),
    ],
    on: Annotated[
        date | None, _date_parameter("The event's UTC day; makes the lookup cheap", "2013-01-01")
    ] = None,
    if_none_match: IfNoneMatch = None,
    cache_control: CacheControl = None,
    synthetic: Synthetic = None,
) -> Response[bytes]:
    """The latest published copy of the flight event with this id.

    An id not found yet is cached briefly (an event just published reads back within seconds);
    send `Cache-Control: no-cache` to read fresh.
    """
    _check_day("on", on)
    include_synthetic = synthetic == INCLUDE

    async def load() -> tuple[bytes, int]:
        try:
            event = await services.read(services.warehouse.get_flight, event_id, on, include_synthetic)
        except StoredEventBreaksContract:
            detail = f"the stored flight event {event_id!r} breaks the event contract and is not served"
        else:
            if event is not None:
                return msgspec.json.encode(event), 200
            detail = f"no flight event with id {event_id!r}"
        return problem_body(404, detail), 404

    return await cached_read(request, services, ("get", event_id, on, include_synthetic), load)
