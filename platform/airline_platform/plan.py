"""Render each stack offline under Pulumi mocks: the harness behind `make plan` and the platform tests.

No Pulumi CLI or provider plugin is needed: the real program (`platform/__main__.py`) runs
against a mock monitor that records every resource with its inputs exactly as the engine
would receive them (camelCase keys, whole numbers as floats) and answers the few
provider-computed outputs the program reads. Usage: `python -m airline_platform.plan [stack...]`.
The same harness renders the delivery bootstrap program (`platform/bootstrap/`) in its tests.
"""

from __future__ import annotations

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

REPO_ROOT = Path(__file__).resolve().parents[2]
STACKS_DIR = REPO_ROOT / "stacks"
PLANS_DIR = REPO_ROOT / "plans"
STACKS = ("dev", "staging", "prod")
MOCK_PROJECT_NUMBER = "123456789012"
# CI passes the digest it built at deploy time (`pulumi up -c image=...`); offline, a fixed stand-in.
STAND_IN_IMAGE = "europe-west1-docker.pkg.dev/airline-delivery/airline/flight-api@sha256:" + "0" * 64
# Service agents whose address the provider computes (`gcp.projects.ServiceIdentity`).
_SERVICE_AGENT_DOMAINS = {"run.googleapis.com": "serverless-robot-prod.iam.gserviceaccount.com"}


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
        elif args.typ == "gcp:projects/serviceIdentity:ServiceIdentity":
            email = f"service-{MOCK_PROJECT_NUMBER}@{_SERVICE_AGENT_DOMAINS[inputs['service']]}"
            outputs.update(email=email, member=f"serviceAccount:{email}")
        elif args.typ == "gcp:cloudrunv2/service:Service":
            outputs["uri"] = f"https://{inputs['name']}-{MOCK_PROJECT_NUMBER}.{inputs['location']}.run.app"
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
            self.registered.append(
                {"type": request.type, "name": request.name, "urn": response.urn, "inputs": inputs}
            )
            self.dependencies[response.urn] = list(request.dependencies)
        return response


def render(stack: str, overrides: dict[str, str] | None = None, program: Program = MAIN) -> Plan:
    """Run a program for one stack under mocks (preview=False, so every apply runs); safe to repeat.

    Config is the stack file plus what the deploy workflow passes; `overrides` replaces values,
    for testing what a bad stack file or a bad deploy-time value would do.
    """
    config = program.deploy_time_config | stack_config(stack, program.stacks_dir) | (overrides or {})
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
    path.write_text(json.dumps(plan.resources, indent=2, sort_keys=True) + "\n")
    return path


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else key))
        return flat
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        flat = {}
        for index, item in enumerate(value):
            flat.update(_flatten(item, f"{prefix}[{index}]"))
        return flat
    return {prefix: value}


def _without_project(value: Any, project: str) -> Any:
    return json.loads(json.dumps(value).replace(project, "${project}"))


def diff(plans: list[Plan]) -> str:
    """Per resource, the inputs whose values are not the same in every stack.

    Each stack's project id is shown as ${project}, so only real differences remain.
    """
    names = [p.stack for p in plans]
    by_stack = [
        {
            (r["type"], r["name"]): _flatten(
                _without_project(r["inputs"], stack_config(p.stack)["gcp:project"])
            )
            for r in p.resources
        }
        for p in plans
    ]
    keys = sorted({k for resources in by_stack for k in resources})
    lines = []
    for key in keys:
        present = [resources.get(key) for resources in by_stack]
        if any(p is None for p in present):
            only = ", ".join(n for n, p in zip(names, present, strict=True) if p)
            lines.append(f"{key[1]} ({key[0]}): only in {only}")
            continue
        fields = sorted({f for p in present if p for f in p})
        changed = [f for f in fields if len({json.dumps(p.get(f) if p else None) for p in present}) > 1]
        if changed:
            lines.append(f"{key[1]} ({key[0]}):")
            for f in changed:
                values = "  ".join(
                    f"{n}={json.dumps(p.get(f) if p else None)}" for n, p in zip(names, present, strict=True)
                )
                lines.append(f"    {f}: {values}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    plans = [render(stack) for stack in (argv or STACKS)]
    for plan in plans:
        print(f"{plan.stack}: {len(plan.resources)} resources -> {write(plan).relative_to(REPO_ROOT)}")
    if len(plans) > 1:
        print(f"\nInputs that differ between {', '.join(p.stack for p in plans)}:")
        print(diff(plans) or "    (none)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
