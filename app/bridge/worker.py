"""The bridge worker: what a BigQuery subscription does in the cloud, done by a local process.

Several streaming pulls feed one queue (the Pub/Sub emulator paces each stream at about
1,950 messages/s, so throughput needs more than one); writer threads insert batches with the
message id as insert id and ack a message only after its row was accepted. A message that does
not fit the table, or whose write failed, is nacked: Pub/Sub redelivers it and, after the
subscription's max delivery attempts, moves it to the dead-letter topic. Nothing is acked that
was not stored.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import requests
from google.api_core.exceptions import GoogleAPICallError, GoogleAPIError, RetryError
from google.cloud import bigquery, pubsub_v1
from google.cloud.pubsub_v1.subscriber.message import Message

from app.bridge.mapping import DoesNotFit, RowMapper

log = logging.getLogger(__name__)


@dataclass
class BridgeStats:
    """Counters since start; `stored` counts rows accepted by the warehouse (redeliveries included)."""

    stored: int = 0
    not_fitting: int = 0
    write_failures: int = 0
    first_stored_at: float | None = None
    last_stored_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, *, stored: int = 0, not_fitting: int = 0, write_failures: int = 0) -> None:
        with self._lock:
            self.stored += stored
            self.not_fitting += not_fitting
            self.write_failures += write_failures
            if stored:
                now = time.monotonic()
                self.first_stored_at = self.first_stored_at or now
                self.last_stored_at = now

    def rows_per_second(self) -> float:
        if not self.first_stored_at or not self.last_stored_at or self.last_stored_at == self.first_stored_at:
            return 0.0
        return self.stored / (self.last_stored_at - self.first_stored_at)


class Bridge:
    """Drains one subscription into one table; `start()`, then `stop()` for a clean shutdown."""

    def __init__(
        self,
        *,
        subscriber_factory: Callable[[], pubsub_v1.SubscriberClient],
        bigquery_client: bigquery.Client,
        subscription_path: str,
        table_id: str,
        streams: int = 4,
        writers: int = 2,
        max_messages_per_stream: int = 2_000,
        batch_size: int = 1_000,
        batch_latency_seconds: float = 0.2,
        insert_timeout_seconds: float = 30.0,
    ) -> None:
        self._subscriber_factory = subscriber_factory
        self._bigquery = bigquery_client
        self._subscription_path = subscription_path
        self._table_id = table_id
        self._streams = streams
        self._writers = writers
        self._flow_control = pubsub_v1.types.FlowControl(max_messages=max_messages_per_stream)
        self._batch_size = batch_size
        self._batch_latency = batch_latency_seconds
        self._insert_timeout = insert_timeout_seconds
        # One bounded retry per insert: bqemulator answers 500 on a bad row and the client's
        # default retry would then spin for 600 s.
        self._retry = bigquery.DEFAULT_RETRY.with_timeout(min(5.0, insert_timeout_seconds))
        self._mapper = RowMapper(subscription_path)
        self._queue: queue.Queue[tuple[dict[str, Any], Message]] = queue.Queue()
        self._draining = threading.Event()
        self._stopped = threading.Event()
        self._clients: list[pubsub_v1.SubscriberClient] = []
        self._pulls: list[Any] = []
        self._threads: list[threading.Thread] = []
        self.error: BaseException | None = None
        self.stats = BridgeStats()

    def start(self) -> None:
        for n in range(self._writers):
            thread = threading.Thread(target=self._write_loop, name=f"bridge-writer-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        for _ in range(self._streams):
            client = self._subscriber_factory()
            pull = client.subscribe(
                self._subscription_path, self._on_message, flow_control=self._flow_control
            )
            pull.add_done_callback(self._on_pull_done)
            self._clients.append(client)
            self._pulls.append(pull)

    def check(self) -> None:
        """Raise if a streaming pull ended on its own (e.g. the emulator went away)."""
        if self.error is not None:
            raise RuntimeError(f"bridge streaming pull failed: {self.error!r}") from self.error

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the batches being written, nack what is still queued, then close the streams."""
        self._draining.set()  # from now on deliveries are nacked, not queued
        self._stopped.set()  # writers exit after their current batch
        for thread in self._threads:
            thread.join(timeout=timeout)
        while True:  # not stored, so not acked: redeliver now rather than after the ack deadline
            try:
                self._queue.get_nowait()[1].nack()
            except queue.Empty:
                break
        for pull in self._pulls:
            pull.cancel()
        for pull in self._pulls:
            # A stream that had already failed is reported by check(); stopping goes on regardless.
            with contextlib.suppress(Exception):
                pull.result(timeout=timeout)
        for client in self._clients:
            client.close()

    def _on_pull_done(self, pull: Any) -> None:
        if not self._stopped.is_set() and pull.exception() is not None:
            self.error = pull.exception()
            log.error("streaming pull ended: %r", self.error)

    def _on_message(self, message: Message) -> None:
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
                "message %s does not fit the table (attempt %s): %s",
                message.message_id,
                message.delivery_attempt,
                exc,
            )
            self.stats.add(not_fitting=1)
            message.nack()
            return
        self._queue.put((row, message))

    def _write_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                batch = [self._queue.get(timeout=0.1)]
            except queue.Empty:
                continue
            deadline = time.monotonic() + self._batch_latency
            while len(batch) < self._batch_size:
                try:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            self._write(batch)

    def _write(self, batch: list[tuple[dict[str, Any], Message]]) -> None:
        """Insert, ack what was stored, nack what was not; halve a batch the server refused whole."""
        try:
            errors = self._bigquery.insert_rows_json(
                self._table_id,
                [row for row, _ in batch],
                row_ids=[message.message_id for _, message in batch],
                timeout=self._insert_timeout,
                retry=self._retry,
            )
        except (GoogleAPIError, requests.RequestException) as exc:
            cause = exc.cause if isinstance(exc, RetryError) else exc
            if isinstance(cause, GoogleAPICallError) and len(batch) > 1:  # the server refused the batch
                middle = len(batch) // 2
                self._write(batch[:middle])
                self._write(batch[middle:])
                return
            log.warning("insert of %d rows failed: %r", len(batch), exc)
            self.stats.add(write_failures=len(batch))
            for _, message in batch:
                message.nack()
            return
        rejected = {int(e["index"]) for e in errors}
        for index, (_, message) in enumerate(batch):
            if index in rejected:
                message.nack()
            else:
                message.ack()
        if rejected:
            log.warning("warehouse rejected %d rows: %s", len(rejected), errors[:3])
        self.stats.add(stored=len(batch) - len(rejected), write_failures=len(rejected))
