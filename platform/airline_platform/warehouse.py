"""The BigQuery side: dataset, partitioned event table, deduplicated view.

The table schema is the contract's (`table_schema()`), so the BigQuery subscription, the
API and the local bridge all write and read the same columns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from airline_platform.config import StackConfig
from app.contract.pipeline import PIPELINE
from app.contract.warehouse_schema import table_schema

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class WarehouseArgs:
    config: StackConfig
    depends_on: Sequence[pulumi.Resource]


class Warehouse(pulumi.ComponentResource):
    """Dataset, table and view; access is granted per dataset by the components that need it."""

    def __init__(self, name: str, args: WarehouseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("airline:platform:Warehouse", name, None, opts)
        cfg = args.config
        after_apis = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        labels = cfg.labels("warehouse")

        self.dataset = gcp.bigquery.Dataset(
            f"{name}-dataset",
            project=cfg.project,
            dataset_id=PIPELINE.dataset,
            location=cfg.bigquery_location,
            description="Flight events written by the Pub/Sub BigQuery subscription.",
            # Outside prod a destroy may drop the tables; in prod it must fail instead.
            delete_contents_on_destroy=not cfg.deletion_protection,
            labels=labels,
            # Pulumi refuses to delete or replace a protected resource (and the table under it).
            opts=pulumi.ResourceOptions.merge(
                after_apis, pulumi.ResourceOptions(protect=cfg.deletion_protection)
            ),
        )
        partition_expiration = (
            cfg.partition_expiration_days * DAY_MS if cfg.partition_expiration_days is not None else None
        )
        self.table = gcp.bigquery.Table(
            f"{name}-events-table",
            project=cfg.project,
            dataset_id=self.dataset.dataset_id,
            table_id=PIPELINE.table,
            description="One row per delivered flight event (redeliveries included; read the view).",
            schema=json.dumps(table_schema()),
            time_partitioning=gcp.bigquery.TableTimePartitioningArgs(
                type=PIPELINE.partition_type,
                field=PIPELINE.partition_field,
                expiration_ms=partition_expiration,
            ),
            require_partition_filter=True,
            clusterings=list(PIPELINE.clustering_fields),
            deletion_protection=cfg.deletion_protection,
            labels=labels,
            opts=pulumi.ResourceOptions(parent=self, protect=cfg.deletion_protection),
        )
        self.view = gcp.bigquery.Table(
            f"{name}-latest-view",
            project=cfg.project,
            dataset_id=self.dataset.dataset_id,
            table_id=PIPELINE.latest_view,
            description="The last published version of each event, for analysts (the API does not read it).",
            view=gcp.bigquery.TableViewArgs(
                query=PIPELINE.latest_view_sql(cfg.project), use_legacy_sql=False
            ),
            # A view holds no data and is recreated from code.
            deletion_protection=False,
            labels=labels,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.table]),
        )
        self.register_outputs(
            {"dataset": self.dataset.dataset_id, "table": self.table.table_id, "view": self.view.table_id}
        )
