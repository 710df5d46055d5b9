"""The repository settings the pipeline's safety rests on, as code (the Pulumi GitHub provider).

GitHub creates a missing environment, without any rule, the first time a job names it, so the
environments are created here before any deploy: each may deploy from its own branch only, and
prod waits for a reviewer who is not the person who triggered it. develop and main accept changes
through reviewed pull requests that passed the required checks only, and the workflows' three
variables are set here too. The provider authenticates with `GITHUB_TOKEN` (an administrator's token
when the bootstrap runs). What this cannot guarantee on its own (someone changes a setting by hand
later) the deploy's preflight (airline_bootstrap.preflight) checks on every run.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_github as github

from airline_bootstrap import naming
from airline_bootstrap.config import BootstrapConfig


def build(cfg: BootstrapConfig, variables: Mapping[str, pulumi.Input[str]]) -> None:
    """Environments with their branch policies and reviewers, branch protection, Actions variables."""
    owner, name = cfg.github_repository.split("/")
    provider = github.Provider("github", owner=owner)
    opts = pulumi.ResourceOptions(provider=provider)
    for env in cfg.environments:
        prod = env.name == "prod"
        environment = github.RepositoryEnvironment(
            f"environment-{env.name}",
            repository=name,
            environment=env.name,
            # Only the branches named by a policy below, not "any protected branch".
            deployment_branch_policy=github.RepositoryEnvironmentDeploymentBranchPolicyArgs(
                protected_branches=False, custom_branch_policies=True
            ),
            reviewers=[
                github.RepositoryEnvironmentReviewerArgs(
                    teams=list(cfg.prod_reviewer_teams), users=list(cfg.prod_reviewer_users)
                )
            ]
            if prod
            else None,
            prevent_self_review=prod,
            can_admins_bypass=not prod,
            opts=opts,
        )
        github.RepositoryEnvironmentDeploymentPolicy(
            f"environment-{env.name}-branch",
            repository=name,
            environment=environment.environment,
            branch_pattern=naming.DEPLOY_BRANCH[env.name],
            opts=opts,
        )
    for branch in naming.DEPLOY_BRANCHES:
        github.BranchProtection(
            f"protect-{branch}",
            repository_id=name,
            pattern=branch,
            enforce_admins=True,
            allows_deletions=False,
            allows_force_pushes=False,
            require_conversation_resolution=True,
            required_pull_request_reviews=[
                github.BranchProtectionRequiredPullRequestReviewArgs(
                    required_approving_review_count=1,
                    dismiss_stale_reviews=True,
                    require_last_push_approval=True,
                )
            ],
            required_status_checks=[
                github.BranchProtectionRequiredStatusCheckArgs(
                    strict=True, contexts=list(cfg.required_checks)
                )
            ],
            opts=opts,
        )
    for variable, value in variables.items():
        github.ActionsVariable(
            f"variable-{variable}", repository=name, variable_name=variable, value=value, opts=opts
        )
