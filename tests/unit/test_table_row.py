"""Which messages fit the table (use_table_schema semantics) and what row they become."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from app.contract.table_row import DoesNotFit, RowMapper
from app.contract.warehouse_schema import table_schema

SUBSCRIPTION = "projects/p/subscriptions/s"
PUBLISHED = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
VALID = {
    "event_id": "e-1",
    "event_time": "2013-01-01T05:15:00-05:00",
    "carrier": "UA",
    "flight_number": 1545,
    "origin": "EWR",
    "destination": "IAH",
    "scheduled_departure": "2013-01-01T10:15:00Z",
    "scheduled_arrival": "2013-01-01T14:19:00Z",
    "distance_miles": 1400,
    "cancelled": False,
}


def row_for(payload: object, *, raw: bytes | None = None) -> dict:
    data = raw if raw is not None else json.dumps(payload).encode()
    return RowMapper(SUBSCRIPTION).to_row(
        data, message_id="42", publish_time=PUBLISHED, attributes={"k": "v"}
    )


def test_fitting_message_fills_every_column_and_the_metadata():
    row = row_for(VALID)
    assert set(row) == {c["name"] for c in table_schema()}
    assert row["event_time"] == "2013-01-01T10:15:00.000000Z"  # normalised to UTC
    assert row["tail_number"] is None
    assert row["actual_arrival"] is None
    assert row["subscription_name"] == SUBSCRIPTION
    assert row["message_id"] == "42"
    assert row["publish_time"] == "2024-05-01T12:00:00.123456Z"
    assert json.loads(row["attributes"]) == {"k": "v"}


def test_timestamp_accepts_epoch_microseconds_and_zoneless_strings_as_utc():
    row = row_for(VALID | {"actual_departure": 1357035420_000000, "actual_arrival": "2013-01-01 14:30:00"})
    assert row["actual_departure"] == "2013-01-01T10:17:00.000000Z"
    assert row["actual_arrival"] == "2013-01-01T14:30:00.000000Z"


def test_contract_only_rules_are_not_the_tables_business():
    """A BigQuery subscription stores rows the contract would refuse (bad pattern, range)."""
    row = row_for(VALID | {"carrier": "u!", "flight_number": 0})
    assert (row["carrier"], row["flight_number"]) == ("u!", 0)


def test_every_contract_string_has_a_max_length_in_the_table():
    """The contract's string limits are the table's STRING(n), so BigQuery refuses oversized values."""
    strings = {c["name"]: c.get("maxLength") for c in table_schema() if c["type"] == "STRING"}
    event_strings = {
        name for name in strings if name not in {"subscription_name", "message_id", "attributes"}
    }
    assert {name: strings[name] for name in event_strings} == {
        "event_id": "64",
        "carrier": "2",
        "tail_number": "8",
        "origin": "3",
        "destination": "3",
    }


def test_a_string_at_its_max_length_fits():
    row = row_for(VALID | {"event_id": "e" * 64, "tail_number": "N1234567"})
    assert len(row["event_id"]) == 64


@pytest.mark.parametrize(
    ("payload", "raw", "reason"),
    [
        (None, b"{not json", "not JSON"),
        (None, b"\xff\xfe not json", "not UTF-8"),
        (None, json.dumps(VALID).encode().replace(b'"UA"', b'"U\xff"'), "not UTF-8"),
        (None, json.dumps(VALID).encode("utf-16"), "not UTF-8"),  # valid JSON, but not UTF-8
        (
            None,
            json.dumps(VALID).encode().replace(b'"UA"', b'"\xed\xa0\x80"'),
            "not UTF-8",
        ),  # encoded surrogate
        (VALID | {"carrier": "\ud800A"}, None, "carrier: string is not valid Unicode"),
        (
            VALID | {"tail_number": "N" * 2_000_000},
            None,
            "tail_number: 2,000,000 characters, over the column's maxLength 8",
        ),
        (VALID | {"event_id": "e" * 65}, None, "event_id: 65 characters"),
        (VALID | {"x" * 5_000: 1}, None, "without a column: x{40}$"),
        (None, b"[1, 2]", "not a JSON object"),
        (VALID | {"gate": "A1"}, None, "without a column: gate"),
        (VALID | {"message_id": "x"}, None, "without a column: message_id"),
        ({k: v for k, v in VALID.items() if k != "carrier"}, None, "missing REQUIRED column carrier"),
        (VALID | {"cancelled": None}, None, "missing REQUIRED column cancelled"),
        (VALID | {"flight_number": "1545"}, None, "flight_number: expected a JSON integer"),
        (VALID | {"flight_number": 15.5}, None, "flight_number: expected a JSON integer"),
        (VALID | {"distance_miles": 2**63}, None, "INT64"),
        (VALID | {"cancelled": "false"}, None, "cancelled: expected a JSON boolean"),
        (VALID | {"carrier": 7}, None, "carrier: expected a JSON string"),
        (VALID | {"event_time": "yesterday"}, None, "unparseable timestamp"),
        (VALID | {"event_time": True}, None, "expected a timestamp"),
    ],
)
def test_messages_that_do_not_fit(payload, raw, reason):
    with pytest.raises(DoesNotFit, match=reason):
        row_for(payload, raw=raw)
