"""The bridge acks only what was stored, nacks only what does not fit, and holds the rest.

A fake warehouse scripts the answers: transient failures (connection refused, timeouts, 429,
5xx, a 500 from a server whose table does not answer) and table-level problems must hold the
messages (no nack: a nack spends a delivery attempt) until a write succeeds; a 500 from a
server whose table answers is a bad row, isolated by halving the batch. A fake subscriber
answers the pullers' Pull requests and records acks, nacks and lease extensions.
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
from google.pubsub_v1.types import PubsubMessage, PullResponse, ReceivedMessage

from app.bridge import Bridge, Table, TableState, leases, worker
from app.bridge.warehouse import schema_mismatch
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


class FakeSubscriber:
    """Pull, acknowledge and modify_ack_deadline like the SubscriberClient, on scripted messages.

    `pending` is handed out oldest first (nothing is redelivered); `pull_failures` are raised by
    the first pulls; `during_pull(n)` runs inside the n-th pull (1-based), before it answers.
    """

    SUBSCRIPTION = "projects/p/subscriptions/s"

    def __init__(self, payloads=(), *, pull_failures=(), during_pull=None, delivery_attempt=1):
        self.pending = [
            ReceivedMessage(
                ack_id=f"ack-{n}",
                message=PubsubMessage(data=data, message_id=str(n), publish_time=PUBLISHED),
                delivery_attempt=delivery_attempt + n % 3,
            )
            for n, data in enumerate(payloads)
        ]
        self.pull_failures = list(pull_failures)
        self.during_pull = during_pull
        self.pulls: list[int] = []  # max_messages of every pull that answered
        self.acks: list[list[str]] = []  # ack ids of every acknowledge request
        self.deadlines: list[tuple[int, list[str]]] = []  # every modify_ack_deadline request
        self.lock = threading.Lock()

    def pull(self, *, subscription, max_messages, retry, timeout):
        assert (subscription, retry) == (self.SUBSCRIPTION, None)
        assert 0 < max_messages <= 1_000
        with self.lock:
            if self.pull_failures:
                raise self.pull_failures.pop(0)
            self.pulls.append(max_messages)
            if self.during_pull:
                self.during_pull(len(self.pulls))
            taken, self.pending = self.pending[:max_messages], self.pending[max_messages:]
        if not taken:
            time.sleep(0.01)  # the emulator waits for messages until shortly before the timeout
        return PullResponse(received_messages=taken)

    def acknowledge(self, *, subscription, ack_ids, retry, timeout):
        assert len(ack_ids) <= leases.ACK_IDS_PER_REQUEST
        with self.lock:
            self.acks.append(list(ack_ids))

    def modify_ack_deadline(self, *, subscription, ack_ids, ack_deadline_seconds, retry, timeout):
        assert len(ack_ids) <= leases.ACK_IDS_PER_REQUEST
        with self.lock:
            self.deadlines.append((ack_deadline_seconds, list(ack_ids)))

    def close(self) -> None:
        pass

    def acked(self) -> list[str]:
        with self.lock:
            return [ack_id for request in self.acks for ack_id in request]

    def nacked(self) -> list[str]:
        with self.lock:
            return [ack_id for deadline, ids in self.deadlines if deadline == 0 for ack_id in ids]

    def extensions(self) -> dict[str, int]:
        """How many times each ack id's lease was extended."""
        with self.lock:
            counts: dict[str, int] = {}
            for deadline, ids in self.deadlines:
                for ack_id in ids if deadline == leases.LEASE_SECONDS else ():
                    counts[ack_id] = counts.get(ack_id, 0) + 1
            return counts


def bridge_for(warehouse: FakeWarehouse, subscriber: FakeSubscriber | None = None, **kwargs) -> Bridge:
    subscriber = subscriber or FakeSubscriber()
    return Bridge(
        subscriber_factory=lambda: subscriber,
        table=Table(warehouse, "p.d.t"),
        subscription_path=FakeSubscriber.SUBSCRIPTION,
        pullers=kwargs.pop("pullers", 0),
        max_backoff_seconds=0.01,
        **kwargs,
    )


def valid_payloads(count: int, prefix: str = "e") -> list[bytes]:
    event = json.loads(encode_event(flight_event("template")))
    return [json.dumps(event | {"event_id": f"{prefix}{n}"}).encode() for n in range(count)]


def wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


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


def test_pulled_messages_are_leased_until_stored_then_acked_in_batches():
    payloads = valid_payloads(3_000)
    subscriber = FakeSubscriber(payloads, delivery_attempt=4)
    warehouse = FakeWarehouse()
    bridge = bridge_for(warehouse, subscriber, pullers=2)
    bridge.start()
    try:
        assert wait_for(lambda: len(subscriber.acked()) == 3_000), bridge.stats.snapshot()
    finally:
        bridge.stop(drain_seconds=1)
    assert sorted(subscriber.acked()) == sorted(f"ack-{n}" for n in range(3_000)), "each acked once"
    assert sorted(warehouse.stored, key=int) == [str(n) for n in range(3_000)]
    assert subscriber.nacked() == []
    assert all(size <= 1_000 for size in subscriber.pulls)
    assert bridge.stats.stored == 3_000
    assert bridge.stats.highest_attempt_stored == 6, "ReceivedMessage.delivery_attempt reaches the status"
    assert bridge.held() == 0


