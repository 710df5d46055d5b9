"""The bridge worker: what a BigQuery subscription does in the cloud, done by a local process.

Puller threads call Pub/Sub's unary Pull (several: the emulator answers each caller at a
limited rate) and feed one queue; writer threads insert batches with the message id as insert
id and ack a message only after its row was accepted. The bridge keeps its own leases
(`Leases`) rather than the client library's streaming pull: Google's Pub/Sub emulator goes on
handing a killed streaming subscriber's messages to its dead stream for a minute or more, each
time spending a delivery attempt, whereas a killed bridge's pulled messages come back as soon as
their 10 s lease lapses (docs/ingest.md).

What happens to a message:

- it does not fit the table (`table_row.DoesNotFit`) or the warehouse refuses its row: **nack**;
  Pub/Sub redelivers it and, after the subscription's max delivery attempts, moves it to the
  dead-letter topic;
- the warehouse is away, slow, rate-limited or unwell, or the table is missing, forbidden or of
  the wrong shape: the message is **held**. Its lease is extended for as long as it is held, so
  no delivery attempt is spent; the writer retries with jittered exponential backoff and reports
  the table's state (the cloud's subscription states) until the write succeeds. The pullers stop
  pulling while `max_held` messages are held, so memory stays flat however long the outage;
- a pull that fails (the subscription deleted, the emulator away) is retried with backoff; the
  bridge never stops on its own;
- `stop()` drains: pulling stops, queued and in-flight batches are written for up to
  `drain_seconds`, and only what still could not be stored then is nacked.

Nothing is acked that was not stored; a crash at any moment only causes redelivery, and the
API's reads, which keep one row per event id, make the duplicates harmless.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC
from typing import Any

from google.api_core.retry import exponential_sleep_generator
from google.cloud import pubsub_v1

from app.bridge.leases import Leases, Received
from app.bridge.warehouse import Table, TableState, WarehouseProblem
from app.contract.table_row import DoesNotFit, RowMapper

log = logging.getLogger(__name__)

# A single row a healthy server refuses this many times in a row is taken for a bad row.
BAD_ROW_STRIKES = 3
MAX_MESSAGES_PER_PULL = 1_000  # the most one Pull request may ask for
# The emulator answers a Pull with nothing about a second before this deadline when it has nothing.
PULL_TIMEOUT_SECONDS = 5.0
PULL_BACKOFF_SECONDS = (1.0, 30.0)  # first and longest wait before a failed pull is retried

Item = tuple[dict[str, Any], Received]


@dataclass
class BridgeStats:
    """Counters since this process started, and the table's state as the cloud would report it."""

    stored: int = 0  # rows accepted by the warehouse (redeliveries included)
    not_fitting: int = 0  # nacked because the message does not fit the table schema
    refused: int = 0  # nacked because the warehouse refused the row
    released: int = 0  # handed back unstored at shutdown (nacked, redelivered later)
    failed_writes: int = 0  # insert requests that failed and were retried
    failed_pulls: int = 0  # pull requests that failed and were retried
    # How close a valid message came to the dead-letter topic: the highest delivery attempt
    # of any stored message (0 without a dead-letter policy, which is what numbers attempts).
    highest_attempt_stored: int = 0
    state: str = TableState.ACTIVE.value
    detail: str = ""
    state_since: float = field(default_factory=time.time)
    first_stored_at: float | None = None
    last_stored_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)
            if counts.get("stored"):
                now = time.monotonic()
                self.first_stored_at = self.first_stored_at or now
                self.last_stored_at = now

    def saw_stored_attempt(self, attempt: int) -> None:
        with self._lock:
            self.highest_attempt_stored = max(self.highest_attempt_stored, attempt)

    def set_state(self, state: TableState, detail: str = "") -> None:
        with self._lock:
            if state.value != self.state:
                log_state = log.info if state is TableState.ACTIVE else log.warning
                log_state("table state %s -> %s %s", self.state, state.value, detail)
                self.state, self.state_since = state.value, time.time()
            self.detail = detail

    def rows_per_second(self) -> float:
        if not self.first_stored_at or not self.last_stored_at or self.last_stored_at == self.first_stored_at:
            return 0.0
        return self.stored / (self.last_stored_at - self.first_stored_at)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            data = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        data["rows_per_second"] = round(self.rows_per_second(), 1)
        return data


