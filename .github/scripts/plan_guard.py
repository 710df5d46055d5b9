"""Fail a saved Pulumi update plan that deletes or replaces a data-bearing resource of a protected stack.

`protect=True` (platform/airline_platform) already makes the engine refuse such an update; this check
reads the plan the reviewer and the prod approver see, so the preview itself fails with the resources
named, and it holds even when the same change drops `protect`. Stacks whose config keeps data
(`deletionProtection: true`) fail; the others get a warning in the same words.

The plan file is Pulumi's DeploymentPlanV1 (pulumi/pulumi, sdk/go/common/apitype/plan.go):
`resourcePlans` maps each URN to `{goal, steps, state}`, `steps` being OpType values such as
"replace", "create-replacement" and "delete-replaced" (sdk/go/common/apitype/updates.go).
Usage: plan_guard.py <stack> <plan.json>
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT = "airline-data-platform"
DATA_BEARING = frozenset(
    {
        "gcp:pubsub/topic:Topic",
        "gcp:pubsub/subscription:Subscription",
        "gcp:bigquery/dataset:Dataset",
        "gcp:bigquery/table:Table",
    }
)
DESTRUCTIVE = frozenset({"delete", "replace", "create-replacement", "delete-replaced"})


def resource_type(urn: str) -> str:
    """`urn:pulumi:<stack>::<project>::<parent$...$type>::<name>` -> the resource's own type."""
    return urn.split("::")[2].split("$")[-1]


def is_view(resource_plan: dict[str, Any]) -> bool:
    """A BigQuery view holds no data and is recreated from code."""
    goal = resource_plan.get("goal") or {}
    adds = (goal.get("inputDiff") or {}).get("adds") or {}
    state = resource_plan.get("state") or {}
    return bool(adds.get("view") or state.get("view"))


def destructive_steps(plan: dict[str, Any]) -> list[str]:
    """One line per data-bearing resource the plan would delete or replace."""
    found = []
    for urn, resource_plan in sorted((plan.get("resourcePlans") or {}).items()):
        steps = DESTRUCTIVE.intersection(resource_plan.get("steps") or [])
        if steps and resource_type(urn) in DATA_BEARING and not is_view(resource_plan):
            found.append(f"{', '.join(sorted(steps))}: {urn}")
    return found


def keeps_data(stack: str) -> bool:
    config = yaml.safe_load((REPO_ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
    return config.get(f"{PROJECT}:deletionProtection") is True


def main(argv: list[str]) -> int:
    stack, path = argv
    found = destructive_steps(json.loads(Path(path).read_text()))
    if not found:
        print(f"{stack}: the plan deletes or replaces no topic, subscription, dataset or table.")
        return 0
    fatal = keeps_data(stack)
    print(
        f"{stack}: the plan would delete or replace data-bearing resources "
        f"({'refused: this stack keeps its data' if fatal else 'allowed outside protected stacks'}):"
    )
    print("\n".join(f"  {line}" for line in found))
    return 1 if fatal else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
