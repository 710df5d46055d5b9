"""The Google APIs the stack needs, enabled before anything that calls them.

`API_OF` says which API creates each kind of resource the program declares; the platform tests
check that every resource of every stack waits (directly or through what it waits for) for its
API, so a new kind of resource cannot race its API's enablement on a fresh project.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from airline_platform.config import StackConfig

# Resource type prefix (Pulumi token) -> the API that serves it.
API_OF = {
    "gcp:bigquery/": "bigquery.googleapis.com",
    "gcp:cloudrunv2/": "run.googleapis.com",
    "gcp:logging/": "logging.googleapis.com",  # log-based metrics
    "gcp:monitoring/": "monitoring.googleapis.com",
    "gcp:projects/iAMMember:": "cloudresourcemanager.googleapis.com",
    "gcp:pubsub/": "pubsub.googleapis.com",
    "gcp:serviceaccount/": "iam.googleapis.com",
}
REQUIRED_APIS = tuple(sorted(set(API_OF.values())))


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
