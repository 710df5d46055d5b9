"""The delivery bootstrap program under Pulumi mocks, and its deployers against the main program.

Rendered with the same harness as the stacks (preview=False, so every apply ran). Which GitHub
jobs may act as each account is tested in test_trust.py, which permissions the roles carry in
test_deploy_permissions.py; here, where each identity's grants land.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
import yaml
from airline_bootstrap import naming, roles, trust
from airline_bootstrap.config import BootstrapConfig, ConfigError, Environment
from airline_platform.plan import MOCK_PROJECT_NUMBER, REPO_ROOT, STAND_IN_IMAGE, Plan, stack_config

from tests.platform.conftest import BOOTSTRAP

OPS = "airline-delivery"
REPO = "example-airline/airline-data-platform"
ENV_PROJECTS = {"dev": "airline-data-dev", "staging": "airline-data-staging", "prod": "airline-data-prod"}
PROJECT_IAM = "gcp:projects/iAMMember:IAMMember"
BASIC_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
SA_IAM = "gcp:serviceaccount/iAMMember:IAMMember"
RING = f"projects/{OPS}/locations/europe-west1/keyRings/{naming.KEY_RING}"


def of_type(plan: Plan, type_: str) -> list[dict[str, Any]]:
    return [r["inputs"] for r in plan.resources if r["type"] == type_]


def email(account_id: str) -> str:
    return naming.service_account_email(account_id, OPS)


def grants_of(plan: Plan, account_id: str) -> set[tuple[str, str, str]]:
    """(resource type, where, role) of every grant to one service account."""
    member = f"serviceAccount:{email(account_id)}"
    found = set()
    for r in plan.resources:
        inputs = r["inputs"]
        if inputs.get("member") == member:
            where = (
                inputs.get("project")
                or inputs.get("bucket")
                or inputs.get("cryptoKeyId")
                or inputs.get("serviceAccountId")
                or ""
            )
            found.add((r["type"], where, inputs["role"]))
    return found


def principals_of(plan: Plan, account_id: str) -> set[str]:
    sa = f"projects/{OPS}/serviceAccounts/{email(account_id)}"
    bindings = [b for b in of_type(plan, SA_IAM) if b["serviceAccountId"] == sa]
    assert all(b["role"] == roles.IMPERSONATION_ROLE for b in bindings)
    return {b["member"] for b in bindings}


def access(context: str) -> str:
    return naming.access_principal_set(MOCK_PROJECT_NUMBER, context)


def test_names_and_urns_are_unique(bootstrap: Plan) -> None:
    assert len({r["urn"] for r in bootstrap.resources}) == len(bootstrap.resources)


def test_no_keys_and_no_basic_roles(bootstrap: Plan) -> None:
    types = {r["type"] for r in bootstrap.resources}
    assert not {t for t in types if "serviceaccount/key" in t.lower() or "hmackey" in t.lower()}
    assert not [r for r in bootstrap.resources if r["inputs"].get("role") in BASIC_ROLES]


def test_state_buckets_and_keys_per_environment(bootstrap: Plan) -> None:
    scopes = [naming.BOOTSTRAP_SCOPE, "dev", "staging", "prod"]
    buckets = {b["name"]: b for b in of_type(bootstrap, "gcp:storage/bucket:Bucket")}
    assert set(buckets) == {naming.state_bucket(OPS, s) for s in scopes}
    for bucket in buckets.values():
        assert bucket["uniformBucketLevelAccess"] is True
        assert bucket["publicAccessPrevention"] == "enforced"
        assert bucket["versioning"] == {"enabled": True}
        assert bucket["forceDestroy"] is False
        assert bucket["project"] == OPS
    keys = of_type(bootstrap, "gcp:kms/cryptoKey:CryptoKey")
    assert sorted(k["name"] for k in keys) == sorted(scopes)
    assert {k["rotationPeriod"] for k in keys} == {"7776000s"}
    assert bootstrap.outputs["state_backends"] == {s: f"gs://{naming.state_bucket(OPS, s)}" for s in scopes}
    ring = f"projects/{OPS}/locations/europe-west1/keyRings/{naming.KEY_RING}"
    assert bootstrap.outputs["secrets_providers"] == {s: f"gcpkms://{ring}/cryptoKeys/{s}" for s in scopes}


def test_identity_provider_renders_the_trust_rules(bootstrap: Plan) -> None:
    (provider,) = of_type(bootstrap, "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider")
    assert provider["oidc"] == {"issuerUri": "https://token.actions.githubusercontent.com"}
    cfg = GOOD
    assert provider["attributeMapping"] == trust.attribute_mapping(cfg)
    assert provider["attributeCondition"] == trust.attribute_condition(cfg)
    assert bootstrap.outputs["github_variables"] == {
        "GCP_OPS_PROJECT": OPS,
        "GCP_REGION": "europe-west1",
        "GCP_WORKLOAD_IDENTITY_PROVIDER": naming.workload_identity_provider(MOCK_PROJECT_NUMBER),
    }


def test_each_identity_answers_to_exact_access_contexts(bootstrap: Plan) -> None:
    for env in ENV_PROJECTS:
        assert principals_of(bootstrap, naming.deployer(env)) == {access(trust.deploy(env))}
    for env in ("dev", "staging"):
        assert principals_of(bootstrap, naming.previewer(env)) == {
            access(trust.preview_on(naming.DEPLOY_BRANCH[env])),
            access(trust.PULL_REQUEST),
            access(trust.DRIFT),
        }
    assert principals_of(bootstrap, naming.previewer("prod")) == {
        access(trust.preview_on("main")),
        access(trust.DRIFT),
    }
    assert principals_of(bootstrap, naming.PUBLISHER) == {access(trust.PUBLISH)}
    # Nothing else may act as anyone: every impersonation binding is one of the above.
    members = {b["member"] for b in of_type(bootstrap, SA_IAM) if b["role"] == roles.IMPERSONATION_ROLE}
    assert members == {access(c.name) for c in trust.contexts(GOOD)}


@pytest.mark.parametrize("env", list(ENV_PROJECTS))
def test_a_deployer_reaches_its_own_environment_only(bootstrap: Plan, env: str) -> None:
    project = ENV_PROJECTS[env]
    runtime = naming.service_account_email(naming.RUNTIME_ACCOUNT, project)
    assert grants_of(bootstrap, naming.deployer(env)) == {
        *((PROJECT_IAM, project, r.role) for r in roles.DEPLOYER_ROLES),
        (PROJECT_IAM, project, roles.CLOUD_RUN_DEPLOYER.name(project)),
        (SA_IAM, f"projects/{project}/serviceAccounts/{runtime}", roles.RUNTIME_ACCOUNT_ROLE),
        (
            "gcp:storage/bucketIAMMember:BucketIAMMember",
            naming.state_bucket(OPS, env),
            roles.DEPLOYER_STATE_ROLE,
        ),
        (
            "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
            f"{RING}/cryptoKeys/{env}",
            roles.DEPLOYER_KEY_ROLE,
        ),
    }


@pytest.mark.parametrize("env", list(ENV_PROJECTS))
def test_a_previewer_reads_its_own_environment_only(bootstrap: Plan, env: str) -> None:
    project = ENV_PROJECTS[env]
    assert grants_of(bootstrap, naming.previewer(env)) == {
        *((PROJECT_IAM, project, r.role) for r in roles.PREVIEWER_ROLES),
        *((PROJECT_IAM, project, r.name(project)) for r in roles.PREVIEWER.custom_roles),
        (
            "gcp:storage/bucketIAMMember:BucketIAMMember",
            naming.state_bucket(OPS, env),
            roles.PREVIEWER_STATE_ROLE,
        ),
        (
            "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
            f"{RING}/cryptoKeys/{env}",
            roles.PREVIEWER_KEY_ROLE,
        ),
    }


def test_a_pull_request_reaches_no_prod_state_key_or_project(bootstrap: Plan) -> None:
    """Every account a pull request's token can become, and everything those accounts hold."""
    pr = access(trust.PULL_REQUEST)
    accounts = {
        b["serviceAccountId"].rsplit("/", 1)[1].split("@")[0]
        for b in of_type(bootstrap, SA_IAM)
        if b["member"] == pr
    }
    assert accounts == {naming.previewer("dev"), naming.previewer("staging")}
    prod = {ENV_PROJECTS["prod"], naming.state_bucket(OPS, "prod"), f"{RING}/cryptoKeys/prod"}
    reached = {where for account in accounts for _, where, _ in grants_of(bootstrap, account)}
    assert reached
    assert not reached & prod


