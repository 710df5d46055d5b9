"""The messages the bridge holds: leased while held, acked and nacked in batches.

The bridge pulls with unary Pull and manages leases itself instead of using the client
library's streaming pull: Google's Pub/Sub emulator keeps handing a killed streaming
subscriber's messages to its dead stream for a minute or more, each hand-off a delivery
attempt, but it hands messages only to a caller of Pull. A held message's lease is extended
to `LEASE_SECONDS` every `EXTEND_EVERY_SECONDS`, so a bridge that dies lets go of everything it
held within `LEASE_SECONDS`, and a live one keeps it for as long as it needs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from google.pubsub_v1.types import ReceivedMessage

from app.contract.pipeline import LOCAL_ACK_DEADLINE_SECONDS

log = logging.getLogger(__name__)

# How long a killed bridge's messages stay invisible to the next one; the local subscription's ack
# deadline is as short, for what a Pull the killed bridge left waiting was handed after its death.
LEASE_SECONDS = LOCAL_ACK_DEADLINE_SECONDS
EXTEND_EVERY_SECONDS = 3.0  # a lease is renewed while it still has 7 s to run
ACK_IDS_PER_REQUEST = 2_500  # the client library's own batch size for acks and lease changes
FLUSH_SECONDS = 0.1  # how often acks, nacks and due extensions are sent
REQUEST_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class Received:
    """A pulled message: what the writer reads of it, and ack/nack through the bridge's leases."""

    ack_id: str
    data: bytes
    message_id: str
    publish_time: datetime
    attributes: Mapping[str, str]
    delivery_attempt: int  # 0 when the subscription has no dead-letter policy
    leases: Leases = field(repr=False, compare=False)

    @classmethod
    def from_pulled(cls, received: ReceivedMessage, leases: Leases) -> Received:
        message = received.message
        return cls(
            ack_id=received.ack_id,
            data=message.data,
            message_id=message.message_id,
            publish_time=message.publish_time,
            attributes=dict(message.attributes),
            delivery_attempt=received.delivery_attempt,
            leases=leases,
        )

    def ack(self) -> None:
        self.leases.settle(self.ack_id, ack=True)

    def nack(self) -> None:
        """Hand the message back now (lease 0): Pub/Sub redelivers it or dead-letters it."""
        self.leases.settle(self.ack_id, ack=False)


class Leases:
    """Held ack ids and their lease renewals; `reserve` bounds how many are held at once.

    Pullers `reserve` room before they pull and `add` what they got; `settle` ends a message's
    lease with an ack or a nack. `flush`, called every `FLUSH_SECONDS` by `run` on a thread of
    its own, sends due lease extensions first (a late one lets a message be redelivered), then
    the acks and nacks, each in requests of up to `ACK_IDS_PER_REQUEST` ack ids. A request that
    fails is logged and not repeated: an ack that did not arrive means a redelivery (a duplicate
    row the API's reads collapse), a nack or extension that did not arrive a redelivery after
    the lease lapses.
    """

    def __init__(self, client: Any, subscription: str, max_held: int) -> None:
        self._client = client
        self._subscription = subscription
        self._max_held = max_held
        self._changed = threading.Condition()
        self._held: dict[str, float] = {}  # ack id -> when its lease was last extended (0: not yet)
        self._reserved = 0
        self._acks: list[str] = []
        self._nacks: list[str] = []
        self._stopped = threading.Event()

    def held(self) -> int:
        with self._changed:
            return len(self._held)

    def reserve(self, most: int, timeout: float) -> int:
        """Wait up to `timeout` for room; reserve and return up to `most` (0 if none came)."""
        with self._changed:
            self._changed.wait_for(lambda: self._room() > 0, timeout)
            room = min(most, self._room())
            if room <= 0:
                return 0
            self._reserved += room
            return room

    def add(self, ack_ids: Iterable[str], reserved: int) -> None:
        """Hold these pulled messages (their leases are extended at the next flush)."""
        with self._changed:
            self._reserved -= reserved
            self._held.update(dict.fromkeys(ack_ids, 0.0))
            self._changed.notify_all()

    def settle(self, ack_id: str, *, ack: bool) -> None:
        with self._changed:
            if self._held.pop(ack_id, None) is None:
                return  # settled already
            (self._acks if ack else self._nacks).append(ack_id)
            self._changed.notify_all()

    def run(self) -> None:
        """Flush every FLUSH_SECONDS until `close()`."""
        while not self._stopped.wait(FLUSH_SECONDS):
            self.flush()

    def close(self) -> None:
        """Stop `run` and send what is left to send."""
        self._stopped.set()
        self.flush()

    def flush(self) -> None:
        now = time.monotonic()
        with self._changed:
            due = [ack_id for ack_id, at in self._held.items() if now - at >= EXTEND_EVERY_SECONDS]
            self._held.update(dict.fromkeys(due, now))
            acks, self._acks = self._acks, []
            nacks, self._nacks = self._nacks, []
        self._send("extend leases of", due, LEASE_SECONDS)
        self._send("ack", acks, None)
        self._send("nack", nacks, 0)

    def _room(self) -> int:
        return self._max_held - len(self._held) - self._reserved

    def _send(self, what: str, ack_ids: list[str], deadline: int | None) -> None:
        for start in range(0, len(ack_ids), ACK_IDS_PER_REQUEST):
            batch = ack_ids[start : start + ACK_IDS_PER_REQUEST]
            try:
                if deadline is None:
                    self._client.acknowledge(
                        subscription=self._subscription,
                        ack_ids=batch,
                        retry=None,
                        timeout=REQUEST_TIMEOUT_SECONDS,
                    )
                else:
                    self._client.modify_ack_deadline(
                        subscription=self._subscription,
                        ack_ids=batch,
                        ack_deadline_seconds=deadline,
                        retry=None,
                        timeout=REQUEST_TIMEOUT_SECONDS,
                    )
            except Exception as exc:  # at least once: a lost request only means a redelivery
                log.warning("could not %s %d messages: %r", what, len(batch), exc)
