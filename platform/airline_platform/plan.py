"""Render each stack offline under Pulumi mocks: the harness behind `make plan` and the platform tests.

No Pulumi CLI or provider plugin is needed: the real program (`platform/__main__.py`) runs
against a mock monitor that records every resource with its inputs exactly as the engine
would receive them (camelCase keys, whole numbers as floats) and answers the few
provider-computed outputs the program reads. Usage: `python -m airline_platform.plan [stack...]`.
The same harness renders the delivery bootstrap program (`platform/bootstrap/`) in its tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import runpy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from airline_platform import plan_report

REPO_ROOT = Path(__file__).resolve().parents[2]
STACKS_DIR = REPO_ROOT / "stacks"
PLANS_DIR = REPO_ROOT / "plans"
STACKS = ("dev", "staging", "prod")
MOCK_PROJECT_NUMBER = "123456789012"
# CI passes the digest it built at deploy time (`pulumi up -c image=...`); offline, a fixed stand-in.
STAND_IN_IMAGE = "europe-west1-docker.pkg.dev/airline-delivery/airline/flight-api@sha256:" + "0" * 64
# Google-managed service agents whose address the provider computes (`gcp.projects.ServiceIdentity`).
SERVICE_AGENT_DOMAINS = {
    "monitoring.googleapis.com": "gcp-sa-monitoring-notification.iam.gserviceaccount.com",
    "pubsub.googleapis.com": "gcp-sa-pubsub.iam.gserviceaccount.com",
    "run.googleapis.com": "serverless-robot-prod.iam.gserviceaccount.com",
}


def _digest(name: str, length: int) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:length]


def _number(name: str) -> int:
    """A stable numeric id, like the ones Cloud Monitoring assigns to channels and policies."""
    return int(_digest(name, 12), 16)


@dataclass(frozen=True)
class Program:
    """A Pulumi program of this repository: where it is, its project name, its stack files."""

    entry: Path
    project: str
    stacks_dir: Path
    deploy_time_config: dict[str, str]


MAIN = Program(
    entry=REPO_ROOT / "platform" / "__main__.py",
    project="airline-data-platform",
    stacks_dir=STACKS_DIR,
    deploy_time_config={"airline-data-platform:image": STAND_IN_IMAGE},
)


@dataclass(frozen=True)
class Plan:
    """What one stack would create: resources in registration order, and the stack outputs."""

    stack: str
    resources: list[dict[str, Any]]
    outputs: dict[str, Any]
    dependencies: dict[str, list[str]]  # URN -> URNs it explicitly depends on


def stack_config(stack: str, stacks_dir: Path = STACKS_DIR) -> dict[str, str]:
    """The stack file's config as the CLI hands it to a program: strings, other values as JSON."""
    data = yaml.safe_load((stacks_dir / f"Pulumi.{stack}.yaml").read_text())
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in (data.get("config") or {}).items()}


class _Mocks(pulumi.runtime.Mocks):
    """Echo inputs back as outputs, adding what the provider would compute and the program reads."""

    def __init__(self, project: str) -> None:
        self.project = project

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        outputs: dict[str, Any] = dict(inputs)
        resource_id = f"{args.name}-id"
        if args.typ == "gcp:pubsub/topic:Topic":
            resource_id = f"projects/{inputs['project']}/topics/{inputs['name']}"
        elif args.typ == "gcp:pubsub/subscription:Subscription":
            resource_id = f"projects/{inputs['project']}/subscriptions/{inputs['name']}"
        elif args.typ == "gcp:serviceaccount/account:Account":
            outputs["email"] = f"{inputs['accountId']}@{inputs['project']}.iam.gserviceaccount.com"
        elif args.typ == "gcp:kms/keyRing:KeyRing":
            location = f"projects/{inputs['project']}/locations/{inputs['location']}"
            resource_id = f"{location}/keyRings/{inputs['name']}"
        elif args.typ == "gcp:kms/cryptoKey:CryptoKey":
            resource_id = f"{inputs['keyRing']}/cryptoKeys/{inputs['name']}"
        elif args.typ == "gcp:cloudrunv2/service:Service":
            outputs["uri"] = f"https://{inputs['name']}-{MOCK_PROJECT_NUMBER}.{inputs['location']}.run.app"
        elif args.typ == "gcp:projects/serviceIdentity:ServiceIdentity":
            email = f"service-{MOCK_PROJECT_NUMBER}@{SERVICE_AGENT_DOMAINS[inputs['service']]}"
            outputs |= {"email": email, "member": f"serviceAccount:{email}"}
        elif args.typ in (
            "gcp:monitoring/genericService:GenericService",
            "gcp:monitoring/customService:CustomService",
        ):
            outputs["name"] = f"projects/{MOCK_PROJECT_NUMBER}/services/{inputs['serviceId']}"
        elif args.typ == "gcp:monitoring/slo:Slo":
            outputs["name"] = (
                f"projects/{MOCK_PROJECT_NUMBER}/services/{inputs['service']}"
                f"/serviceLevelObjectives/{inputs['sloId']}"
            )
        elif args.typ == "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig":
            check_id = f"{args.name}-{_digest(args.name, 8)}"
            outputs |= {
                "uptimeCheckId": check_id,
                "name": f"projects/{self.project}/uptimeCheckConfigs/{check_id}",
            }
        elif args.typ == "gcp:monitoring/notificationChannel:NotificationChannel":
            outputs["name"] = f"projects/{self.project}/notificationChannels/{_number(args.name)}"
        elif args.typ == "gcp:monitoring/alertPolicy:AlertPolicy":
            outputs["name"] = f"projects/{self.project}/alertPolicies/{_number(args.name)}"
        elif args.typ == "gcp:monitoring/dashboard:Dashboard":
            resource_id = f"projects/{MOCK_PROJECT_NUMBER}/dashboards/{_digest(args.name, 32)}"
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        results = {
            "gcp:organizations/getProject:getProject": {
                "projectId": self.project,
                "number": MOCK_PROJECT_NUMBER,
            },
            "gcp:organizations/getClientConfig:getClientConfig": {
                "project": self.project,
                "accessToken": "mock",
            },
        }
        if args.token not in results:
            raise NotImplementedError(f"no mock for invoke {args.token}")
        return results[args.token], []


