"""Opaque page cursors that carry the whole query they continue.

A cursor holds the resolved window, the filters and the keyset of the last row read, so a
next page needs nothing but the cursor: it cannot drift when newer data moves the default
window, and it cannot be mixed with another query's filters. Cursors are not secret: one a
client edits by hand is validated like any query string.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, date, datetime
from typing import Annotated

import msgspec
from litestar.exceptions import ValidationException
from msgspec import Meta

from app.contract.flight_event import (
    AIRPORT_PATTERN,
    CARRIER_PATTERN,
    EARLIEST_TIMESTAMP,
    EVENT_ID_MAX_LENGTH,
    EVENT_ID_PATTERN,
    LATEST_TIMESTAMP,
)

# A cursor for the longest event id and every filter encodes to about 200 characters.
CURSOR_MAX_LENGTH = 400
FILTERS = ("carrier", "origin", "destination")


class PageCursor(msgspec.Struct, array_like=True, forbid_unknown_fields=True, frozen=True):
    """Where the next page starts, and the query it belongs to."""

    after_time: Annotated[datetime, Meta(tz=True)]
    after_id: Annotated[str, Meta(pattern=EVENT_ID_PATTERN, max_length=EVENT_ID_MAX_LENGTH)]
    first: date
    last: date
    carrier: Annotated[str, Meta(pattern=CARRIER_PATTERN)] | None = None
    origin: Annotated[str, Meta(pattern=AIRPORT_PATTERN)] | None = None
    destination: Annotated[str, Meta(pattern=AIRPORT_PATTERN)] | None = None
    include_synthetic: bool = False


def encode_cursor(cursor: PageCursor) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(cursor)).decode().rstrip("=")


def decode_cursor(text: str) -> PageCursor:
    """The cursor, or a 400 naming `cursor` when this API did not issue it (or it was damaged)."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        cursor = msgspec.json.decode(raw, type=PageCursor, strict=True)
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:  # ValidationError is a DecodeError
        raise cursor_error("not a cursor this API issued") from exc
    if not EARLIEST_TIMESTAMP <= cursor.after_time < LATEST_TIMESTAMP:
        raise cursor_error("not a cursor this API issued")
    return msgspec.structs.replace(cursor, after_time=cursor.after_time.astimezone(UTC))


def cursor_error(message: str) -> ValidationException:
    return ValidationException(
        f"`cursor`: {message}", extra=[{"key": "cursor", "source": "query", "message": message}]
    )