def test_no_project_wide_service_account_roles(bootstrap: Plan) -> None:
    """Acting as an account is granted on that one account (the runtime's), never on a project."""
    project_roles = {r["role"] for r in of_type(bootstrap, PROJECT_IAM)}
    assert not {r for r in project_roles if r.startswith("roles/iam.")}
    assert "roles/run.admin" not in project_roles
    acts_as = [b for b in of_type(bootstrap, SA_IAM) if b["role"] == roles.RUNTIME_ACCOUNT_ROLE]
    assert sorted((b["serviceAccountId"], b["member"]) for b in acts_as) == sorted(
        (
            f"projects/{p}/serviceAccounts/{naming.service_account_email(naming.RUNTIME_ACCOUNT, p)}",
            f"serviceAccount:{email(naming.deployer(env))}",
        )
        for env, p in ENV_PROJECTS.items()
    )


def test_the_main_program_runs_as_the_account_the_bootstrap_creates(
    bootstrap: Plan, plans: dict[str, Plan]
) -> None:
    created = {
        (a["project"], a["accountId"]) for a in of_type(bootstrap, "gcp:serviceaccount/account:Account")
    }
    for env, project in ENV_PROJECTS.items():
        assert (project, naming.RUNTIME_ACCOUNT) in created
        (service,) = of_type(plans[env], "gcp:cloudrunv2/service:Service")
        assert service["template"]["serviceAccount"] == bootstrap.outputs["runtime_service_accounts"][env]
        # The main program creates no account of its own.
        assert not of_type(plans[env], "gcp:serviceaccount/account:Account")


