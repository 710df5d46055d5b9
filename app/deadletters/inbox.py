"""The dead-letter inspection subscription as an operator's inbox.

Messages reach the dead-letter topic after the warehouse subscription's max delivery attempts.
Each is re-validated against the table schema with the contract's `RowMapper`, which the bridge
maps with too (one code path: the reason shown is the reason the bridge nacked it, and what
BigQuery refuses), so an operator sees *why* it does not fit, or that it fits now (after a
schema or producer fix, or if it was dead-lettered by repeated crashes rather than by its content).

Listing leases messages and then hands them straight back (ack deadline 0): nothing is removed.
Re-driving publishes the message again to the ingest topic, waits for Pub/Sub to confirm, and
only then acknowledges it on the dead-letter subscription; discarding only acknowledges.

Works on the emulator (`PUBSUB_EMULATOR_HOST`) and, with Application Default Credentials, on a
real project; the operator needs `roles/pubsub.subscriber` on the inspection subscription and
`roles/pubsub.publisher` on the topic to re-drive.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from google.api_core.exceptions import DeadlineExceeded
from google.api_core.retry import Retry
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

from app import gcp_clients
from app.contract.table_row import DoesNotFit, RowMapper

DEAD_LETTER_PREFIX = "CloudPubSubDeadLetter"
ATTEMPTS_ATTRIBUTE = "CloudPubSubDeadLetterSourceDeliveryCount"
SOURCE_ATTRIBUTE = "CloudPubSubDeadLetterSourceSubscription"
REDRIVEN_FROM_ATTRIBUTE = "redriven_from"
TIMEOUT = 30.0
RETRY = Retry(timeout=TIMEOUT)
PULL_BATCH = 1_000  # the most one pull returns
# A listing ends when a waiting pull has had nothing for this long.
QUIET_SECONDS = 5.0


@dataclass(frozen=True)
class Target:
    """Where the dead letters are and where they go back to."""

    project: str
    topic: str  # short name of the ingest topic
    subscription: str  # short name of the dead-letter inspection subscription
    source_subscription: str  # short name of the warehouse subscription (for the metadata columns)
    pubsub_emulator_host: str | None = None

    @property
    def topic_path(self) -> str:
        return PublisherClient.topic_path(self.project, self.topic)

    @property
    def subscription_path(self) -> str:
        return SubscriberClient.subscription_path(self.project, self.subscription)

    @property
    def source_subscription_path(self) -> str:
        return SubscriberClient.subscription_path(self.project, self.source_subscription)


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message and, re-validated now, why it does not fit (None: it fits)."""

    ack_id: str
    message_id: str
    publish_time: datetime
    data: bytes
    attributes: dict[str, str]
    reason: str | None

    @property
    def delivery_attempts(self) -> int | None:
        raw = self.attributes.get(ATTEMPTS_ATTRIBUTE)
        return int(raw) if raw and raw.isdigit() else None

    @property
    def fits(self) -> bool:
        return self.reason is None

    def original_attributes(self) -> dict[str, str]:
        """The producer's attributes, without the ones Pub/Sub added when dead-lettering."""
        return {k: v for k, v in self.attributes.items() if not k.startswith(DEAD_LETTER_PREFIX)}


class DeadLetterInbox:
    """List, re-drive and discard the messages on the dead-letter inspection subscription."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._subscriber = gcp_clients.subscriber_client(target.pubsub_emulator_host)
        self._publisher = gcp_clients.publisher_client(target.pubsub_emulator_host)
        self._mapper = RowMapper(target.source_subscription_path)
        self._acked: set[str] = set()

    def __enter__(self) -> DeadLetterInbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._subscriber.close()
        self._publisher.stop()

    def reason(
        self, data: bytes, message_id: str, publish_time: datetime, attributes: dict[str, str]
    ) -> str | None:
        """Why the bridge (and BigQuery) would refuse this message today; None if it fits."""
        try:
            self._mapper.to_row(data, message_id=message_id, publish_time=publish_time, attributes=attributes)
        except DoesNotFit as exc:
            return str(exc)
        return None

    @contextmanager
    def leased(self, limit: int) -> Iterator[list[DeadLetter]]:
        """Up to `limit` dead letters, leased for the block; those not acked in it are handed back."""
        letters: list[DeadLetter] = []
        try:
            while len(letters) < limit:
                # A waiting pull answers as soon as messages exist (immediate ones may come back
                # empty while some do: the emulator did so under load); QUIET_SECONDS with nothing
                # arriving ends the listing.
                try:
                    response = self._subscriber.pull(
                        subscription=self.target.subscription_path,
                        max_messages=min(PULL_BATCH, limit - len(letters)),
                        timeout=QUIET_SECONDS,
                        retry=None,
                    )
                except DeadlineExceeded:
                    break
                if not response.received_messages:
                    break
                for received in response.received_messages:
                    message = received.message
                    published = message.publish_time.astimezone(UTC)
                    attributes = dict(message.attributes)
                    letters.append(
                        DeadLetter(
                            ack_id=received.ack_id,
                            message_id=message.message_id,
                            publish_time=published,
                            data=message.data,
                            attributes=attributes,
                            reason=self.reason(message.data, message.message_id, published, attributes),
                        )
                    )
            yield letters
        finally:
            self._release(letters)

    def redrive(self, letters: Iterable[DeadLetter]) -> list[str]:
        """Publish each letter to the topic again; ack it only once the publish is confirmed."""
        letters = list(letters)
        futures = [
            self._publisher.publish(
                self.target.topic_path,
                letter.data,
                **(letter.original_attributes() | {REDRIVEN_FROM_ATTRIBUTE: letter.message_id}),
            )
            for letter in letters
        ]
        new_ids = [future.result(timeout=TIMEOUT) for future in futures]
        self.discard(letters)
        return new_ids

    def discard(self, letters: Iterable[DeadLetter]) -> None:
        """Acknowledge: the letters leave the dead-letter subscription for good."""
        letters = list(letters)
        for start in range(0, len(letters), PULL_BATCH):
            self._subscriber.acknowledge(
                subscription=self.target.subscription_path,
                ack_ids=[letter.ack_id for letter in letters[start : start + PULL_BATCH]],
                timeout=TIMEOUT,
                retry=RETRY,
            )
        self._acked.update(letter.ack_id for letter in letters)

    def _release(self, letters: list[DeadLetter]) -> None:
        """Hand back what was not acked, at once (ack deadline 0), so it stays listed."""
        unacked = [letter.ack_id for letter in letters if letter.ack_id not in self._acked]
        for start in range(0, len(unacked), PULL_BATCH):
            self._subscriber.modify_ack_deadline(
                subscription=self.target.subscription_path,
                ack_ids=unacked[start : start + PULL_BATCH],
                ack_deadline_seconds=0,
                timeout=TIMEOUT,
                retry=RETRY,
            )
