"""The deploy's preflight refuses GitHub settings that differ from the bootstrap's.

Responses are shaped like the examples of GitHub's REST reference (environments, deployment
branch policies, branches); each weakening a repository administrator could make by hand is
refused, and the settings the bootstrap creates pass.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from typing import Any

import pytest
import yaml
from airline_bootstrap import preflight
from airline_platform.plan import REPO_ROOT, Plan

REVIEWERS = preflight.expected_reviewers()


def environment(name: str) -> dict[str, Any]:
    rules: list[dict[str, Any]] = [{"id": 2, "type": "branch_policy"}]
    if name == "prod":
        rules.append(
            {
                "id": 3,
                "type": "required_reviewers",
                "prevent_self_review": True,
                "reviewers": [{"type": kind, "reviewer": {"id": id_}} for kind, id_ in sorted(REVIEWERS)],
            }
        )
    return {
        "name": name,
        "can_admins_bypass": name != "prod",
        "protection_rules": rules,
        "deployment_branch_policy": {"protected_branches": False, "custom_branch_policies": True},
    }


def policies(*names: str) -> dict[str, Any]:
    return {"total_count": len(names), "branch_policies": [{"name": n, "type": "branch"} for n in names]}


AS_CREATED = {
    "dev": (environment("dev"), policies("develop"), {"name": "develop", "protected": True}),
    "staging": (environment("staging"), policies("main"), {"name": "main", "protected": True}),
    "prod": (environment("prod"), policies("main"), {"name": "main", "protected": True}),
}


@pytest.mark.parametrize("env", AS_CREATED)
def test_the_bootstrap_s_settings_pass(env: str) -> None:
    assert preflight.problems(env, *AS_CREATED[env], REVIEWERS) == []


def weakened(change: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    settings, branch_policies, branch = copy.deepcopy(AS_CREATED["prod"])
    (reviewers,) = [r for r in settings["protection_rules"] if r["type"] == "required_reviewers"]
    if change == "no reviewers":
        settings["protection_rules"].remove(reviewers)
    elif change == "another reviewer":
        reviewers["reviewers"] = [{"type": "User", "reviewer": {"id": 1}}]
    elif change == "self-review":
        reviewers["prevent_self_review"] = False
    elif change == "admins bypass":
        settings["can_admins_bypass"] = True
    elif change == "any protected branch":
        settings["deployment_branch_policy"] = {"protected_branches": True, "custom_branch_policies": False}
    elif change == "no branch rule":
        settings["deployment_branch_policy"] = None
    elif change == "another branch":
        branch_policies = policies("main", "release/*")
    elif change == "unprotected branch":
        branch["protected"] = False
    return settings, branch_policies, branch


CHANGES = [
    "no reviewers",
    "another reviewer",
    "self-review",
    "admins bypass",
    "any protected branch",
    "no branch rule",
    "another branch",
    "unprotected branch",
]


@pytest.mark.parametrize("change", CHANGES)
def test_each_weakening_of_prod_is_refused(change: str) -> None:
    assert preflight.problems("prod", *weakened(change), REVIEWERS)


def test_the_expected_reviewers_are_those_the_bootstrap_sets(bootstrap: Plan) -> None:
    (prod,) = [
        e
        for e in bootstrap.resources
        if e["type"] == "github:index/repositoryEnvironment:RepositoryEnvironment"
        and e["inputs"]["environment"] == "prod"
    ]
    (reviewers,) = prod["inputs"]["reviewers"]
    created = {("Team", int(t)) for t in reviewers["teams"]} | {("User", int(u)) for u in reviewers["users"]}
    assert created == REVIEWERS


def test_make_preflight_runs_the_module() -> None:
    """`make preflight STACK=prod` is what the deploy workflow runs."""
    dry = subprocess.run(  # noqa: S603 - make from PATH on the repository's own Makefile
        [str(shutil.which("make")), "-n", "preflight", "STACK=prod"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "-m airline_bootstrap.preflight prod" in dry
    usage = subprocess.run(
        [sys.executable, "-m", "airline_bootstrap.preflight"],
        cwd=REPO_ROOT,
        env={"PYTHONPATH": "platform/bootstrap"},
        capture_output=True,
        text=True,
    )
    assert usage.returncode != 0  # no environment named: refuses rather than passing


def test_every_deploy_runs_the_preflight_before_the_environment_job() -> None:
    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "deploy-stack.yml").read_text())
    jobs = workflow["jobs"]
    (gated,) = [name for name, job in jobs.items() if "environment" in job]
    checking = [
        name
        for name, job in jobs.items()
        if any(step.get("run", "").startswith('make preflight STACK="$STACK"') for step in job["steps"])
    ]
    assert checking
    needs = jobs[gated].get("needs", [])
    assert set(checking) <= set([needs] if isinstance(needs, str) else needs)
    for name in checking:
        assert jobs[name]["permissions"]["actions"] == "read", name
        assert "environment" not in jobs[name]