def test_only_the_project_iam_admin_grant_is_conditioned_to_the_program_s_roles(bootstrap: Plan) -> None:
    conditioned = [r for r in of_type(bootstrap, PROJECT_IAM) if r.get("condition")]
    assert {r["role"] for r in conditioned} == {"roles/resourcemanager.projectIamAdmin"}
    assert len(conditioned) == len(ENV_PROJECTS)
    for grant in conditioned:
        assert grant["condition"]["expression"] == (
            "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', [])"
            ".hasOnly(['roles/bigquery.jobUser'])"
        )


def test_one_registry_written_by_ci_and_read_by_every_environment(bootstrap: Plan) -> None:
    (registry,) = of_type(bootstrap, "gcp:artifactregistry/repository:Repository")
    assert registry["project"] == OPS
    assert registry["dockerConfig"] == {"immutableTags": True}
    members = {
        (m["role"], m["member"])
        for m in of_type(bootstrap, "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember")
    }
    run_agent = f"serviceAccount:service-{MOCK_PROJECT_NUMBER}@serverless-robot-prod.iam.gserviceaccount.com"
    assert members == {
        (roles.PUBLISHER_REGISTRY_ROLE, f"serviceAccount:{email(naming.PUBLISHER)}"),
        (roles.PULLER_REGISTRY_ROLE, run_agent),
    }
    agents = of_type(bootstrap, "gcp:projects/serviceIdentity:ServiceIdentity")
    assert sorted(a["project"] for a in agents) == sorted(ENV_PROJECTS.values())
    # The offline plans' stand-in image lives where the bootstrap puts the registry.
    assert STAND_IN_IMAGE.split("@")[0] == bootstrap.outputs["image_repository"]


def test_the_deployer_may_grant_exactly_the_program_s_project_roles(plans: dict[str, Plan]) -> None:
    granted = {
        r["inputs"]["role"] for plan in plans.values() for r in plan.resources if r["type"] == PROJECT_IAM
    }
    assert granted == set(roles.GRANTABLE_PROJECT_ROLES)


def test_environments_come_from_the_main_stacks(bootstrap: Plan) -> None:
    projects = {r["inputs"]["project"] for r in bootstrap.resources if r["type"] == PROJECT_IAM}
    assert projects == set(ENV_PROJECTS.values())
    accounts = {
        (a["project"], a["accountId"]) for a in of_type(bootstrap, "gcp:serviceaccount/account:Account")
    }
    assert {p for p, _ in accounts} == {OPS, *ENV_PROJECTS.values()}


