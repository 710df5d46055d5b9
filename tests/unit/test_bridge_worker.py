"""The bridge acks only what was stored, nacks only what does not fit, and holds the rest.

A fake warehouse scripts the answers: transient failures (connection refused, timeouts, 429,
5xx, a 500 from a server whose table does not answer) and table-level problems must hold the
messages (no nack: a nack spends a delivery attempt) until a write succeeds; a 500 from a
server whose table answers is a bad row, isolated by halving the batch.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import requests
from google.api_core.exceptions import (
    BadGateway,
    BadRequest,
    Forbidden,
    GatewayTimeout,
    InternalServerError,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
)
from google.cloud import bigquery

from app.bridge import Bridge, Table, TableState
from app.bridge.warehouse import problem_from, schema_mismatch
from app.bridge.worker import BAD_ROW_STRIKES
from app.contract.flight_event import encode_event
from app.contract.warehouse_schema import table_schema
from tests.factories import flight_event

PUBLISHED = datetime(2024, 5, 1, tzinfo=UTC)


@dataclass
class FakeMessage:
    message_id: str
    data: bytes = b"{}"
    publish_time: datetime = PUBLISHED
    attributes: dict = field(default_factory=dict)
    delivery_attempt: int = 1
    outcome: list[str] = field(default_factory=list)

    def ack(self) -> None:
        self.outcome.append("ack")

    def nack(self) -> None:
        self.outcome.append("nack")


class FakeWarehouse:
    """insert_rows_json/get_table like the BigQuery client; `outages` raise before anything is stored.

    Like bqemulator, a row id in `poisoned` fails the whole request with a 500 while the table
    answers; `invalid`/`stopped` come back as per-row errors.
    """

    def __init__(self, *, outages=(), poisoned=(), invalid=(), stopped=(), probe_fails=False, schema=None):
        self.outages = list(outages)
        self.poisoned, self.invalid, self.stopped = set(poisoned), set(invalid), set(stopped)
        self.probe_failures = len(self.outages) if probe_fails else 0  # the table is down as long
        self.schema = schema if schema is not None else table_schema()
        self.stored: list[str] = []
        self.requests: list[int] = []
        self.lock = threading.Lock()

    def get_table(self, table_id, *, timeout, retry):
        assert timeout
        if self.probe_failures:
            self.probe_failures -= 1
            raise requests.ConnectTimeout("paused")
        return SimpleNamespace(schema=[bigquery.SchemaField.from_api_repr(c) for c in self.schema])

    def insert_rows_json(self, table, rows, *, row_ids, skip_invalid_rows, timeout, retry):
        assert timeout
        assert skip_invalid_rows, "rows that fit must be stored even when others in the batch do not"
        with self.lock:
            self.requests.append(len(rows))
            if self.outages:
                raise self.outages.pop(0)
            if self.poisoned & set(row_ids):
                raise InternalServerError("An internal error occurred")
            errors = []
            for index, row_id in enumerate(row_ids):
                if row_id in self.invalid:
                    invalid = {"reason": "invalid", "location": "x", "message": "bad"}
                    errors.append({"index": index, "errors": [invalid]})
                elif row_id in self.stopped:
                    self.stopped.discard(row_id)  # stopped once, through no fault of its own
                    errors.append({"index": index, "errors": [{"reason": "stopped", "message": ""}]})
                else:
                    self.stored.append(row_id)
            return errors


def bridge_for(warehouse: FakeWarehouse, **kwargs) -> Bridge:
    return Bridge(
        subscriber_factory=lambda: None,
        table=Table(warehouse, "p.d.t"),
        subscription_path="projects/p/subscriptions/s",
        streams=0,
        max_backoff_seconds=0.01,
        **kwargs,
    )


def deliver(warehouse: FakeWarehouse, count: int) -> tuple[Bridge, list[FakeMessage]]:
    bridge = bridge_for(warehouse)
    messages = [FakeMessage(str(n)) for n in range(count)]
    bridge._deliver([({"n": m.message_id}, m) for m in messages])
    return bridge, messages


TRANSIENT = [
    requests.ConnectionError("connection refused"),
    requests.ConnectionError("connection reset by peer"),
    requests.ReadTimeout("read timed out"),
    TooManyRequests("rate limited"),
    BadGateway("bad gateway"),
    ServiceUnavailable("unavailable"),
    GatewayTimeout("timeout"),
]


@pytest.mark.parametrize("failure", TRANSIENT, ids=lambda e: type(e).__name__)
def test_a_transient_failure_holds_the_batch_whole_and_spends_no_delivery_attempt(failure):
    warehouse = FakeWarehouse(outages=[failure] * 4)
    bridge, messages = deliver(warehouse, 8)
    assert all(m.outcome == ["ack"] for m in messages), "held, then stored: never nacked"
    assert warehouse.requests == [8] * 5, "retried whole, never halved like a bad row"
    assert (bridge.stats.stored, bridge.stats.failed_writes, bridge.stats.refused) == (8, 4, 0)
    assert bridge.stats.state == TableState.ACTIVE


def test_a_500_from_a_server_whose_table_does_not_answer_is_an_outage_not_a_bad_row():
    warehouse = FakeWarehouse(outages=[InternalServerError("paused")] * 6, probe_fails=True)
    _, messages = deliver(warehouse, 4)
    assert all(m.outcome == ["ack"] for m in messages)
    assert warehouse.requests == [4] * 7


def test_a_500_from_a_healthy_server_isolates_the_bad_rows_by_halving():
    warehouse = FakeWarehouse(poisoned={"5", "11"})
    bridge, messages = deliver(warehouse, 16)
    assert sorted(warehouse.stored, key=int) == [str(n) for n in range(16) if n not in (5, 11)]
    for m in messages:
        assert m.outcome == (["nack"] if m.message_id in {"5", "11"} else ["ack"])
    assert warehouse.requests.count(1) >= 2 * BAD_ROW_STRIKES, "a single row is refused several times first"
    assert (bridge.stats.stored, bridge.stats.refused) == (14, 2)


def test_rows_refused_one_by_one_are_nacked_and_stopped_rows_are_retried():
    warehouse = FakeWarehouse(invalid={"2"}, stopped={"1", "3"})
    bridge, messages = deliver(warehouse, 4)
    assert [m.outcome for m in messages] == [["ack"], ["ack"], ["nack"], ["ack"]]
    assert sorted(warehouse.stored) == ["0", "1", "3"]
    assert warehouse.requests == [4, 2]
    assert (bridge.stats.stored, bridge.stats.refused) == (3, 1)


@pytest.mark.parametrize(
    ("failure", "state"),
    [
        (NotFound("Not found: Table p:d.t"), TableState.NOT_FOUND),
        (Forbidden("Access Denied: Table p:d.t"), TableState.PERMISSION_DENIED),
        (BadRequest("no such field: gate"), TableState.SCHEMA_MISMATCH),
    ],
)
def test_a_table_problem_is_a_state_and_holds_every_message(failure, state):
    warehouse = FakeWarehouse(outages=[failure] * 3)
    bridge = bridge_for(warehouse)
    messages = [FakeMessage(str(n)) for n in range(5)]
    seen: list[str] = []
    original = bridge.stats.set_state

    def record(new_state, detail=""):
        seen.append(new_state)
        original(new_state, detail)

    bridge.stats.set_state = record
    bridge._deliver([({"n": m.message_id}, m) for m in messages])
    assert state in seen, f"reported {seen}"
    assert all(m.outcome == ["ack"] for m in messages), "held, not dead-lettered one by one"
    assert bridge.stats.state == TableState.ACTIVE


def test_a_table_of_the_wrong_shape_is_a_schema_mismatch():
    without_metadata = [c for c in table_schema() if c["name"] != "attributes"]
    table = Table(FakeWarehouse(schema=without_metadata), "p.d.t")
    with pytest.raises(Exception, match="no column attributes") as info:
        table.probe()
    assert info.value.state == TableState.SCHEMA_MISMATCH


def test_schema_mismatch_accepts_the_contract_and_relaxations_only():
    schema = table_schema()
    assert schema_mismatch(schema) is None
    relaxed = [c | {"mode": "NULLABLE"} for c in schema] + [{"name": "extra", "type": "STRING"}]
    assert schema_mismatch([{k: v for k, v in c.items() if k != "maxLength"} for c in relaxed]) is None
    retyped = [c | {"type": "STRING"} if c["name"] == "flight_number" else c for c in schema]
    assert "flight_number is STRING" in schema_mismatch(retyped)
    stricter = [c | {"mode": "REQUIRED"} if c["name"] == "tail_number" else c for c in schema]
    assert "tail_number is REQUIRED" in schema_mismatch(stricter)
    extra_required = [*schema, {"name": "gate", "type": "STRING", "mode": "REQUIRED"}]
    assert "gate" in schema_mismatch(extra_required)


@pytest.mark.parametrize(
    ("failure", "state", "row_suspect"),
    [
        (InternalServerError("boom"), TableState.UNAVAILABLE, True),
        (BadRequest("Request payload size exceeds the limit"), TableState.UNAVAILABLE, True),
        (ServiceUnavailable("x"), TableState.UNAVAILABLE, False),
        (requests.ConnectionError("refused"), TableState.UNAVAILABLE, False),
        (NotFound("x"), TableState.NOT_FOUND, False),
        (Forbidden("x"), TableState.PERMISSION_DENIED, False),
    ],
)
def test_failures_are_classified(failure, state, row_suspect):
    problem = problem_from(failure)
    assert (problem.state, problem.row_suspect) == (state, row_suspect)


def test_stop_drains_what_it_can_and_hands_back_the_rest_unstored():
    """SIGTERM during an outage: wait the drain time, then nack (never ack) what is still held."""
    warehouse = FakeWarehouse(outages=[requests.ConnectTimeout("paused")] * 10_000, probe_fails=True)
    bridge = bridge_for(warehouse, writers=1)
    bridge.start()
    event = json.loads(encode_event(flight_event("drain-1")))
    payloads = [json.dumps(event | {"event_id": f"d{n}"}).encode() for n in range(3)]
    messages = [FakeMessage(str(n), data=data) for n, data in enumerate(payloads)]
    for m in messages:
        bridge._on_message(m)
    late = FakeMessage("late", data=json.dumps(event).encode())
    started = time.monotonic()
    bridge._draining.set()
    bridge._on_message(late)
    bridge.stop(drain_seconds=0.3)
    assert time.monotonic() - started < 5
    assert late.outcome == ["nack"], "deliveries during a drain go straight back"
    assert all(m.outcome == ["nack"] for m in messages), "held through the drain, then handed back"
    assert warehouse.stored == []
    assert bridge.stats.released == 3
    assert bridge.held() == 0


def test_messages_that_do_not_fit_are_nacked_on_arrival():
    bridge = bridge_for(FakeWarehouse())
    bad = FakeMessage("bad", data=b"\xff not utf-8")
    bridge._on_message(bad)
    assert bad.outcome == ["nack"]
    assert bridge.stats.not_fitting == 1
    assert bridge.held() == 0


def test_the_status_tells_how_close_a_stored_message_came_to_the_dead_letter_topic():
    warehouse = FakeWarehouse(invalid={"refused"})
    bridge = bridge_for(warehouse)
    messages = [
        FakeMessage("early", delivery_attempt=2),
        FakeMessage("late", delivery_attempt=7),
        FakeMessage("refused", delivery_attempt=9),  # nacked, not stored: not counted
    ]
    bridge._deliver([({"n": m.message_id}, m) for m in messages])
    assert bridge.stats.snapshot()["highest_attempt_stored"] == 7
