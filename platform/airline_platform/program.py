"""The whole stack: one call wires the components in dependency order and returns the outputs."""

from __future__ import annotations

import pulumi

from airline_platform.apis import ProjectApis
from airline_platform.config import StackConfig
from airline_platform.ingestion import Ingestion
from airline_platform.service import ApiService
from airline_platform.warehouse import Warehouse


def build(cfg: StackConfig) -> dict[str, pulumi.Output]:
    """Create every resource of one environment; returns what `pulumi stack output` shows."""
    apis = ProjectApis("apis", cfg).services
    warehouse = Warehouse("warehouse", cfg, depends_on=apis)
    ingestion = Ingestion("ingestion", cfg, warehouse, depends_on=apis)
    api = ApiService("api", cfg, warehouse, ingestion, depends_on=apis)
    return {
        "service_url": api.service.uri,
        "image": api.image,
        "service_account": api.account.email,
        "topic": ingestion.topic.name,
        "subscription": ingestion.subscription.name,
        "dead_letter_topic": ingestion.dead_letter_topic.name,
        "dead_letter_subscription": ingestion.dead_letter_subscription.name,
        "dataset": warehouse.dataset.dataset_id,
        "table": warehouse.table.table_id,
        "view": warehouse.view.table_id,
    }
