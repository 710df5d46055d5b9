"""Message → table row, with the BigQuery subscription's `use_table_schema` semantics.

Part of the contract because two programs must agree on it: the local bridge (the stand-in for
the cloud's BigQuery subscription) maps every message with it, and the operator's dead-letter
command (`app/deadletters`, which ships in the image) re-validates dead letters with it.

It checks what real BigQuery would refuse, not the full event contract: JSON fields
map to columns by name; a missing NULLABLE column is NULL; a missing or null REQUIRED column,
a field with no column, a value of the wrong JSON type, a string longer than its column's
`maxLength` or that is not valid Unicode, an unparseable timestamp, or data that is not UTF-8
JSON object text make the message not fit. Contract-only rules (patterns, ranges, arrival after
departure) are the producers' and the API's job; a BigQuery subscription would store such
rows too, so the local stack stores them as well. bqemulator enforces none of these table
rules itself (it even drops `maxLength`), which is why they are checked here.

`write_metadata` columns are filled from the message: subscription_name, message_id,
publish_time and the attributes as a JSON object string.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.contract.warehouse_schema import METADATA_COLUMNS, table_schema

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_METADATA = {c["name"] for c in METADATA_COLUMNS}


class DoesNotFit(ValueError):
    """The message cannot be written to the table; the subscription nacks it."""


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise DoesNotFit(f"expected a JSON string, got {type(value).__name__}")
    try:  # JSON escapes can spell lone surrogates, which no UTF-8 column can hold
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise DoesNotFit("string is not valid Unicode (lone surrogate escape)") from None
    return value


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DoesNotFit(f"expected a JSON integer, got {type(value).__name__}")
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise DoesNotFit("integer out of INT64 range")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise DoesNotFit(f"expected a JSON boolean, got {type(value).__name__}")
    return value


def _timestamp(value: Any) -> str:
    """RFC 3339 / ISO 8601 strings (no zone means UTC) or integer epoch microseconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            parsed = datetime.fromtimestamp(value / 1_000_000, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise DoesNotFit("epoch microseconds out of range") from exc
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise DoesNotFit(f"unparseable timestamp {value[:40]!r}") from exc
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    else:
        raise DoesNotFit(f"expected a timestamp string, got {type(value).__name__}")
    return parsed.isoformat(timespec="microseconds").replace("+00:00", "Z")


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "STRING": _string,
    "INTEGER": _integer,
    "BOOLEAN": _boolean,
    "TIMESTAMP": _timestamp,
}


@dataclass(frozen=True)
class _Column:
    name: str
    required: bool
    convert: Callable[[Any], Any]
    max_length: int | None

    def value(self, raw: Any) -> Any:
        converted = self.convert(raw)
        if self.max_length is not None and len(converted) > self.max_length:
            raise DoesNotFit(f"{len(converted):,} characters, over the column's maxLength {self.max_length}")
        return converted


class RowMapper:
    """Maps Pub/Sub messages onto one table's columns (the event columns of `table_schema()`)."""

    def __init__(self, subscription_name: str, schema: list[dict[str, str]] | None = None) -> None:
        self.subscription_name = subscription_name
        self._columns = [
            _Column(
                c["name"],
                c.get("mode") == "REQUIRED",
                _CONVERTERS[c["type"]],
                int(c["maxLength"]) if c.get("maxLength") else None,
            )
            for c in (schema if schema is not None else table_schema())
            if c["name"] not in _METADATA
        ]
        self._names = {c.name for c in self._columns}

    def to_row(
        self, data: bytes, *, message_id: str, publish_time: datetime, attributes: Mapping[str, str]
    ) -> dict[str, Any]:
        """The row to insert for one message; raises DoesNotFit if BigQuery would refuse it."""
        try:  # strict UTF-8: json.loads(bytes) would also take UTF-16/32 and encoded surrogates
            payload = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise DoesNotFit(f"data is not UTF-8 (invalid byte at offset {exc.start})") from exc
        except ValueError as exc:
            raise DoesNotFit("data is not JSON") from exc
        if not isinstance(payload, dict):
            raise DoesNotFit("data is not a JSON object")
        unknown = payload.keys() - self._names
        if unknown:
            names = sorted(name[:40] for name in unknown)  # reasons stay short, whatever the payload
            raise DoesNotFit(f"fields without a column: {', '.join(names[:10])}")
        row: dict[str, Any] = {}
        for column in self._columns:
            value = payload.get(column.name)
            if value is None:
                if column.required:
                    raise DoesNotFit(f"missing REQUIRED column {column.name}")
                row[column.name] = None
                continue
            try:
                row[column.name] = column.value(value)
            except DoesNotFit as exc:
                raise DoesNotFit(f"{column.name}: {exc}") from None
        row["subscription_name"] = self.subscription_name
        row["message_id"] = message_id
        row["publish_time"] = _timestamp(publish_time.isoformat())
        row["attributes"] = json.dumps(dict(attributes), sort_keys=True)
        return row
