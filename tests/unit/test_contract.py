"""The event contract and every schema derived from it agree."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar.testing import TestClient

from app.api.main import create_app
from app.api.settings import Settings
from app.contract.examples import EXAMPLE_EVENT
from app.contract.flight_event import (
    TIMESTAMP_PATTERN,
    FlightEvent,
    contract_fields,
    decode_event,
    encode_event,
)
from app.contract.warehouse_schema import METADATA_COLUMNS, table_schema

OPENAPI_TYPES = {"string": "string", "integer": "integer", "boolean": "boolean", "timestamp": "string"}
BIGQUERY_TYPES = {"string": "STRING", "integer": "INTEGER", "boolean": "BOOLEAN", "timestamp": "TIMESTAMP"}

# The documented example, with its scheduled departure written in New York time.
VALID = EXAMPLE_EVENT | {"event_id": "canary-1", "scheduled_departure": "2013-01-01T05:15:00-05:00"}


@pytest.fixture(scope="module")
def openapi() -> dict:
    with TestClient(create_app(Settings(project_id="contract-test"))) as client:
        return client.get("/schema/openapi.json").json()


def test_bigquery_schema_is_the_contract_plus_subscription_metadata() -> None:
    schema = table_schema()
    fields = contract_fields()
    assert [c["name"] for c in schema] == [f.name for f in fields] + [c["name"] for c in METADATA_COLUMNS]
    for column, field in zip(schema, fields, strict=False):
        assert column["type"] == BIGQUERY_TYPES[field.kind]
        assert column["mode"] == ("NULLABLE" if field.nullable else "REQUIRED")
        assert column["description"]
    assert {c["name"] for c in METADATA_COLUMNS} == {
        "subscription_name",
        "message_id",
        "publish_time",
        "attributes",
    }


def test_openapi_event_model_is_the_contract(openapi: dict) -> None:
    component = openapi["components"]["schemas"]["FlightEvent"]
    fields = contract_fields()
    assert list(component["properties"]) == [f.name for f in fields]
    assert sorted(component["required"]) == sorted(f.name for f in fields if not f.nullable)
    for field in fields:
        prop = component["properties"][field.name]
        types = [t["type"] for t in prop["oneOf"]] if "oneOf" in prop else [prop["type"]]
        assert OPENAPI_TYPES[field.kind] in types
        assert ("null" in types) == field.nullable
        if field.kind == "timestamp":
            formats = [t.get("format") for t in prop.get("oneOf", [prop])]
            assert "date-time" in formats


def test_api_reads_and_writes_the_contract_type(openapi: dict) -> None:
    post = openapi["paths"]["/v1/events"]["post"]
    body_ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body_ref.endswith("/FlightEvent")
    page = openapi["components"]["schemas"]["FlightPage"]
    assert page["properties"]["items"]["items"]["$ref"].endswith("/FlightEvent")


def test_timestamps_are_normalised_to_utc_and_round_trip() -> None:
    event = decode_event(msgspec.json.encode(VALID))
    assert event.scheduled_departure == datetime(2013, 1, 1, 10, 15, tzinfo=UTC)
    assert event.scheduled_departure.utcoffset().total_seconds() == 0
    assert decode_event(encode_event(event)) == event
    assert b'"scheduled_departure":"2013-01-01T10:15:00Z"' in encode_event(event)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"event_time": "2013-01-01T10:15:00"}, "timezone"),  # naive timestamp
        ({"event_time": 0.5}, "Expected `datetime`"),
        ({"carrier": "united"}, "carrier"),
        ({"flight_number": "1545"}, "Expected `int`"),
        ({"unexpected": 1}, "unknown field"),
        ({"destination": "EWR"}, "must differ"),
        ({"scheduled_arrival": "2013-01-01T09:00:00Z"}, "after scheduled_departure"),
        ({"distance_miles": 0}, ">= 1"),
    ],
)
def test_contract_rejects_bad_events(change: dict, message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        decode_event(msgspec.json.encode(VALID | change))


@pytest.mark.parametrize("missing", [f.name for f in contract_fields() if not f.nullable])
def test_required_fields_are_required(missing: str) -> None:
    payload = {k: v for k, v in VALID.items() if k != missing}
    with pytest.raises(msgspec.ValidationError, match=f"missing required field `{missing}`"):
        decode_event(msgspec.json.encode(payload))


def test_optional_fields_default_to_none() -> None:
    optional = [f.name for f in contract_fields() if f.nullable]
    event = decode_event(msgspec.json.encode({k: v for k, v in VALID.items() if k not in optional}))
    assert all(getattr(event, name) is None for name in optional)
    assert isinstance(event, FlightEvent)


@given(
    moment=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2110, 1, 1)),
    offset_minutes=st.integers(-23 * 60 - 59, 23 * 60 + 59),
    separator=st.sampled_from("Tt "),
    fraction=st.sampled_from(["", ".5", ".123456", ".1234567"]),
    colon=st.booleans(),
    zulu=st.sampled_from(["", "Z", "z"]),
)
def test_the_timestamp_pattern_describes_every_timestamp_the_contract_accepts(
    moment: datetime, offset_minutes: int, separator: str, fraction: str, colon: bool, zulu: str
) -> None:
    """The OpenAPI schema's pattern admits whatever the decoder and the bounds admit (no false 'invalid')."""
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    offset = zulu or f"{sign}{hours:02d}{':' if colon else ''}{minutes:02d}"
    text = f"{moment:%Y-%m-%d}{separator}{moment:%H:%M:%S}{fraction}{offset}"
    try:
        decode_event(msgspec.json.encode(VALID | {"actual_departure": text}))
    except msgspec.ValidationError:
        return
    assert re.fullmatch(TIMESTAMP_PATTERN, text), text