class _Monitor(mocks.MockMonitor):
    """Records each registration in order, with the URN the engine would assign."""

    def __init__(self, mock: _Mocks) -> None:
        super().__init__(mock)
        self.registered: list[dict[str, Any]] = []
        self.dependencies: dict[str, list[str]] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs = pulumi.runtime.rpc.deserialize_properties(request.object)
            outputs = pulumi.runtime.rpc.deserialize_properties(response.object)
            self.registered.append(
                {
                    "type": request.type,
                    "name": request.name,
                    "urn": response.urn,
                    "inputs": inputs,
                    "outputs": outputs,
                }
            )
            self.dependencies[response.urn] = list(request.dependencies)
        return response


def render(stack: str, overrides: dict[str, str] | None = None, program: Program = MAIN) -> Plan:
    """Run a program for one stack under mocks (preview=False, so every apply runs); safe to repeat.

    Config is the stack file plus what the deploy workflow passes; `overrides` replaces values,
    for testing what a bad stack file or a bad deploy-time value would do.
    """
    config = program.deploy_time_config | stack_config(stack, program.stacks_dir) | (overrides or {})
    # Pulumi's runtime awaits on the thread's current loop; `asyncio.run` elsewhere leaves none.
    asyncio.set_event_loop(asyncio.new_event_loop())
    settings.reset_options(project=program.project, stack=stack, preview=False)
    pulumi.runtime.set_all_config(config, [])
    monitor = _Monitor(_Mocks(config["gcp:project"]))
    pulumi.runtime.set_mocks(
        monitor.mocks, project=program.project, stack=stack, preview=False, monitor=monitor
    )
    outputs: dict[str, Any] = {}

    def run() -> None:
        runpy.run_path(str(program.entry), run_name="__main__")
        root = settings.get_root_resource()
        exports = pulumi.Output.from_input(getattr(root, "outputs", {}))
        outputs.update(_sync_await(exports.future()) or {})

    _sync_await(run_pulumi_func(run))
    # Registration order depends on task scheduling; sort so plans compare and diff cleanly.
    return Plan(stack, sorted(monitor.registered, key=lambda r: r["urn"]), outputs, monitor.dependencies)


def write(plan: Plan, directory: Path = PLANS_DIR) -> Path:
    """Save one stack's resources as a JSON list of {type, name, urn, inputs}."""
    directory.mkdir(exist_ok=True)
    path = directory / f"{plan.stack}.json"
    inputs_only = [{k: v for k, v in r.items() if k != "outputs"} for r in plan.resources]
    path.write_text(json.dumps(inputs_only, indent=2, sort_keys=True) + "\n")
    return path


def main(argv: list[str]) -> int:
    plans = [render(stack) for stack in (argv or STACKS)]
    for plan in plans:
        print(f"\n{plan.stack}: {len(plan.resources)} resources -> {write(plan).relative_to(REPO_ROOT)}")
        print("\n".join(plan_report.stack_summary(plan.resources)))
    if len(plans) > 1:
        stacks = ", ".join(p.stack for p in plans)
        print(f"\nMonitoring at a glance:\n{plan_report.at_a_glance({p.stack: p.resources for p in plans})}")
        print(f"\nInputs that differ between {stacks}")
        print("(each stack's project id shown as ${project}, its name as ${stack}):")
        differences = plan_report.diff(
            {p.stack: (stack_config(p.stack)["gcp:project"], p.resources) for p in plans}
        )
        print(differences or "    (none)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