@dataclass
class _Part:
    """Some messages of a batch, written together; `strikes` counts refusals of a single row."""

    items: list[Item]
    strikes: int = 0


class Bridge:
    """Drains one subscription into one table; `start()`, then `stop()`."""

    def __init__(
        self,
        *,
        subscriber_factory: Callable[[], pubsub_v1.SubscriberClient],
        table: Table,
        subscription_path: str,
        pullers: int = 4,
        writers: int = 2,
        max_held: int = 10_000,
        batch_rows: int = 5_000,
        batch_bytes: int = 8_000_000,
        batch_latency_seconds: float = 0.2,
        max_backoff_seconds: float = 10.0,
    ) -> None:
        self._subscriber_factory = subscriber_factory
        self._table = table
        self._subscription_path = subscription_path
        self._puller_count = pullers
        self._writer_count = writers
        self._batch_rows = batch_rows
        self._batch_bytes = batch_bytes
        self._batch_latency = batch_latency_seconds
        self._max_backoff = max_backoff_seconds
        self._mapper = RowMapper(subscription_path)
        self._lease_client = subscriber_factory()
        self._leases = Leases(self._lease_client, subscription_path, max_held)
        self._queue: queue.Queue[Item] = queue.Queue()
        self._draining = threading.Event()  # pulling stops; what a pull still brings is nacked
        self._abandon = threading.Event()  # writers hand back what they hold instead of retrying
        self._stopped = threading.Event()
        self._writers: list[threading.Thread] = []
        self._pullers: list[threading.Thread] = []
        self._leaser = threading.Thread(target=self._leases.run, name="bridge-leases", daemon=True)
        self.stats = BridgeStats()

    # Lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._leaser.start()
        for n in range(self._writer_count):
            self._writers.append(self._thread(self._write_loop, f"bridge-writer-{n}"))
        for n in range(self._puller_count):
            self._pullers.append(self._thread(self._pull_loop, f"bridge-puller-{n}"))

    def held(self) -> int:
        """Messages pulled and not yet acked or nacked (being mapped, queued or being written)."""
        return self._leases.held()

    def stop(self, drain_seconds: float = 10.0) -> None:
        """Drain: write what was received for up to `drain_seconds`, hand back the rest, close."""
        self._draining.set()
        deadline = time.monotonic() + drain_seconds
        while self.held() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._abandon.set()
        self._stopped.set()
        for thread in self._writers + self._pullers:  # a puller ends when its last pull returns
            thread.join(timeout=PULL_TIMEOUT_SECONDS + 5)
        while True:
            try:
                self._queue.get_nowait()[1].nack()
            except queue.Empty:
                break
            self.stats.add(released=1)
        self._leases.close()
        self._leaser.join(timeout=10)
        self._lease_client.close()

    def _thread(self, target: Callable[[], None], name: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread

    # Receiving -----------------------------------------------------------------------------
    def _pull_loop(self) -> None:
        """Pull while there is room under `max_held`; a failing pull is retried with backoff."""
        client = self._subscriber_factory()
        backoff: Iterator[float] | None = None
        try:
            while not self._draining.is_set():
                room = self._leases.reserve(MAX_MESSAGES_PER_PULL, timeout=0.5)
                if not room:
                    continue
                try:
                    response = client.pull(
                        subscription=self._subscription_path,
                        max_messages=room,
                        retry=None,
                        timeout=PULL_TIMEOUT_SECONDS,
                    )
                except Exception as exc:  # the subscription deleted, the emulator away, or a bug
                    self._leases.add((), reserved=room)
                    self.stats.add(failed_pulls=1)
                    backoff = backoff or exponential_sleep_generator(*PULL_BACKOFF_SECONDS)
                    delay = next(backoff)
                    log.warning("pull failed (%r); retrying in %.1f s", exc, delay)
                    self._draining.wait(delay)
                    continue
                backoff = None
                received = [Received.from_pulled(m, self._leases) for m in response.received_messages]
                self._leases.add([message.ack_id for message in received], reserved=room)
                for message in received:
                    try:
                        self._on_message(message)
                    except Exception:  # a bug must not strand a held message: hand it back, go on
                        log.exception("receiving message %s failed unexpectedly", message.message_id)
                        message.nack()
        finally:
            client.close()

    def _on_message(self, message: Received) -> None:
        if self._draining.is_set():
            message.nack()
            return
        try:
            row = self._mapper.to_row(
                message.data,
                message_id=message.message_id,
                publish_time=message.publish_time.astimezone(UTC),
                attributes=message.attributes,
            )
        except DoesNotFit as exc:
            log.warning(
                "message %s does not fit the table (delivery attempt %s): %s",
                message.message_id,
                message.delivery_attempt,
                exc,
            )
            self.stats.add(not_fitting=1)
            message.nack()
            return
        self._queue.put((row, message))

    # Writing -------------------------------------------------------------------------------
    def _next_batch(self) -> list[Item]:
        """Up to batch_rows/batch_bytes items, waiting at most batch_latency after the first."""
        try:
            first = self._queue.get(timeout=0.1)
        except queue.Empty:
            return []
        batch, size = [first], len(first[1].data)
        deadline = time.monotonic() + self._batch_latency
        while len(batch) < self._batch_rows and size < self._batch_bytes:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            batch.append(item)
            size += len(item[1].data)
        return batch

    def _write_loop(self) -> None:
        while not self._stopped.is_set():
            batch = self._next_batch()
            if not batch:
                continue
            try:
                self._deliver(batch)
            except Exception:  # a bug must not strand held messages: hand them back and go on
                log.exception("writing a batch of %d rows failed unexpectedly", len(batch))
                for _, message in batch:
                    message.nack()

    def _deliver(self, batch: list[Item]) -> None:
        """Store every row or nack the ones the warehouse refuses; hold the rest through any outage."""
        parts = deque([_Part(batch)])
        backoff = exponential_sleep_generator(0.5, self._max_backoff)
        while parts:
            if self._abandon.is_set():  # shutting down and the warehouse still will not take them
                left = [message for part in parts for _, message in part.items]
                for message in left:
                    message.nack()
                self.stats.add(released=len(left))
                return
            part = parts.popleft()
            rows = [row for row, _ in part.items]
            try:
                result = self._table.insert(rows, [message.message_id for _, message in part.items])
            except WarehouseProblem as problem:
                self.stats.add(failed_writes=1)
                if problem.state is not TableState.UNAVAILABLE:
                    self.stats.set_state(problem.state, problem.detail)
                # An unclear failure: the probe tells whether the server and table are fine (bqemulator
                # even resets the connection for a missing table, so the state comes from the probe).
                elif self._table_answers() and problem.row_suspect:
                    if len(part.items) > 1:  # the server is fine, so some row is not: halve to find it
                        middle = len(part.items) // 2
                        parts.extendleft([_Part(part.items[middle:]), _Part(part.items[:middle])])
                        continue
                    part.strikes += 1
                    if part.strikes >= BAD_ROW_STRIKES:
                        self._refuse(part.items[0][1], f"warehouse refused the row: {problem.detail}")
                        continue
                parts.appendleft(part)
                self._abandon.wait(next(backoff))
                continue
            self.stats.set_state(TableState.ACTIVE)
            backoff = exponential_sleep_generator(0.5, self._max_backoff)
            for index, reason in result.refused.items():
                self._refuse(part.items[index][1], reason)
            if result.retry:
                parts.append(_Part([part.items[i] for i in result.retry]))
            not_stored = set(result.refused) | set(result.retry)
            for index, (_, message) in enumerate(part.items):
                if index not in not_stored:
                    message.ack()
                    self.stats.saw_stored_attempt(message.delivery_attempt)
            self.stats.add(stored=len(part.items) - len(not_stored))

    def _table_answers(self) -> bool:
        """Probe the table; record its state. True if it exists, answers and fits."""
        try:
            self._table.probe()
        except WarehouseProblem as problem:
            self.stats.set_state(problem.state, problem.detail)
            return False
        self.stats.set_state(TableState.ACTIVE)
        return True

    def _refuse(self, message: Received, reason: str) -> None:
        log.warning(
            "warehouse refused message %s (delivery attempt %s): %s",
            message.message_id,
            message.delivery_attempt,
            reason,
        )
        self.stats.add(refused=1)
        message.nack()
