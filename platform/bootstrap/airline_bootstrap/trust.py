"""Which GitHub Actions jobs may exchange their OIDC token, and for what: the rules rendered into CEL.

Each `Context` is one kind of job, pinned on the claims GitHub puts in every token
(https://docs.github.com/en/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect):
the event, the ref, the workflow file the job runs (`job_workflow_ref`, which for a reusable
workflow names the called file) and the GitHub environment. The provider's attribute mapping
turns a token into one custom attribute, `attribute.access`, naming the context it matches (or
`none`); the attribute condition refuses any token of another repository, of a self-hosted runner,
or matching no context; and each service account trusts the principal set
`.../attribute.access/<context>` of exactly the contexts it serves. This is the shape Google
documents for deployment pipelines: an attribute condition on the provider plus principalSet
bindings on mapped attributes
(https://cloud.google.com/iam/docs/workload-identity-federation-with-deployment-pipelines).

The contexts are pairwise disjoint (tests/platform/test_trust.py proves it), so a token matches
at most one and a single-valued attribute is enough.
"""

from __future__ import annotations

from dataclasses import dataclass

from airline_bootstrap import naming
from airline_bootstrap.config import BootstrapConfig

ACCESS_ATTRIBUTE = "attribute.access"
NO_ACCESS = "none"
# The documented limit of an attribute condition; the mapping is held to the same budget.
MAX_EXPRESSION = 4096
# Events that run the deploy workflows' own code from a protected branch. `pull_request_target`
# and `workflow_run` also carry a protected branch's ref, so they are left out on purpose.
BRANCH_EVENTS = ("push", "workflow_dispatch")


@dataclass(frozen=True)
class Context:
    """One kind of job that may get a Google credential: every claim below must match."""

    name: str  # the value of attribute.access for such a token
    events: tuple[str, ...]
    workflows: tuple[str, ...]  # files under .github/workflows, at the token's own ref
    refs: tuple[str, ...] = ()  # exact refs, or
    ref_prefix: str = ""  # a prefix (pull requests: refs/pull/<n>/merge)
    environment: str | None = None  # the GitHub environment; None: the job runs in none

    def clauses(self, repository: str) -> list[str]:
        refs = (
            f"assertion.ref.startsWith({_quote(self.ref_prefix)})"
            if self.ref_prefix
            else f"assertion.ref in {_list(self.refs)}"
        )
        workflows = ", ".join(
            f"{_quote(f'{repository}/.github/workflows/{w}@')} + assertion.ref" for w in self.workflows
        )
        environment = (
            f"has(assertion.environment) && assertion.environment == {_quote(self.environment)}"
            if self.environment
            else "!has(assertion.environment)"
        )
        return [
            f"assertion.event_name in {_list(self.events)}",
            refs,
            f"assertion.job_workflow_ref in [{workflows}]",
            environment,
        ]


PULL_REQUEST = "pull-request"
DRIFT = "drift"
PUBLISH = "publish-image"


def deploy(environment: str) -> str:
    return f"deploy-{environment}"


def preview_on(branch: str) -> str:
    """deploy-stack.yml's preview job on a deploy branch, before the update (and prod's approval)."""
    return f"preview-on-{branch}"


def contexts(cfg: BootstrapConfig) -> tuple[Context, ...]:
    """Every job of the delivery workflows that talks to Google Cloud."""
    default = f"refs/heads/{cfg.github_default_branch}"
    return (
        *(
            Context(
                deploy(env.name),
                BRANCH_EVENTS,
                (naming.DEPLOY_STACK_WORKFLOW,),
                refs=(f"refs/heads/{naming.DEPLOY_BRANCH[env.name]}",),
                environment=env.name,
            )
            for env in cfg.environments
        ),
        # The preview before each update runs in no environment, from the protected branch only.
        # Its token does not say which stack it previews, so on main it may read staging or prod.
        *(
            Context(
                preview_on(branch),
                BRANCH_EVENTS,
                (naming.DEPLOY_STACK_WORKFLOW,),
                refs=(f"refs/heads/{branch}",),
            )
            for branch in naming.DEPLOY_BRANCHES
        ),
        # A pull request runs its own version of the workflow: these tokens reach dev and staging only.
        Context(PULL_REQUEST, ("pull_request",), (naming.PREVIEW_WORKFLOW,), ref_prefix="refs/pull/"),
        Context(DRIFT, ("schedule", "workflow_dispatch"), (naming.DRIFT_WORKFLOW,), refs=(default,)),
        Context(
            PUBLISH,
            BRANCH_EVENTS,
            (naming.DEPLOY_WORKFLOW,),
            refs=tuple(f"refs/heads/{b}" for b in naming.DEPLOY_BRANCHES),
        ),
    )


def access_mapping(cfg: BootstrapConfig) -> str:
    """CEL for attribute.access: the name of the first (and only) context the token matches."""
    expression = _quote(NO_ACCESS)
    for context in reversed(contexts(cfg)):
        condition = " && ".join(context.clauses(cfg.github_repository))
        expression = f"({condition}) ? {_quote(context.name)} : {expression}"
    return expression


def attribute_condition(cfg: BootstrapConfig) -> str:
    """CEL the provider checks first: this repository (numeric ids too), GitHub's runners, a context."""
    return " && ".join(
        (
            f"assertion.repository_id == {_quote(cfg.github_repository_id)}",
            f"assertion.repository_owner_id == {_quote(cfg.github_owner_id)}",
            f"assertion.repository == {_quote(cfg.github_repository)}",
            "assertion.runner_environment == 'github-hosted'",
            f"{ACCESS_ATTRIBUTE} != {_quote(NO_ACCESS)}",
        )
    )


def attribute_mapping(cfg: BootstrapConfig) -> dict[str, str]:
    """google.subject keeps GitHub's subject for audit logs; the claims are mapped for the same reason."""
    return {
        "google.subject": "assertion.sub",
        "attribute.repository_id": "assertion.repository_id",
        "attribute.ref": "assertion.ref",
        "attribute.job_workflow_ref": "assertion.job_workflow_ref",
        ACCESS_ATTRIBUTE: access_mapping(cfg),
    }


def _quote(value: str) -> str:
    if "'" in value or "\\" in value:
        raise ValueError(f"refusing to quote {value!r} into CEL")
    return f"'{value}'"


def _list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(_quote(v) for v in values) + "]"
