"""Through the real emulators: every published message is either stored or dead-lettered."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from google.cloud import bigquery

from app.contract.flight_event import FlightEvent, decode_event, encode_event
from app.contract.synthetic import attributes as synthetic_attributes
from tests.factories import flight_event

pytestmark = pytest.mark.integration
TIMEOUT = 10


def make_event(run: str, n: int) -> FlightEvent:
    departure = datetime(2013, 3, 1, 12, 0, tzinfo=UTC) + timedelta(minutes=n)
    return flight_event(f"{run}-{n}", departure=departure, flight_number=100 + n)


def garbage(run: str) -> dict[str, bytes]:
    valid = json.loads(encode_event(make_event(run, 999)))
    return {
        "non-json": b"\xff this is not json",
        "unknown-field": json.dumps(valid | {"gate": "A1"}).encode(),
        "missing-required": json.dumps({k: v for k, v in valid.items() if k != "carrier"}).encode(),
        "wrong-type": json.dumps(valid | {"flight_number": "1545"}).encode(),
        "bad-timestamp": json.dumps(valid | {"event_time": "yesterday"}).encode(),
    }


def query(client: bigquery.Client, sql: str, **params: str) -> list[bigquery.Row]:
    config = bigquery.QueryJobConfig(
        query_parameters=[bigquery.ScalarQueryParameter(k, "STRING", v) for k, v in params.items()]
    )
    retry = bigquery.DEFAULT_RETRY.with_timeout(TIMEOUT)
    return list(client.query(sql, job_config=config, timeout=TIMEOUT, retry=retry).result(timeout=TIMEOUT))


def test_mixed_batch_is_stored_or_dead_lettered_and_nothing_is_lost(local_stack):
    run = f"t{uuid.uuid4().hex[:12]}"
    events = [make_event(run, n) for n in range(200)]
    bad = garbage(run)
    publisher = local_stack.publisher()
    started = time.monotonic()
    good_ids = {
        f.result(timeout=TIMEOUT)
        for f in [publisher.publish(local_stack.topic_path, encode_event(e), run=run) for e in events]
    }
    bad_ids = {
        case: publisher.publish(local_stack.topic_path, data, run=run, case=case).result(timeout=TIMEOUT)
        for case, data in bad.items()
    }
    warehouse = local_stack.bigquery()

    # Valid events land in the table (and the view) with the subscription's metadata.
    sql = f"SELECT * FROM `{local_stack.table_id}` WHERE STARTS_WITH(event_id, @run)"  # noqa: S608
    rows: list[bigquery.Row] = []
    deadline = time.monotonic() + 60
    while len(rows) < len(events) and time.monotonic() < deadline:
        time.sleep(0.5)
        rows = query(warehouse, sql, run=run)
    stored_after = time.monotonic() - started
    assert {r["message_id"] for r in rows} == good_ids, "every valid message stored, no garbage row"
    assert all(r["subscription_name"] == local_stack.subscription_path for r in rows)
    assert all(json.loads(r["attributes"]) == {"run": run} for r in rows)
    assert all(r["publish_time"] is not None for r in rows)
    view_sql = f"SELECT * EXCEPT (subscription_name, message_id, publish_time, attributes) FROM `{local_stack.view_id}` WHERE STARTS_WITH(event_id, @run)"  # noqa: S608, E501
    read_back = {
        e.event_id: e
        for e in (
            decode_event(json.dumps(dict(r.items()), default=datetime.isoformat))
            for r in query(warehouse, view_sql, run=run)
        )
    }
    assert read_back == {e.event_id: e for e in events}, "events survive the round trip unchanged"

    # Garbage is dead-lettered after the subscription's max delivery attempts, with its attributes.
    subscriber = local_stack.subscriber()
    dead: dict[str, dict[str, str]] = {}
    deadline = time.monotonic() + 60
    while set(dead) != set(bad) and time.monotonic() < deadline:
        response = subscriber.pull(
            subscription=local_stack.dead_letter_subscription_path, max_messages=100, timeout=TIMEOUT
        )
        if response.received_messages:
            subscriber.acknowledge(
                subscription=local_stack.dead_letter_subscription_path,
                ack_ids=[m.ack_id for m in response.received_messages],
                timeout=TIMEOUT,
            )
        for received in response.received_messages:
            attributes = dict(received.message.attributes)
            if attributes.get("run") == run:
                dead[attributes["case"]] = attributes
                assert received.message.data == bad[attributes["case"]]
    dead_lettered_after = time.monotonic() - started
    subscriber.close()
    assert set(dead) == set(bad), f"dead-lettered {sorted(dead)} of {sorted(bad)}"
    attempts = local_stack.settings.max_delivery_attempts
    assert all(a["CloudPubSubDeadLetterSourceDeliveryCount"] == str(attempts) for a in dead.values())
    assert len(good_ids) + len(bad_ids) == len(rows) + len(dead)
    print(f"stored after {stored_after:.1f} s, dead-lettered after {dead_lettered_after:.1f} s")


def test_the_analysts_view_leaves_synthetic_events_out(local_stack):
    """The bridge stores the synthetic mark in `attributes` as the BigQuery subscription does; the view
    drops it."""
    run = f"s{uuid.uuid4().hex[:12]}"
    real, synthetic = make_event(run, 1), make_event(run, 2)
    publisher = local_stack.publisher()
    publisher.publish(local_stack.topic_path, encode_event(real), run=run).result(timeout=TIMEOUT)
    publisher.publish(
        local_stack.topic_path, encode_event(synthetic), run=run, **synthetic_attributes(synthetic=True)
    ).result(timeout=TIMEOUT)
    warehouse = local_stack.bigquery()
    table_sql = f"SELECT event_id, attributes FROM `{local_stack.table_id}` WHERE STARTS_WITH(event_id, @run)"  # noqa: S608
    rows: list[bigquery.Row] = []
    deadline = time.monotonic() + 60
    while len(rows) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        rows = query(warehouse, table_sql, run=run)

    assert {r["event_id"]: json.loads(r["attributes"]) for r in rows} == {
        real.event_id: {"run": run},
        synthetic.event_id: {"run": run, "synthetic": "true"},
    }
    view_sql = f"SELECT event_id FROM `{local_stack.view_id}` WHERE STARTS_WITH(event_id, @run)"  # noqa: S608
    assert [r["event_id"] for r in query(warehouse, view_sql, run=run)] == [real.event_id]
