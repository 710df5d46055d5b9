"""Before a deploy: GitHub's settings for the environment are still what the bootstrap created.

The bootstrap creates them (airline_bootstrap.github), but a repository administrator can change
them by hand afterwards and GitHub recreates a deleted environment without rules on first use. The
deploy workflow runs `make preflight STACK=<env>` before the job that names the environment, and a
missing or weakened rule fails the deploy. Reads with the job's GITHUB_TOKEN (`actions: read` for
environments and their branch policies, `contents: read` for the branch), from GitHub's REST API:
https://docs.github.com/en/rest/deployments/environments and
https://docs.github.com/en/rest/deployments/branch-policies.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from airline_bootstrap import naming

STACK_FILE = Path(__file__).resolve().parents[1] / "Pulumi.delivery.yaml"
TIMEOUT_SECONDS = 20


def expected_reviewers(stack_file: Path = STACK_FILE) -> set[tuple[str, int]]:
    """The prod reviewers the bootstrap configures, as GitHub lists them: (User|Team, id)."""
    config = yaml.safe_load(stack_file.read_text())["config"]
    reviewers = config["airline-delivery-bootstrap:prodReviewers"]
    return {("Team", int(t)) for t in reviewers.get("teams") or ()} | {
        ("User", int(u)) for u in reviewers.get("users") or ()
    }


def problems(
    environment: str,
    settings: dict[str, Any],
    branch_policies: dict[str, Any],
    branch: dict[str, Any],
    reviewers: set[tuple[str, int]],
) -> list[str]:
    """What differs from the bootstrap's settings: empty when the deploy may go on."""
    found = []
    deploy_branch = naming.DEPLOY_BRANCH[environment]
    policy = settings.get("deployment_branch_policy") or {}
    if policy != {"protected_branches": False, "custom_branch_policies": True}:
        found.append(f"environment {environment} must deploy from named branches only, has {policy}")
    names = sorted(p.get("name") for p in branch_policies.get("branch_policies") or [])
    if names != [deploy_branch]:
        found.append(f"environment {environment} must deploy from {deploy_branch} only, allows {names}")
    if not branch.get("protected"):
        found.append(f"branch {deploy_branch} is not protected")
    if environment == "prod":
        rules = [r for r in settings.get("protection_rules") or [] if r.get("type") == "required_reviewers"]
        listed = {
            (r.get("type"), int((r.get("reviewer") or {}).get("id", 0)))
            for rule in rules
            for r in rule.get("reviewers") or []
        }
        if listed != reviewers:
            found.append(f"prod must wait for reviewers {sorted(reviewers)}, waits for {sorted(listed)}")
        if not all(rule.get("prevent_self_review") for rule in rules) or not rules:
            found.append("prod must prevent self-review")
        if settings.get("can_admins_bypass", True):
            found.append("prod must not let administrators bypass its rules")
    return found


def _get(api: str, path: str, token: str) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - the URL is GitHub's API, from the runner
        f"{api}{path}",
        headers={
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {token}",
            "X-GitHub-Api-Version": "2022-11-28",
        },
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
        result: dict[str, Any] = json.load(response)
        return result


def main(argv: list[str]) -> int:
    (environment,) = argv
    api = os.environ.get("GITHUB_API_URL", "https://api.github.com")
    repo, token = os.environ["GITHUB_REPOSITORY"], os.environ["GITHUB_TOKEN"]
    try:
        found = problems(
            environment,
            _get(api, f"/repos/{repo}/environments/{environment}", token),
            _get(api, f"/repos/{repo}/environments/{environment}/deployment-branch-policies", token),
            _get(api, f"/repos/{repo}/branches/{naming.DEPLOY_BRANCH[environment]}", token),
            expected_reviewers(),
        )
    except urllib.error.HTTPError as error:  # 404: the environment is missing
        found = [f"GitHub answered {error.code} for {error.url}"]
    for problem in found:
        print(f"::error::{problem} (run the bootstrap again: docs/delivery.md)")
    print(f"{environment}: {'refused' if found else 'GitHub settings as the bootstrap made them'}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
