"""The bootstrap's configuration, validated when the program starts.

The delivery project and the GitHub repository come from the bootstrap's own stack file; the
environments and their projects come from the main program's stack files
(`stacks/Pulumi.<env>.yaml`), so a project id is written down once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pulumi
import yaml

MAIN_STACKS_DIR = Path(__file__).resolve().parents[3] / "stacks"
ENVIRONMENTS = ("dev", "staging", "prod")
_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_REPOSITORY = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")
_NUMERIC_ID = re.compile(r"^[1-9][0-9]*$")
_BRANCH = re.compile(r"^[A-Za-z0-9._/-]+$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{1,63}$")


class ConfigError(ValueError):
    """The bootstrap configuration is missing values or holds invalid ones."""


@dataclass(frozen=True)
class Environment:
    """One stack of the main program and the project it deploys into."""

    name: str
    project: str


@dataclass(frozen=True)
class BootstrapConfig:
    """Where the delivery foundation lives and whom it trusts."""

    project: str  # the delivery project: state, keys, identity pool, deployers, image registry
    region: str
    owner: str
    github_repository: str  # owner/name
    # Numeric ids do not change on a rename or transfer, so a look-alike repository cannot match.
    github_repository_id: str
    github_owner_id: str
    github_default_branch: str  # where scheduled workflows (drift) run
    environments: tuple[Environment, ...]
    # GitHub's numeric ids of the teams and users who approve prod deploys (at most 6 each).
    prod_reviewer_teams: tuple[int, ...] = ()
    prod_reviewer_users: tuple[int, ...] = ()
    # Status checks (job names) a pull request into develop or main must pass.
    required_checks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if errors := self.problems():
            raise ConfigError("invalid bootstrap configuration:\n  - " + "\n  - ".join(errors))

    def problems(self) -> list[str]:
        errors = []
        if not _PROJECT.match(self.project):
            errors.append(f"gcp:project must be a project id, got {self.project!r}")
        if not _LABEL_VALUE.match(self.owner):
            errors.append(f"owner must be a label value (lowercase, digits, - or _), got {self.owner!r}")
        if not _REPOSITORY.match(self.github_repository):
            errors.append(f"githubRepository must be <owner>/<name>, got {self.github_repository!r}")
        for key, value in (
            ("githubRepositoryId", self.github_repository_id),
            ("githubOwnerId", self.github_owner_id),
        ):
            if not _NUMERIC_ID.match(value):
                errors.append(f"{key} must be GitHub's numeric id, got {value!r}")
        if not _BRANCH.match(self.github_default_branch):
            errors.append(f"githubDefaultBranch must be a branch name, got {self.github_default_branch!r}")
        if [e.name for e in self.environments] != list(ENVIRONMENTS):
            errors.append(f"need the environments {ENVIRONMENTS}, got {[e.name for e in self.environments]}")
        projects = [e.project for e in self.environments]
        if len(set(projects)) != len(projects):
            errors.append(f"each environment needs its own project, got {projects}")
        if self.project in projects:
            errors.append(
                f"the delivery project {self.project!r} must not be an environment's project: "
                "a deployer would then reach the other environments' state and keys"
            )
        if not (self.prod_reviewer_teams or self.prod_reviewer_users):
            errors.append("prodReviewers needs at least one team or user id: prod is deployed after approval")
        if len(self.prod_reviewer_teams) > 6 or len(self.prod_reviewer_users) > 6:
            errors.append("prodReviewers takes at most 6 teams and 6 users (GitHub's limit)")
        if not self.required_checks:
            errors.append("requiredChecks must name the status checks develop and main require")
        return errors

    def labels(self, environment: str) -> dict[str, str]:
        return {"environment": environment, "service": "delivery", "owner": self.owner}


def main_stack_projects(stacks_dir: Path = MAIN_STACKS_DIR) -> tuple[Environment, ...]:
    """Each environment's project, as the main program's stack file names it."""
    environments = []
    for name in ENVIRONMENTS:
        path = stacks_dir / f"Pulumi.{name}.yaml"
        project = ((yaml.safe_load(path.read_text()) or {}).get("config") or {}).get("gcp:project")
        if not isinstance(project, str):
            raise ConfigError(f"{path} names no gcp:project")
        environments.append(Environment(name, project))
    return tuple(environments)


def load_config() -> BootstrapConfig:
    """Read the bootstrap stack's configuration; raises ConfigError listing every problem."""
    gcp = pulumi.Config("gcp")
    app = pulumi.Config()
    reviewers = app.require_object("prodReviewers")
    return BootstrapConfig(
        project=gcp.require("project"),
        region=gcp.require("region"),
        owner=app.require("owner"),
        github_repository=app.require("githubRepository"),
        github_repository_id=app.require("githubRepositoryId"),
        github_owner_id=app.require("githubOwnerId"),
        github_default_branch=app.get("githubDefaultBranch") or "develop",
        environments=main_stack_projects(),
        prod_reviewer_teams=tuple(int(t) for t in reviewers.get("teams") or ()),
        prod_reviewer_users=tuple(int(u) for u in reviewers.get("users") or ()),
        required_checks=tuple(str(c) for c in app.require_object("requiredChecks")),
    )
