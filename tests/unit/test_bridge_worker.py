"""The bridge acks only what the warehouse accepted, even when the server refuses a whole batch."""

from __future__ import annotations

from dataclasses import dataclass, field

import requests
from google.api_core.exceptions import InternalServerError

from app.bridge import Bridge


@dataclass
class FakeMessage:
    message_id: str
    outcome: list[str] = field(default_factory=list)

    def ack(self) -> None:
        self.outcome.append("ack")

    def nack(self) -> None:
        self.outcome.append("nack")


class FakeWarehouse:
    """Like bqemulator: one poisoned row fails the whole insertAll with a 500."""

    def __init__(self, poisoned: set[str], rejected: set[str] = frozenset()) -> None:
        self.poisoned, self.rejected, self.stored = poisoned, rejected, []

    def insert_rows_json(self, table, rows, *, row_ids, timeout, retry):
        assert timeout
        assert retry is not None
        if self.poisoned & set(row_ids):
            raise InternalServerError("one bad row")
        errors = [
            {"index": i, "errors": ["invalid"]} for i, rid in enumerate(row_ids) if rid in self.rejected
        ]
        self.stored += [rid for rid in row_ids if rid not in self.rejected]
        return errors


def write(warehouse: FakeWarehouse, count: int) -> tuple[Bridge, list[FakeMessage]]:
    bridge = Bridge(
        subscriber_factory=lambda: None, bigquery_client=warehouse, subscription_path="s", table_id="t"
    )
    messages = [FakeMessage(str(n)) for n in range(count)]
    bridge._write([({"n": m.message_id}, m) for m in messages])
    return bridge, messages


def test_a_poisoned_row_is_isolated_and_only_stored_rows_are_acked():
    warehouse = FakeWarehouse(poisoned={"5", "11"})
    bridge, messages = write(warehouse, 16)
    assert sorted(warehouse.stored, key=int) == [str(n) for n in range(16) if n not in (5, 11)]
    for m in messages:
        assert m.outcome == (["nack"] if m.message_id in {"5", "11"} else ["ack"])
    assert (bridge.stats.stored, bridge.stats.write_failures) == (14, 2)


def test_rows_rejected_in_the_response_are_nacked():
    warehouse = FakeWarehouse(poisoned=set(), rejected={"2"})
    bridge, messages = write(warehouse, 4)
    assert [m.outcome for m in messages] == [["ack"], ["ack"], ["nack"], ["ack"]]
    assert bridge.stats.stored == 3


def test_an_unreachable_warehouse_nacks_the_batch_without_splitting_it():
    class Down(FakeWarehouse):
        calls = 0

        def insert_rows_json(self, table, rows, *, row_ids, timeout, retry):
            Down.calls += 1
            raise requests.ConnectionError("connection refused")

    bridge, messages = write(Down(poisoned=set()), 8)
    assert Down.calls == 1
    assert all(m.outcome == ["nack"] for m in messages)
    assert (bridge.stats.stored, bridge.stats.write_failures) == (0, 8)