def test_an_outage_holds_at_most_max_held_and_keeps_their_leases_until_stored(monkeypatch):
    """No nack while the warehouse is away: the leases are renewed; no pull beyond the cap."""
    monkeypatch.setattr(leases, "EXTEND_EVERY_SECONDS", 0.05)
    warehouse = FakeWarehouse(outages=[requests.ConnectTimeout("paused")] * 10_000, probe_fails=True)
    subscriber = FakeSubscriber(valid_payloads(120))
    bridge = bridge_for(warehouse, subscriber, pullers=3, max_held=50, writers=1)
    bridge.start()
    try:
        assert wait_for(lambda: bridge.stats.failed_writes >= 10)
        assert bridge.held() == 50
        assert sum(subscriber.pulls) == 50, "nothing pulled beyond what may be held"
        held = [f"ack-{n}" for n in range(50)]
        assert wait_for(lambda: all(subscriber.extensions().get(a, 0) >= 3 for a in held))
        assert subscriber.nacked() == []
        assert subscriber.acked() == []
        with warehouse.lock:  # the warehouse is back
            warehouse.outages.clear()
            warehouse.probe_failures = 0
        assert wait_for(lambda: len(subscriber.acked()) == 120), bridge.stats.snapshot()
    finally:
        bridge.stop(drain_seconds=1)
    assert subscriber.nacked() == []
    assert sorted(set(warehouse.stored), key=int) == [str(n) for n in range(120)]


def test_a_failing_pull_is_retried_with_backoff_and_the_bridge_goes_on(monkeypatch, caplog):
    """The subscription deleted or the emulator away: the puller waits, then pulls again."""
    monkeypatch.setattr(worker, "PULL_BACKOFF_SECONDS", (0.01, 0.05))
    failures = [NotFound("Subscription does not exist"), ServiceUnavailable("connection refused")] * 3
    subscriber = FakeSubscriber(valid_payloads(10), pull_failures=failures)
    warehouse = FakeWarehouse()
    bridge = bridge_for(warehouse, subscriber, pullers=1)
    bridge.start()
    try:
        assert wait_for(lambda: len(subscriber.acked()) == 10)
    finally:
        bridge.stop(drain_seconds=1)
    assert bridge.stats.failed_pulls == 6
    assert "pull failed" in caplog.text
    assert len(warehouse.stored) == 10


def test_stop_drains_what_it_can_and_hands_back_the_rest_unstored():
    """SIGTERM during an outage: pulling stops, the drain time passes, then what is held is nacked."""
    warehouse = FakeWarehouse(outages=[requests.ConnectTimeout("paused")] * 10_000, probe_fails=True)
    subscriber = FakeSubscriber(valid_payloads(3))
    late = FakeSubscriber(valid_payloads(1, "late")).pending[0]
    late.ack_id = "late"
    drain_began_at_pull: list[int] = []

    def sigterm_while_late_is_being_pulled(n: int) -> None:
        if subscriber.pending == [late]:
            drain_began_at_pull.append(n)
            bridge._draining.set()  # what stop() does first

    subscriber.during_pull = sigterm_while_late_is_being_pulled
    bridge = bridge_for(warehouse, subscriber, pullers=1, writers=1)
    bridge.start()
    assert wait_for(lambda: bridge.held() == 3)
    subscriber.pending = [late]
    started = time.monotonic()
    assert wait_for(lambda: "late" in subscriber.nacked()), "a delivery during the drain goes straight back"
    bridge.stop(drain_seconds=0.3)
    assert time.monotonic() - started < 5
    assert sorted(subscriber.nacked()) == ["ack-0", "ack-1", "ack-2", "late"], "held, then handed back"
    assert subscriber.acked() == []
    assert warehouse.stored == []
    assert bridge.stats.released == 3
    assert bridge.held() == 0
    assert len(subscriber.pulls) == drain_began_at_pull[0], "no pull after the drain began"


def test_messages_that_do_not_fit_are_nacked_on_arrival():
    subscriber = FakeSubscriber([b"\xff not utf-8", *valid_payloads(1)])
    warehouse = FakeWarehouse()
    bridge = bridge_for(warehouse, subscriber, pullers=1)
    bridge.start()
    try:
        assert wait_for(lambda: subscriber.nacked() == ["ack-0"] and subscriber.acked() == ["ack-1"])
    finally:
        bridge.stop(drain_seconds=1)
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