GOOD = BootstrapConfig(
    project=OPS,
    region="europe-west1",
    owner="data-platform",
    github_repository=REPO,
    github_repository_id="812345678",
    github_owner_id="91234567",
    github_default_branch="develop",
    environments=tuple(Environment(name, project) for name, project in ENV_PROJECTS.items()),
    prod_reviewer_teams=(4567890,),
    required_checks=("make test (lint, types, whole suite on the emulators)",),
)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"github_repository": "airline-data-platform"}, "githubRepository must be <owner>/<name>"),
        ({"github_repository_id": "example-org"}, "githubRepositoryId must be GitHub's numeric id"),
        ({"github_owner_id": ""}, "githubOwnerId must be GitHub's numeric id"),
        ({"project": "Airline"}, "gcp:project must be a project id"),
        ({"project": "airline-data-prod"}, "must not be an environment's project"),
        ({"environments": GOOD.environments[:2]}, "need the environments"),
        (
            {
                "environments": (
                    Environment("dev", "p-one1"),
                    Environment("staging", "p-one1"),
                    GOOD.environments[2],
                )
            },
            "each environment needs its own project",
        ),
        ({"github_default_branch": "main branch"}, "githubDefaultBranch must be a branch name"),
        ({"prod_reviewer_teams": ()}, "prodReviewers needs at least one team or user id"),
        ({"prod_reviewer_users": tuple(range(1, 8))}, "at most 6 teams and 6 users"),
        ({"required_checks": ()}, "requiredChecks must name the status checks"),
    ],
)
def test_bad_configuration_is_rejected(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(GOOD, **changes)


@pytest.mark.parametrize("environment", ENV_PROJECTS)
def test_each_deployer_may_publish_the_canary_of_its_stack(environment: str) -> None:
    """The deploy workflow's canary POSTs an event as the deployer: the stack must allow it."""
    delivery = stack_config("delivery", BOOTSTRAP.stacks_dir)["gcp:project"]
    deployer = naming.service_account_email(naming.deployer(environment), delivery)
    publishers = json.loads(stack_config(environment)["airline-data-platform:publishers"])
    assert f"serviceAccount:{deployer}" in publishers


# --- GitHub: the settings the pipeline relies on are created by the program -----------------


def test_every_environment_deploys_from_its_own_branch_only(bootstrap: Plan) -> None:
    environments = {
        e["environment"]: e
        for e in of_type(bootstrap, "github:index/repositoryEnvironment:RepositoryEnvironment")
    }
    assert set(environments) == set(ENV_PROJECTS)
    for environment in environments.values():
        assert environment["repository"] == "airline-data-platform"
        assert environment["deploymentBranchPolicy"] == {
            "customBranchPolicies": True,
            "protectedBranches": False,
        }
    policies = {
        (p["environment"], p["branchPattern"])
        for p in of_type(
            bootstrap,
            "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy",
        )
    }
    assert policies == {("dev", "develop"), ("staging", "main"), ("prod", "main")}


def test_prod_waits_for_a_reviewer_who_did_not_trigger_it(bootstrap: Plan) -> None:
    environments = {
        e["environment"]: e
        for e in of_type(bootstrap, "github:index/repositoryEnvironment:RepositoryEnvironment")
    }
    prod = environments["prod"]
    assert prod["reviewers"] == [{"teams": [4567890], "users": []}]
    assert prod["preventSelfReview"] is True
    assert prod["canAdminsBypass"] is False
    assert not environments["dev"].get("reviewers")


def test_deploy_branches_take_reviewed_and_checked_pull_requests_only(bootstrap: Plan) -> None:
    rules = {r["pattern"]: r for r in of_type(bootstrap, "github:index/branchProtection:BranchProtection")}
    assert set(rules) == set(naming.DEPLOY_BRANCHES)
    checks = stack_config("delivery", BOOTSTRAP.stacks_dir)["airline-delivery-bootstrap:requiredChecks"]
    for rule in rules.values():
        assert rule["enforceAdmins"] is True
        assert rule["allowsForcePushes"] is False
        assert rule["allowsDeletions"] is False
        (reviews,) = rule["requiredPullRequestReviews"]
        assert reviews["requiredApprovingReviewCount"] >= 1
        assert reviews["requireLastPushApproval"] is True
        (status,) = rule["requiredStatusChecks"]
        assert status["strict"] is True
        assert status["contexts"] == json.loads(checks)


def test_required_checks_are_jobs_that_pull_requests_run() -> None:
    """A required check no workflow reports would block every merge; a renamed job must update it."""
    names = set()
    for path in (REPO_ROOT / ".github" / "workflows").glob("*.yml"):
        workflow = yaml.safe_load(path.read_text())
        triggers = workflow.get(True) or workflow.get("on") or {}
        if "pull_request" in triggers:
            for job_id, job in workflow["jobs"].items():
                stacks = (job.get("strategy") or {}).get("matrix", {}).get("stack", [""])
                names |= {job.get("name", job_id).replace("${{ matrix.stack }}", s) for s in stacks}
    checks = json.loads(
        stack_config("delivery", BOOTSTRAP.stacks_dir)["airline-delivery-bootstrap:requiredChecks"]
    )
    assert set(checks) <= names, sorted(set(checks) - names)


def test_the_workflows_variables_are_set_by_the_program(bootstrap: Plan) -> None:
    variables = {
        v["variableName"]: v["value"]
        for v in of_type(bootstrap, "github:index/actionsVariable:ActionsVariable")
    }
    assert variables == bootstrap.outputs["github_variables"]
