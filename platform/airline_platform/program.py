"""The whole stack: one call wires the components in dependency order and returns the outputs."""

from __future__ import annotations

from typing import Any

from airline_platform.apis import ProjectApis, ProjectApisArgs
from airline_platform.config import StackConfig
from airline_platform.ingestion import Ingestion, IngestionArgs
from airline_platform.monitoring.component import Monitoring, MonitoringArgs
from airline_platform.service import HEALTH_PATH, ApiService, ApiServiceArgs
from airline_platform.warehouse import Warehouse, WarehouseArgs


def build(cfg: StackConfig) -> dict[str, Any]:
    """Create every resource of one environment; returns what `pulumi stack output` shows."""
    apis = ProjectApis("apis", ProjectApisArgs(cfg)).services
    warehouse = Warehouse("warehouse", WarehouseArgs(cfg, depends_on=apis))
    ingestion = Ingestion("ingestion", IngestionArgs(cfg, warehouse, depends_on=apis))
    api = ApiService("api", ApiServiceArgs(cfg, warehouse, ingestion, depends_on=apis))
    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            cfg,
            service=api.service,
            health_path=HEALTH_PATH,
            subscription=ingestion.subscription,
            dead_letter_subscription=ingestion.dead_letter_subscription,
            depends_on=apis,
        ),
    )
    return {
        "project": cfg.project,
        "service_url": api.service.uri,
        "image": api.image,
        "service_account": api.account_email,
        "topic": ingestion.topic.name,
        "subscription": ingestion.subscription.name,
        "dead_letter_topic": ingestion.dead_letter_topic.name,
        "dead_letter_subscription": ingestion.dead_letter_subscription.name,
        "dataset": warehouse.dataset.dataset_id,
        "table": warehouse.table.table_id,
        "view": warehouse.view.table_id,
        "dashboard": monitoring.dashboard.id,
        "uptime_check": monitoring.uptime_check.uptime_check_id,
        "slos": {key: slo.name for key, slo in monitoring.slos.items()},
        # What `make conformance` reads back from the project (airline_platform/conformance.py).
        "alert_policies": {key: policy.name for key, policy in monitoring.alert_policies.items()},
        "log_metrics": [metric.name for metric in monitoring.log_metrics.values()],
    }
