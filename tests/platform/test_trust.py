"""Which GitHub tokens become which service account, evaluated with a CEL implementation.

The provider's rendered attribute mapping and condition run through cel-python (an implementation
of Google's Common Expression Language) on GitHub OIDC claim sets shaped like GitHub's documented
example token; the accounts a token becomes are then read from the rendered IAM bindings. Each
legitimate job gets exactly its accounts, and every single altered claim (another branch,
workflow, event, environment, repository or runner) loses them: above all, no token outside
deploy-stack.yml on the environment's branch, in its GitHub environment, becomes a deployer.
"""

from __future__ import annotations

import itertools
from typing import Any

import celpy
import pytest
from airline_bootstrap import naming, trust
from airline_platform.plan import Plan

from tests.platform.test_bootstrap import GOOD, SA_IAM, of_type

REPO = GOOD.github_repository


def claims(ref: str, workflow: str, event: str = "push", environment: str | None = None) -> dict[str, str]:
    """A GitHub Actions OIDC token's claims (the example token in GitHub's OIDC reference)."""
    token = {
        "iss": naming.GITHUB_ISSUER,
        "sub": f"repo:{REPO}:" + (f"environment:{environment}" if environment else f"ref:{ref}"),
        "aud": "https://iam.googleapis.com/",
        "ref": ref,
        "ref_type": "branch",
        "event_name": event,
        "repository": REPO,
        "repository_id": GOOD.github_repository_id,
        "repository_owner": REPO.split("/")[0],
        "repository_owner_id": GOOD.github_owner_id,
        "repository_visibility": "private",
        "workflow_ref": f"{REPO}/.github/workflows/{naming.DEPLOY_WORKFLOW}@{ref}",
        "job_workflow_ref": f"{REPO}/.github/workflows/{workflow}@{ref}",
        "runner_environment": "github-hosted",
        "actor": "octocat",
    }
    if environment:
        token["environment"] = environment
    return token


MAIN, DEVELOP = "refs/heads/main", "refs/heads/develop"
# Every job that legitimately talks to Google Cloud, and the accounts it must get.
LEGITIMATE = {
    "deploy dev": (claims(DEVELOP, "deploy-stack.yml", environment="dev"), {"deployer-dev"}),
    "deploy staging": (claims(MAIN, "deploy-stack.yml", environment="staging"), {"deployer-staging"}),
    "deploy prod": (claims(MAIN, "deploy-stack.yml", environment="prod"), {"deployer-prod"}),
    "redeploy prod by hand": (
        claims(MAIN, "deploy-stack.yml", "workflow_dispatch", environment="prod"),
        {"deployer-prod"},
    ),
    # deploy-stack.yml's preview job runs in no environment: on main it previews staging or prod.
    "preview before dev's update": (claims(DEVELOP, "deploy-stack.yml"), {"previewer-dev"}),
    "preview before staging's or prod's update": (
        claims(MAIN, "deploy-stack.yml"),
        {"previewer-staging", "previewer-prod"},
    ),
    "preview before a rollback": (
        claims(MAIN, "deploy-stack.yml", "workflow_dispatch"),
        {"previewer-staging", "previewer-prod"},
    ),
    "pull request preview": (
        claims("refs/pull/42/merge", "preview.yml", "pull_request"),
        {"previewer-dev", "previewer-staging"},
    ),
    "nightly drift": (
        claims(DEVELOP, "drift.yml", "schedule"),
        {"previewer-dev", "previewer-staging", "previewer-prod"},
    ),
    "image from develop": (claims(DEVELOP, "deploy.yml"), {"image-publisher"}),
    "image from main": (claims(MAIN, "deploy.yml"), {"image-publisher"}),
}
# One claim changed at a time to what an attacker controls or a mistake produces.
ALTERATIONS: dict[str, Any] = {
    "ref": ["refs/heads/feature/x", "refs/heads/mainx", "refs/tags/v1", "refs/pull/42/merge"],
    "job_workflow_ref": [
        f"{REPO}/.github/workflows/evil.yml@refs/heads/main",
        f"{REPO}/.github/workflows/deploy-stack.yml@refs/heads/feature/x",
        "fork-owner/airline-data-platform/.github/workflows/deploy-stack.yml@refs/heads/main",
    ],
    "event_name": ["pull_request_target", "workflow_run", "pull_request"],
    "environment": ["prod-copy", None],
    "repository": ["fork-owner/airline-data-platform"],
    "repository_id": ["999"],
    "repository_owner_id": ["999"],
    "runner_environment": ["self-hosted"],
}


