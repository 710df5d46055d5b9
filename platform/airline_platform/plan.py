"""Render each stack offline under Pulumi mocks: the harness behind `make plan` and the platform tests.

No Pulumi CLI or provider plugin is needed: the real program (`platform/__main__.py`) runs
under Pulumi's public mocks API (`pulumi.runtime.set_mocks` and `pulumi.runtime.test`, as
https://www.pulumi.com/docs/iac/concepts/testing/unit/ shows), whose `Mocks.new_resource` records
every resource with its inputs exactly as the engine would receive them (camelCase keys, whole
numbers as floats) and answers the few provider-computed outputs the program reads. One thing the
public API does not hand over, each resource's URN and explicit dependencies, is read from the
mock monitor's registration request; if a Pulumi upgrade changes that, rendering stops with
`PulumiInternalsChanged` naming the installed version, never a silently wrong plan.
Usage: `python -m airline_platform.plan [stack...]`.
The same harness renders the delivery bootstrap program (`platform/bootstrap/`) in its tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import runpy
import sys
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.cloud import pubsub_v1
from pulumi.runtime import mocks

from airline_platform import plan_report
from airline_platform.cost import model as cost_model
from airline_platform.cost import report as cost_report
from airline_platform.cost.prices import PriceTable
from airline_platform.cost.traffic import Traffic

REPO_ROOT = Path(__file__).resolve().parents[2]
STACKS_DIR = REPO_ROOT / "stacks"
PLANS_DIR = REPO_ROOT / "plans"
STACKS = ("dev", "staging", "prod")
MOCK_PROJECT_NUMBER = "123456789012"
# CI passes the digest it built at deploy time (`pulumi up -c image=...`); offline, a fixed stand-in.
STAND_IN_IMAGE = "europe-west1-docker.pkg.dev/airline-delivery/airline/flight-api@sha256:" + "0" * 64
# The repository a deploy runs from names itself (config.runbook_base_url); offline, a stand-in.
STAND_IN_REPOSITORY = "https://github.com/stand-in-owner/airline-data-platform"
# Google-managed service agents whose address the provider computes (`gcp.projects.ServiceIdentity`).
SERVICE_AGENT_DOMAINS = {
    "monitoring.googleapis.com": "gcp-sa-monitoring-notification.iam.gserviceaccount.com",
    "pubsub.googleapis.com": "gcp-sa-pubsub.iam.gserviceaccount.com",
    "run.googleapis.com": "serverless-robot-prod.iam.gserviceaccount.com",
}


# The Pulumi SDK this harness was last checked against (requirements/dev.txt pins it).
CHECKED_PULUMI = "3.272.0"


class PulumiInternalsChanged(RuntimeError):
    """The installed Pulumi SDK no longer exposes what the offline plan reads beyond its public API."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"pulumi {version('pulumi')} changed what the offline plan reads from its mock monitor "
            f"({detail}); it was checked with pulumi {CHECKED_PULUMI}. Pin that version in "
            "requirements/dev.txt or adapt platform/airline_platform/plan.py (_Monitor)."
        )


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
    # What a deploy passes besides the stack file: the image, and (from GitHub Actions' environment,
    # config.runbook_base_url) the repository; the offline plan stands in for both.
    deploy_time_config={
        "airline-data-platform:image": STAND_IN_IMAGE,
        "airline-data-platform:sourceRepository": STAND_IN_REPOSITORY,
    },
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
        self.registered: list[dict[str, Any]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        resource_id, outputs = self._answer(args)
        self.registered.append(
            {"type": args.typ, "name": args.name, "inputs": dict(args.inputs), "outputs": outputs}
        )
        return resource_id, outputs

    def _answer(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        outputs: dict[str, Any] = dict(inputs)
        resource_id = f"{args.name}-id"
        if args.typ == "gcp:pubsub/topic:Topic":
            resource_id = pubsub_v1.PublisherClient.topic_path(inputs["project"], inputs["name"])
        elif args.typ == "gcp:pubsub/subscription:Subscription":
            resource_id = pubsub_v1.SubscriberClient.subscription_path(inputs["project"], inputs["name"])
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
    """Adds to each resource the mocks recorded the URN the engine would assign and its explicit
    dependencies: the one reading beyond Pulumi's public API (`set_mocks` documents `monitor=`,
    the request's fields are the engine protocol's), guarded by `PulumiInternalsChanged`."""

    def __init__(self, mock: _Mocks) -> None:
        super().__init__(mock)
        self.recorder = mock
        self.dependencies: dict[str, list[str]] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        try:
            urn = response.urn
            if request.type != "pulumi:pulumi:Stack":
                # Registrations run on several threads: find this one's record by type and name.
                record = next(
                    r
                    for r in self.recorder.registered
                    if (r["type"], r["name"]) == (request.type, request.name) and "urn" not in r
                )
                record["urn"] = urn
                self.dependencies[urn] = list(request.dependencies)
        except (AttributeError, StopIteration, TypeError) as error:
            raise PulumiInternalsChanged(f"RegisterResource: {error!r}") from error
        return response


def render(stack: str, overrides: dict[str, str] | None = None, program: Program = MAIN) -> Plan:
    """Run a program for one stack under mocks (preview=False, so every apply runs); safe to repeat.

    Config is the stack file plus what the deploy workflow passes; `overrides` replaces values,
    for testing what a bad stack file or a bad deploy-time value would do.
    """
    config = program.deploy_time_config | stack_config(stack, program.stacks_dir) | (overrides or {})
    # Pulumi's runtime awaits on the thread's current loop; `asyncio.run` elsewhere leaves none.
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.reset_options(project=program.project, stack=stack, preview=False)
    pulumi.runtime.set_all_config(config, [])
    recorder = _Mocks(config["gcp:project"])
    monitor = _Monitor(recorder)
    pulumi.runtime.set_mocks(recorder, project=program.project, stack=stack, preview=False, monitor=monitor)
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> pulumi.Output[None]:
        runpy.run_path(str(program.entry), run_name="__main__")
        exports = getattr(pulumi.runtime.get_root_resource(), "outputs", {})
        return pulumi.Output.from_input(exports).apply(lambda values: outputs.update(values or {}))

    run()
    if any("urn" not in r for r in recorder.registered):
        raise PulumiInternalsChanged("a resource was recorded without passing through RegisterResource")
    # Registration order depends on task scheduling; sort so plans compare and diff cleanly.
    return Plan(stack, sorted(recorder.registered, key=lambda r: r["urn"]), outputs, monitor.dependencies)


def write(plan: Plan, directory: Path = PLANS_DIR) -> Path:
    """Save one stack's resources as a JSON list of {type, name, urn, inputs}."""
    directory.mkdir(exist_ok=True)
    path = directory / f"{plan.stack}.json"
    inputs_only = [{k: v for k, v in r.items() if k != "outputs"} for r in plan.resources]
    path.write_text(json.dumps(inputs_only, indent=2, sort_keys=True) + "\n")
    return path


def estimate(plan: Plan, prices: PriceTable) -> cost_model.Estimate:
    """The stack's monthly cost at the traffic its stack file declares."""
    return cost_model.estimate(
        plan.stack, plan.resources, Traffic.from_config(stack_config(plan.stack)), prices
    )


def review(plans: list[Plan], directory: Path = PLANS_DIR) -> str:
    """The review `make plan` prints: what differs between the stacks first, then each stack's
    summary and cost; the full detail (resources, alert filters, cost inputs) goes to `directory`."""
    prices = PriceTable.load()
    estimates = [estimate(plan, prices) for plan in plans]
    for plan, cost in zip(plans, estimates, strict=True):
        write(plan, directory)
        (directory / f"{plan.stack}.txt").write_text(
            "\n".join(plan_report.stack_detail(plan.resources)) + "\n"
        )
        (directory / f"{plan.stack}.cost.json").write_text(cost_model.dumps(cost))
    stacks = ", ".join(p.stack for p in plans)
    out = [f"make plan: {stacks} rendered offline under Pulumi mocks; full detail in plans/"]
    if len(plans) > 1:
        projects = {p.stack: (stack_config(p.stack)["gcp:project"], p.resources) for p in plans}
        (directory / "differences.txt").write_text(plan_report.full_differences(projects) + "\n")
        out += [
            f"\nWhat differs between {stacks}, by setting",
            "(each stack's project id shown as ${project}, its name as ${stack}):",
            plan_report.diff(projects) or "    (nothing)",
            f"\nMonitoring at a glance:\n{plan_report.at_a_glance({p.stack: p.resources for p in plans})}",
        ]
    for plan, cost in zip(plans, estimates, strict=True):
        out.append(
            f"\n{plan.stack}: {len(plan.resources)} resources (plans/{plan.stack}.json; every alert with its "
            f"filters: plans/{plan.stack}.txt; cost inputs: plans/{plan.stack}.cost.json)"
        )
        out += plan_report.stack_summary(plan.resources) + cost_report.table(cost)
    shared = cost_model.registry(estimates[0].traffic, prices)
    gross, net = cost_model.account_total(estimates, [shared], prices)
    out.append(
        f"\nAll: {cost_report.money(gross)} a month for {stacks} and the shared image repository "
        f"({shared.formula} stored: {cost_report.money(shared.amount)}); "
        f"{cost_report.money(net)} after the billing account's free allotments (prices.json)."
    )
    return "\n".join(out)


def main(argv: list[str]) -> int:
    print(review([render(stack) for stack in (argv or STACKS)]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
