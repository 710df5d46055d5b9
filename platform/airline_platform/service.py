"""The API on Cloud Run: image in Artifact Registry, deployed by digest, with its own identity.

Deploying `repo_digest` rather than a tag makes every image change a new revision and makes
what runs exactly what was built. The service account can read the dataset, run query jobs
(the only project-level grant: BigQuery has no narrower scope for jobs) and publish to the
ingest topic - nothing more.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker
import pulumi_gcp as gcp

from airline_platform.config import StackConfig
from airline_platform.ingestion import Ingestion
from airline_platform.warehouse import Warehouse
from app.contract.pipeline import PIPELINE
from app.contract.service_env import pipeline_values, render_env

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICE_NAME = "flight-api"
REPOSITORY_ID = "airline"
CONTAINER_PORT = 8080
HEALTH_PATH = "/healthz"


@dataclass(frozen=True)
class ApiServiceArgs:
    config: StackConfig
    warehouse: Warehouse
    ingestion: Ingestion
    depends_on: Sequence[pulumi.Resource]


class ApiService(pulumi.ComponentResource):
    """Artifact Registry repository, image build and push, Cloud Run service and its IAM."""

    def __init__(self, name: str, args: ApiServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("airline:platform:ApiService", name, None, opts)
        cfg, warehouse, ingestion, depends_on = args.config, args.warehouse, args.ingestion, args.depends_on
        labels = cfg.labels("api")
        after_apis = pulumi.ResourceOptions(parent=self, depends_on=list(depends_on))

        self.account = gcp.serviceaccount.Account(
            f"{name}-account",
            project=cfg.project,
            account_id=f"{SERVICE_NAME}-runtime",
            display_name="Flight API (Cloud Run runtime identity)",
            opts=after_apis,
        )
        member = pulumi.Output.concat("serviceAccount:", self.account.email)
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
                opts=pulumi.ResourceOptions(parent=self),
            ),
            gcp.pubsub.TopicIAMMember(
                f"{name}-topic-publisher",
                project=cfg.project,
                topic=ingestion.topic.name,
                role="roles/pubsub.publisher",
                member=member,
                opts=pulumi.ResourceOptions(parent=self),
            ),
        ]

        self.repository = gcp.artifactregistry.Repository(
            f"{name}-images",
            project=cfg.project,
            location=cfg.region,
            repository_id=REPOSITORY_ID,
            format="DOCKER",
            description="Container images of the flight API.",
            labels=labels,
            opts=after_apis,
        )
        registry = f"{cfg.region}-docker.pkg.dev"
        token = gcp.organizations.get_client_config_output().access_token
        self.image = docker.Image(
            f"{name}-image",
            image_name=pulumi.Output.concat(
                registry, "/", cfg.project, "/", self.repository.repository_id, "/", SERVICE_NAME
            ),
            build=docker.DockerBuildArgs(
                # Relative, so the state does not change with the checkout's location.
                context=os.path.relpath(REPO_ROOT),
                dockerfile=os.path.relpath(REPO_ROOT / "Dockerfile"),
                platform="linux/amd64",
            ),
            registry=docker.RegistryArgs(
                server=registry, username="oauth2accesstoken", password=pulumi.Output.secret(token)
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.service = gcp.cloudrunv2.Service(
            f"{name}-service",
            project=cfg.project,
            location=cfg.region,
            name=SERVICE_NAME,
            ingress=cfg.ingress,
            deletion_protection=cfg.deletion_protection,
            labels=labels,
            template=gcp.cloudrunv2.ServiceTemplateArgs(
                service_account=self.account.email,
                labels=labels,
                scaling=gcp.cloudrunv2.ServiceTemplateScalingArgs(
                    min_instance_count=cfg.min_instances, max_instance_count=cfg.max_instances
                ),
                containers=[
                    gcp.cloudrunv2.ServiceTemplateContainerArgs(
                        image=self.image.repo_digest,
                        ports=gcp.cloudrunv2.ServiceTemplateContainerPortsArgs(container_port=CONTAINER_PORT),
                        # Cloud Run sets PORT itself; these tell the app where its data lives.
                        envs=[
                            gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(name=k, value=v)
                            for k, v in render_env(
                                {"project_id": cfg.project, **pipeline_values(PIPELINE)}
                            ).items()
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

        invokers = list(cfg.invoker_members)
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
        self.register_outputs({"url": self.service.uri, "image": self.image.repo_digest})
