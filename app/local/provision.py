"""Create the pipeline's resources on the emulators from the same `PipelineSettings` Pulumi reads."""

from __future__ import annotations

import contextlib

from google.api_core.exceptions import AlreadyExists, Conflict
from google.api_core.retry import Retry
from google.cloud import bigquery, pubsub_v1
from google.protobuf.duration_pb2 import Duration

from app.contract.pipeline import PipelineSettings
from app.contract.warehouse_schema import table_schema

TIMEOUT = 10.0
# bqemulator answers 500 on some bad requests; never let the client's default retry spin for 600 s.
BQ_RETRY = bigquery.DEFAULT_RETRY.with_timeout(TIMEOUT)
PUBSUB_RETRY = Retry(timeout=TIMEOUT)


def provision_pubsub(
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    project: str,
    settings: PipelineSettings,
) -> None:
    """Topic, dead-letter topic, the warehouse subscription and the dead-letter inspection pull."""
    topic = publisher.topic_path(project, settings.topic)
    dead_letter_topic = publisher.topic_path(project, settings.dead_letter_topic)
    for name in (topic, dead_letter_topic):
        with contextlib.suppress(AlreadyExists):
            publisher.create_topic(
                request={
                    "name": name,
                    "message_retention_duration": Duration(seconds=settings.message_retention_seconds),
                },
                timeout=TIMEOUT,
                retry=PUBSUB_RETRY,
            )
    subscriptions = [
        {
            "name": subscriber.subscription_path(project, settings.subscription),
            "topic": topic,
            "ack_deadline_seconds": settings.ack_deadline_seconds,
            "message_retention_duration": Duration(seconds=settings.message_retention_seconds),
            "dead_letter_policy": {
                "dead_letter_topic": dead_letter_topic,
                "max_delivery_attempts": settings.max_delivery_attempts,
            },
        }
        | (
            {
                "retry_policy": {
                    "minimum_backoff": Duration(seconds=settings.retry_minimum_backoff_seconds),
                    "maximum_backoff": Duration(seconds=settings.retry_maximum_backoff_seconds),
                }
            }
            if settings.has_retry_policy
            else {}  # no policy: Pub/Sub redelivers at once (see PipelineSettings.on_local_emulator)
        ),
        {
            "name": subscriber.subscription_path(project, settings.dead_letter_subscription),
            "topic": dead_letter_topic,
            "ack_deadline_seconds": settings.dead_letter_ack_deadline_seconds,
            "message_retention_duration": Duration(seconds=settings.message_retention_seconds),
        },
    ]
    for request in subscriptions:
        with contextlib.suppress(AlreadyExists):
            subscriber.create_subscription(request=request, timeout=TIMEOUT, retry=PUBSUB_RETRY)


def provision_bigquery(client: bigquery.Client, project: str, settings: PipelineSettings) -> None:
    """Dataset, the partitioned and clustered table from the contract, and the deduplicated view."""
    client.create_dataset(f"{project}.{settings.dataset}", exists_ok=True, timeout=TIMEOUT, retry=BQ_RETRY)
    table = bigquery.Table(
        f"{project}.{settings.dataset}.{settings.table}",
        schema=[bigquery.SchemaField.from_api_repr(field) for field in table_schema()],
    )
    table.time_partitioning = bigquery.TimePartitioning(
        type_=settings.partition_type, field=settings.partition_field
    )
    table.clustering_fields = list(settings.clustering_fields)
    client.create_table(table, exists_ok=True, timeout=TIMEOUT, retry=BQ_RETRY)
    view = bigquery.Table(f"{project}.{settings.dataset}.{settings.latest_view}")
    view.view_query = settings.latest_view_sql(project)
    with contextlib.suppress(Conflict):
        client.create_table(view, timeout=TIMEOUT, retry=BQ_RETRY)
