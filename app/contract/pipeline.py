"""Names and tuning of the pipeline's resources, shared by the Pulumi program and the local stack.

Both targets build the same topic, dead-letter topic, subscriptions, dataset, table and
view from these settings, so local runs exercise the cloud's configuration. Pulumi stack
configuration may override the tuning per environment; the defaults live here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from app.contract.synthetic import REAL_ROWS_SQL

# Pub/Sub accepts 5-100 delivery attempts; see PipelineSettings.on_local_emulator() for why 20 locally.
LOCAL_MAX_DELIVERY_ATTEMPTS = 20
# The local bridge's lease (app/bridge/leases.py LEASE_SECONDS); Pub/Sub's minimum.
LOCAL_ACK_DEADLINE_SECONDS = 10


@dataclass(frozen=True)
class PipelineSettings:
    """What the ingest path and the warehouse are called and how they behave."""

    topic: str = "flight-events"
    dead_letter_topic: str = "flight-events-dead-letter"
    # The subscription that writes into the warehouse (a BigQuery subscription in the cloud,
    # a pull subscription drained by the bridge worker locally).
    subscription: str = "flight-events-to-warehouse"
    # A pull subscription on the dead-letter topic, so operators can inspect what failed.
    dead_letter_subscription: str = "flight-events-dead-letter-inspect"
    ack_deadline_seconds: int = 60
    # The inspection subscription's: the dead-letter tool holds what it lists while it works.
    # (The cloud stacks use ack_deadline_seconds for both; only the local one shortens that.)
    dead_letter_ack_deadline_seconds: int = 60
    max_delivery_attempts: int = 5
    retry_minimum_backoff_seconds: int = 10
    retry_maximum_backoff_seconds: int = 600
    message_retention_seconds: int = 7 * 24 * 3600

    dataset: str = "airline_analytics"
    table: str = "flight_events"
    latest_view: str = "flight_events_latest"
    partition_field: str = "event_time"
    partition_type: str = "DAY"
    clustering_fields: tuple[str, ...] = ("carrier", "origin", "destination")

    def on_local_emulator(self) -> PipelineSettings:
        """The local emulator's pipeline: no retry policy, 20 delivery attempts instead of 5, 10 s leases.

        Local only; the cloud keeps the settings above. Measured on Google's emulator
        (cloud-pubsub-emulator 0.8.20):

        - with a retry policy it sometimes stops redelivering for minutes, both nacked messages
          (6 poison messages, 10-600 s: all dead-lettered in 84-93 s in 5 of 8 runs, none after
          4-5 minutes in 3) and messages whose subscriber was killed, while without one every
          run redelivered everything and dead-lettered a message nacked on every delivery
          within a second;
        - every crash of the bridge costs what it held one delivery attempt (and, with the
          streaming pull it used to have, several: two SIGKILLs dead-lettered a valid event with
          5 attempts). The cloud's BigQuery subscription has no process to kill, so only the
          local stand-in needs the headroom: with 20 a valid message survives 19 crashes (the
          chaos test's stored messages reach attempt 3). With 100 (the most Pub/Sub allows)
          poison messages took over 90 s to get through their redeliveries behind a backlog.

        The bridge never nacks a message that fits, so only poison messages see the difference.
        `retry_maximum_backoff_seconds == 0` means no policy.

        The ack deadline is the bridge's lease, 10 s: the emulator hands new messages to a Pull
        that a killed bridge left waiting, and they come back only when that first deadline
        lapses (with 60 s a killed bridge's messages came back 50-60 s later; see docs/ingest.md).
        """
        return replace(
            self,
            ack_deadline_seconds=LOCAL_ACK_DEADLINE_SECONDS,
            retry_minimum_backoff_seconds=0,
            retry_maximum_backoff_seconds=0,
            max_delivery_attempts=LOCAL_MAX_DELIVERY_ATTEMPTS,
        )

    @property
    def has_retry_policy(self) -> bool:
        return self.retry_maximum_backoff_seconds > 0

    def latest_view_sql(self, project: str) -> str:
        """The analysts' view: one row per event id, the last one published, synthetic events left out.

        Redeliveries of a message carry the same payload, so partitioning the window by
        (event_id, event_time) deduplicates them while still letting BigQuery push an
        `event_time` filter down to the table's partitions (`require_partition_filter`).
        """
        return (
            f"SELECT * EXCEPT (row_rank) FROM ("  # noqa: S608 - identifiers from settings, no user input
            f" SELECT *, ROW_NUMBER() OVER ("
            f"PARTITION BY event_id, {self.partition_field} ORDER BY publish_time DESC) AS row_rank"
            f" FROM `{project}.{self.dataset}.{self.table}` WHERE {REAL_ROWS_SQL}"
            f") WHERE row_rank = 1"
        )


PIPELINE = PipelineSettings()
