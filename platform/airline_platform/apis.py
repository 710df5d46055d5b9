"""The Google APIs the stack needs, enabled before anything that calls them."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from airline_platform.config import StackConfig

REQUIRED_APIS = (
    "bigquery.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "iam.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
)


@dataclass(frozen=True)
class ProjectApisArgs:
    config: StackConfig


class ProjectApis(pulumi.ComponentResource):
    """Enables each required API; other components depend on `self.services`.

    APIs stay enabled on destroy: other workloads in the project may use them.
    """

    def __init__(self, name: str, args: ProjectApisArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("airline:platform:ProjectApis", name, None, opts)
        self.services = [
            gcp.projects.Service(
                f"{name}-{api.split('.')[0]}",
                project=args.config.project,
                service=api,
                disable_on_destroy=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for api in REQUIRED_APIS
        ]
        self.register_outputs({"services": [s.service for s in self.services]})
