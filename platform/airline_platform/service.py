"""The API on Cloud Run: the promoted image, deployed by digest, with its own identity.

The image is not built here. CI builds it once, scans it and pushes it to the delivery
project's registry; every stack deploys that digest from its `image` config, so prod runs the
bytes that passed dev and staging (docs/delivery.md). A digest rather than a tag makes every
image change a new revision and makes what runs exactly what was tested. The service account
can read the dataset, run query jobs (the only project-level grant: BigQuery has no narrower
scope for jobs) and publish to the ingest topic - nothing more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from airline_platform.config import StackConfig
from airline_platform.ingestion import Ingestion
from airline_platform.warehouse import Warehouse
from app.contract.pipeline import PIPELINE
from app.contract.service_env import pipeline_values, render_env

SERVICE_NAME = "flight-api"
# Created once per environment by the bootstrap (platform/bootstrap), which lets only that
# environment's deployer act as it: the deployer creates no service account and holds no
# project-wide serviceAccountUser.
RUNTIME_ACCOUNT_ID = f"{SERVICE_NAME}-runtime"
CONTAINER_PORT = 8080
HEALTH_PATH = "/health"


def service_settings(cfg: StackConfig) -> dict[str, object]:
    """The API settings this stack chooses, as fields of the service's environment interface."""
    return {
        "project_id": cfg.project,
        **pipeline_values(PIPELINE),
        # Every environment verifies the publisher's Google ID token: no anonymous publishing.
        "publish_auth": "google-id-token",
        "publishers": cfg.publishers,
        # Without allUsers every request has passed Cloud Run's invoker check (app/api/auth.py).
        "trust_cloud_run_iam": not cfg.allow_public_invoker,
        "max_bytes_billed": cfg.max_bytes_billed,
        "rate_limit_per_minute": cfg.rate_limit_per_minute,
        "synthetic_publishers": cfg.synthetic_publishers,
    }


@dataclass(frozen=True)
class ApiServiceArgs:
    config: StackConfig
    warehouse: Warehouse
    ingestion: Ingestion
    depends_on: Sequence[pulumi.Resource]


class ApiService(pulumi.ComponentResource):
    """Cloud Run service running the configured image, its service account and IAM."""

    def __init__(self, name: str, args: ApiServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("airline:platform:ApiService", name, None, opts)
        cfg, warehouse, ingestion, depends_on = args.config, args.warehouse, args.ingestion, args.depends_on
        labels = cfg.labels("api")

        self.account_email = f"{RUNTIME_ACCOUNT_ID}@{cfg.project}.iam.gserviceaccount.com"
        member = f"serviceAccount:{self.account_email}"
        grants = [
            gcp.bigquery.DatasetIamMember(
                f"{name}-dataset-viewer",
                project=cfg.project,
                dataset_id=warehouse.dataset.dataset_id,
                role="roles/bigquery.dataViewer",
                member=member,
                opts=pulumi.ResourceOptions(parent=self),
            ),
            gcp.projects.IAMMember(
                f"{name}-bigquery-job-user",
                project=cfg.project,
                role="roles/bigquery.jobUser",
                member=member,
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
            ),
            gcp.pubsub.TopicIAMMember(
                f"{name}-topic-publisher",
                project=cfg.project,
                topic=ingestion.topic.name,
                role="roles/pubsub.publisher",
                member=member,
                opts=pulumi.ResourceOptions(parent=self),
            ),
            # Readiness reads the topic (pubsub.topics.get), which publisher does not grant.
            gcp.pubsub.TopicIAMMember(
                f"{name}-topic-viewer",
                project=cfg.project,
                topic=ingestion.topic.name,
                role="roles/pubsub.viewer",
                member=member,
                opts=pulumi.ResourceOptions(parent=self),
            ),
        ]

        # The image the service runs; its project's Cloud Run service agent pulls it from the
        # delivery registry, where the bootstrap program grants it read access.
        self.image = pulumi.Output.from_input(cfg.image)
        self.service = gcp.cloudrunv2.Service(
            f"{name}-service",
            project=cfg.project,
            location=cfg.region,
            name=SERVICE_NAME,
            ingress=cfg.ingress,
            deletion_protection=cfg.deletion_protection,
            labels=labels,
            template=gcp.cloudrunv2.ServiceTemplateArgs(
                service_account=self.account_email,
                labels=labels,
                scaling=gcp.cloudrunv2.ServiceTemplateScalingArgs(
                    min_instance_count=cfg.min_instances, max_instance_count=cfg.max_instances
                ),
                containers=[
                    gcp.cloudrunv2.ServiceTemplateContainerArgs(
                        image=self.image,
                        ports=gcp.cloudrunv2.ServiceTemplateContainerPortsArgs(container_port=CONTAINER_PORT),
                        # Cloud Run sets PORT itself; these tell the app where its data lives, who
                        # may publish, and what a query and a client may cost.
                        envs=[
                            gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(name=k, value=v)
                            for k, v in render_env(service_settings(cfg)).items()
                        ],
                        resources=gcp.cloudrunv2.ServiceTemplateContainerResourcesArgs(
                            limits={"cpu": cfg.cpu, "memory": cfg.memory},
                            startup_cpu_boost=True,
                            cpu_idle=True,
                        ),
                        startup_probe=gcp.cloudrunv2.ServiceTemplateContainerStartupProbeArgs(
                            http_get=gcp.cloudrunv2.ServiceTemplateContainerStartupProbeHttpGetArgs(
                                path=HEALTH_PATH
                            ),
                            period_seconds=2,
                            timeout_seconds=2,
                            failure_threshold=15,
                        ),
                        liveness_probe=gcp.cloudrunv2.ServiceTemplateContainerLivenessProbeArgs(
                            http_get=gcp.cloudrunv2.ServiceTemplateContainerLivenessProbeHttpGetArgs(
                                path=HEALTH_PATH
                            ),
                            period_seconds=30,
                            timeout_seconds=5,
                            failure_threshold=3,
                        ),
                    )
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*depends_on, *grants]),
        )

        # Cloud Run refuses a caller without run.invoker before the app sees it: publishers need it too.
        invokers = list(dict.fromkeys([*cfg.invoker_members, *cfg.publishers]))
        if cfg.allow_public_invoker:
            invokers.append("allUsers")
        for invoker in invokers:
            gcp.cloudrunv2.ServiceIamMember(
                f"{name}-invoker-{invoker}",
                project=cfg.project,
                location=cfg.region,
                name=self.service.name,
                role="roles/run.invoker",
                member=invoker,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"url": self.service.uri, "image": self.image})