@pytest.fixture(scope="module")
def exchange(bootstrap: Plan) -> Any:
    (provider,) = of_type(bootstrap, "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider")
    env = celpy.Environment()
    mapping = {k: env.program(env.compile(v)) for k, v in provider["attributeMapping"].items()}
    condition = env.program(env.compile(provider["attributeCondition"]))
    trusted: dict[str, set[str]] = {}
    for binding in of_type(bootstrap, SA_IAM):
        if binding["member"].startswith("principalSet://"):
            account = binding["serviceAccountId"].rsplit("/", 1)[1].split("@")[0]
            trusted.setdefault(binding["member"], set()).add(account)

    def accounts(token: dict[str, Any]) -> set[str]:
        """The service accounts a token can be exchanged for (empty: refused)."""
        assertion = {"assertion": celpy.json_to_cel({k: v for k, v in token.items() if v is not None})}
        attributes = {key.split(".", 1)[1]: program.evaluate(assertion) for key, program in mapping.items()}
        access = attributes["access"]
        assert isinstance(access, str), f"the mapping failed: {access!r}"
        allowed = condition.evaluate({**assertion, "attribute": celpy.json_to_cel(attributes)})
        if not (isinstance(allowed, celpy.celtypes.BoolType) and allowed):
            return set()  # refused, or the condition failed to evaluate
        return trusted.get(naming.access_principal_set("123456789012", access), set())

    return accounts


@pytest.mark.parametrize("job", LEGITIMATE)
def test_each_legitimate_job_gets_exactly_its_accounts(exchange: Any, job: str) -> None:
    token, expected = LEGITIMATE[job]
    assert exchange(token) == expected


def altered(job: str, claim: str, value: Any) -> dict[str, Any]:
    """The job's token with one claim changed (None: the claim left out)."""
    return {k: v for k, v in {**LEGITIMATE[job][0], claim: value}.items() if v is not None}


@pytest.mark.parametrize(
    ("job", "claim", "value"),
    [
        (job, claim, value)
        for job in LEGITIMATE
        for claim, values in ALTERATIONS.items()
        for value in values
        if altered(job, claim, value) != LEGITIMATE[job][0]
    ],
)
def test_any_altered_claim_loses_the_accounts(exchange: Any, job: str, claim: str, value: Any) -> None:
    token = altered(job, claim, value)

    # The contexts are disjoint: the altered token is either another legitimate job's (on every
    # claim the rules read), or nothing.
    def seen(t: dict[str, Any]) -> dict[str, Any]:
        return {k: t.get(k) for k in ALTERATIONS}

    other = [accounts for other, accounts in LEGITIMATE.values() if seen(other) == seen(token)]
    assert exchange(token) == (other[0] if other else set())


DEPLOYERS = {naming.deployer(e.name) for e in GOOD.environments}


@pytest.mark.parametrize(
    "token",
    [
        claims("refs/heads/feature/x", "deploy-stack.yml", environment="prod"),  # a branch naming prod
        claims("refs/heads/feature/x", "deploy.yml"),  # a branch's image
        claims("refs/pull/7/merge", "preview.yml", "pull_request", environment="prod"),
        claims("refs/pull/7/merge", "deploy-stack.yml", "pull_request", environment="prod"),
        claims(MAIN, "deploy-stack.yml", "pull_request_target", environment="prod"),  # a fork's PR, base ref
        claims(MAIN, "preview.yml", "push", environment="prod"),  # another workflow on main
        claims(MAIN, "drift.yml", "schedule", environment="prod"),
        claims(DEVELOP, "deploy-stack.yml", environment="prod"),  # prod from develop
        claims(DEVELOP, "deploy-stack.yml", environment="staging"),
        claims(MAIN, "deploy-stack.yml", environment="dev"),  # dev from main
        {
            **claims(MAIN, "deploy-stack.yml", environment="prod"),
            "repository": "fork-owner/airline-data-platform",
            "repository_id": "999",
            "repository_owner_id": "998",
        },
    ],
)
def test_no_other_branch_workflow_event_or_fork_becomes_a_deployer(
    exchange: Any, token: dict[str, str]
) -> None:
    assert not exchange(token) & DEPLOYERS
    assert "previewer-prod" not in exchange(token)


def test_the_contexts_are_pairwise_disjoint() -> None:
    """A token matches at most one context, so the single-valued attribute.access is enough."""

    def refs_overlap(a: trust.Context, b: trust.Context) -> bool:
        if a.ref_prefix and b.ref_prefix:
            return a.ref_prefix.startswith(b.ref_prefix) or b.ref_prefix.startswith(a.ref_prefix)
        if a.ref_prefix or b.ref_prefix:
            prefix, exact = (a, b) if a.ref_prefix else (b, a)
            return any(ref.startswith(prefix.ref_prefix) for ref in exact.refs)
        return bool(set(a.refs) & set(b.refs))

    for a, b in itertools.combinations(trust.contexts(GOOD), 2):
        overlap = (
            set(a.events) & set(b.events)
            and set(a.workflows) & set(b.workflows)
            and a.environment == b.environment
            and refs_overlap(a, b)
        )
        assert not overlap, (a.name, b.name)


def test_the_expressions_fit_google_s_limit() -> None:
    assert len(trust.attribute_condition(GOOD)) <= trust.MAX_EXPRESSION
    assert len(trust.access_mapping(GOOD)) <= trust.MAX_EXPRESSION
