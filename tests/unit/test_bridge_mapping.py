"""Which messages fit the table (use_table_schema semantics) and what row they become."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from app.bridge import DoesNotFit, RowMapper
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
    row = row_for(VALID | {"carrier": "not a carrier", "flight_number": 0})
    assert (row["carrier"], row["flight_number"]) == ("not a carrier", 0)


@pytest.mark.parametrize(
    ("payload", "raw", "reason"),
    [
        (None, b"\xff\xfe not json", "not JSON"),
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
