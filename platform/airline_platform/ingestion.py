"""The Pub/Sub side: ingest topic, BigQuery subscription, dead-letter topic and its IAM.

No ingest code runs in the cloud: the BigQuery subscription writes each message into the
table's columns (`use_table_schema`) plus Pub/Sub metadata (`write_metadata`). Messages that
BigQuery rejects go to the dead-letter topic after `max_delivery_attempts`; for that the
Pub/Sub service agent needs publisher on the dead-letter topic and subscriber on the source
subscription, and it needs write access on the dataset to write rows at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from airline_platform.config import StackConfig
from airline_platform.warehouse import Warehouse
from app.contract.pipeline import PIPELINE


def _seconds(value: int) -> str:
    return f"{value}s"


@dataclass(frozen=True)
class IngestionArgs:
    config: StackConfig
    warehouse: Warehouse
    depends_on: Sequence[pulumi.Resource]


class Ingestion(pulumi.ComponentResource):
    """Topic -> BigQuery subscription -> table, with dead-lettering and an inspection subscription."""

    def __init__(self, name: str, args: IngestionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("airline:platform:Ingestion", name, None, opts)
        cfg, warehouse = args.config, args.warehouse
        labels = cfg.labels("ingestion")
        after_apis = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        retention = _seconds(PIPELINE.message_retention_seconds)
        never_expire = gcp.pubsub.SubscriptionExpirationPolicyArgs(ttl="")
        # Topics and subscriptions hold undelivered messages (7 days): where the stack keeps its data
        # (prod), Pulumi refuses any update that would delete or replace them.
        keep = pulumi.ResourceOptions(protect=cfg.deletion_protection)

        # Google creates the Pub/Sub service agent; ServiceIdentity asks for it (creating it on a
        # fresh project) and gives its address, rather than a hand-formatted one that may not exist yet.
        self.pubsub_agent = gcp.projects.ServiceIdentity(
            f"{name}-pubsub-agent", project=cfg.project, service="pubsub.googleapis.com", opts=after_apis
        ).member

        self.topic = gcp.pubsub.Topic(
            f"{name}-topic",
            project=cfg.project,
            name=PIPELINE.topic,
            message_retention_duration=retention,
            labels=labels,
            opts=pulumi.ResourceOptions.merge(after_apis, keep),
        )
        self.dead_letter_topic = gcp.pubsub.Topic(
            f"{name}-dead-letter-topic",
            project=cfg.project,
            name=PIPELINE.dead_letter_topic,
            message_retention_duration=retention,
            labels=labels,
            opts=pulumi.ResourceOptions.merge(after_apis, keep),
        )
        self.dead_letter_subscription = gcp.pubsub.Subscription(
            f"{name}-dead-letter-inspect",
            project=cfg.project,
            name=PIPELINE.dead_letter_subscription,
            topic=self.dead_letter_topic.id,
            ack_deadline_seconds=cfg.ack_deadline_seconds,
            message_retention_duration=retention,
            expiration_policy=never_expire,
            labels=labels,
            opts=pulumi.ResourceOptions(parent=self, protect=cfg.deletion_protection),
        )

        # The agent must be able to write rows before the subscription is created: Pub/Sub
        # checks the table and its permissions at creation time.
        writer = gcp.bigquery.DatasetIamMember(
            f"{name}-pubsub-agent-dataset-editor",
            project=cfg.project,
            dataset_id=warehouse.dataset.dataset_id,
            role="roles/bigquery.dataEditor",
            member=self.pubsub_agent,
            opts=pulumi.ResourceOptions(parent=self),
        )
        dead_letter_publisher = gcp.pubsub.TopicIAMMember(
            f"{name}-pubsub-agent-dead-letter-publisher",
            project=cfg.project,
            topic=self.dead_letter_topic.name,
            role="roles/pubsub.publisher",
            member=self.pubsub_agent,
            opts=pulumi.ResourceOptions(parent=self),
        )
        table_ref = pulumi.Output.concat(
            warehouse.table.project, ".", warehouse.table.dataset_id, ".", warehouse.table.table_id
        )
        self.subscription = gcp.pubsub.Subscription(
            f"{name}-bigquery-subscription",
            project=cfg.project,
            name=PIPELINE.subscription,
            topic=self.topic.id,
            ack_deadline_seconds=cfg.ack_deadline_seconds,
            message_retention_duration=retention,
            expiration_policy=never_expire,
            bigquery_config=gcp.pubsub.SubscriptionBigqueryConfigArgs(
                table=table_ref,
                use_table_schema=True,
                write_metadata=True,
                # Unknown fields are a contract violation: dead-letter them, do not drop them.
                drop_unknown_fields=False,
            ),
            dead_letter_policy=gcp.pubsub.SubscriptionDeadLetterPolicyArgs(
                dead_letter_topic=self.dead_letter_topic.id,
                max_delivery_attempts=cfg.max_delivery_attempts,
            ),
            retry_policy=gcp.pubsub.SubscriptionRetryPolicyArgs(
                minimum_backoff=_seconds(cfg.retry_minimum_backoff_seconds),
                maximum_backoff=_seconds(cfg.retry_maximum_backoff_seconds),
            ),
            labels=labels,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[writer, dead_letter_publisher], protect=cfg.deletion_protection
            ),
        )
        gcp.pubsub.SubscriptionIAMMember(
            f"{name}-pubsub-agent-subscription-subscriber",
            project=cfg.project,
            subscription=self.subscription.name,
            role="roles/pubsub.subscriber",
            member=self.pubsub_agent,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {
                "topic": self.topic.name,
                "subscription": self.subscription.name,
                "dead_letter_topic": self.dead_letter_topic.name,
            }
        )
