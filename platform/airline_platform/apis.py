"""The Google APIs the stack needs, enabled before anything that calls them."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from airline_platform.config import StackConfig

REQUIRED_APIS = (
    "bigquery.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "iam.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
)


class ProjectApis(pulumi.ComponentResource):
    """Enables each required API; other components depend on `self.services`.

    APIs stay enabled on destroy: other workloads in the project may use them.
    """

    def __init__(self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("airline:platform:ProjectApis", name, None, opts)
        self.services = [
            gcp.projects.Service(
                f"api-{api.split('.')[0]}",
                project=cfg.project,
                service=api,
                disable_on_destroy=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for api in REQUIRED_APIS
        ]
        self.register_outputs({"services": [s.service for s in self.services]})
