"""Every job that authenticates to Google Cloud gets the account it names, from the token it will carry.

The tokens are derived from the workflows themselves: which file the job runs in (for the reusable
deploy-stack.yml, that file), on which events and branches its callers run it, and in which GitHub
environment. Each is exchanged through the bootstrap's rendered provider (its CEL attribute mapping
and condition, evaluated by tests/platform/test_trust.py's `exchange`) for the accounts it may act as.
A job renamed, moved to another workflow, branch or environment, or an access context narrowed in
the bootstrap, fails here before it fails in a real run.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from airline_bootstrap import naming
from airline_platform.plan import Plan, render

from tests.delivery.test_workflows import STACKS, WORKFLOWS, load, uses, workflow
from tests.platform.conftest import BOOTSTRAP
from tests.platform.test_bootstrap import GOOD
from tests.platform.test_trust import claims, exchange  # noqa: F401 - `exchange` is a fixture

PULL_REQUEST_REF = "refs/pull/42/merge"


@pytest.fixture(scope="module")
def bootstrap() -> Plan:
    return render("delivery", program=BOOTSTRAP)


def account(job: dict[str, Any], stack: str) -> str:
    """The account id the job's auth step names, with the stack filled in."""
    (auth,) = {s["with"]["service_account"] for s in job["steps"] if uses(s) == "google-github-actions/auth"}
    value = auth.replace("${{ env.PREVIEWER }}", job["env"].get("PREVIEWER", ""))
    value = value.replace("${{ env.DEPLOYER }}", job["env"].get("DEPLOYER", ""))
    for expression in ("${{ inputs.stack }}", "${{ matrix.stack }}"):
        value = value.replace(expression, stack)
    return value.split("@")[0]


def branch_of(condition: str) -> str:
    (branch,) = re.findall(r"github\.ref == 'refs/heads/([\w-]+)'", condition)
    return branch


def routes() -> list[tuple[str, dict[str, str], str]]:
    """(what, token claims, account the job names) for every authenticating job and stack it serves."""
    found = []
    stack_jobs = workflow("deploy-stack")["jobs"]
    deploy = workflow("deploy")
    for event in deploy["on"]:
        for name, caller in deploy["jobs"].items():
            if caller.get("uses") == "./.github/workflows/deploy-stack.yml":
                stack, ref = caller["with"]["stack"], f"refs/heads/{branch_of(caller['if'])}"
                for job_name, job in stack_jobs.items():
                    environment = (
                        (job.get("environment") or {}).get("name", "").replace("${{ inputs.stack }}", stack)
                    )
                    token = claims(ref, "deploy-stack.yml", event, environment or None)
                    found.append((f"deploy.yml {name} -> {job_name}", token, account(job, stack)))
            elif any(uses(s) == "google-github-actions/auth" for s in caller.get("steps", [])):
                for branch in deploy["on"]["push"]["branches"]:
                    token = claims(f"refs/heads/{branch}", "deploy.yml", event)
                    found.append((f"deploy.yml {name} on {branch}", token, account(caller, "")))
    rollback = workflow("rollback")
    (caller,) = rollback["jobs"].values()
    for stack in STACKS:
        branch = naming.DEPLOY_BRANCH[stack]
        assert f"github.ref == 'refs/heads/{branch}'" in caller["if"]
        for job_name, job in stack_jobs.items():
            environment = stack if "environment" in job else None
            token = claims(f"refs/heads/{branch}", "deploy-stack.yml", "workflow_dispatch", environment)
            found.append((f"rollback.yml {stack} -> {job_name}", token, account(job, stack)))
    preview = workflow("preview")["jobs"]["preview"]
    (auth,) = [s for s in preview["steps"] if uses(s) == "google-github-actions/auth"]
    for stack in preview["strategy"]["matrix"]["stack"]:
        if auth.get("if") == "matrix.stack != 'prod'" and stack == "prod":
            continue
        token = claims(PULL_REQUEST_REF, "preview.yml", "pull_request")
        found.append((f"preview.yml {stack}", token, account(preview, stack)))
    drift = workflow("drift")
    for event in drift["on"]:
        for stack in drift["jobs"]["refresh"]["strategy"]["matrix"]["stack"]:
            token = claims(f"refs/heads/{GOOD.github_default_branch}", "drift.yml", event)
            found.append((f"drift.yml {event} {stack}", token, account(drift["jobs"]["refresh"], stack)))
    return found


ROUTES = routes()


def test_every_authenticating_job_is_covered() -> None:
    authenticating = sum(
        1
        for document in map(load, WORKFLOWS)
        for job in document["jobs"].values()
        if any(uses(s) == "google-github-actions/auth" for s in job.get("steps", []))
    )
    # deploy.yml's image job, deploy-stack's preview and deploy jobs, preview.yml, drift.yml.
    assert authenticating == 5
    assert len(ROUTES) >= 2 * 3 + 2 + 2 * 3 + 2 + 2 * 3


@pytest.mark.parametrize(("what", "token", "expected"), ROUTES, ids=[r[0] for r in ROUTES])
def test_each_job_can_become_the_account_it_names(
    exchange: Any,  # noqa: F811 - the fixture imported above
    what: str,
    token: dict[str, str],
    expected: str,
) -> None:
    assert expected in exchange(token), (
        f"{what}: the token {token['job_workflow_ref']} cannot become {expected}"
    )


def test_a_pull_request_cannot_become_prods_previewer(exchange: Any) -> None:  # noqa: F811
    assert "previewer-prod" not in exchange(claims(PULL_REQUEST_REF, "preview.yml", "pull_request"))
