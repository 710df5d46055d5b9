"""The delivery bootstrap program under Pulumi mocks, and its deployers against the main program.

Rendered with the same harness as the stacks (preview=False, so every apply ran). The coverage
tests tie the two programs together: every resource type the main program declares must be
manageable by the deployer and readable by the previewer, and no role may be granted that
nothing in the program needs.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from airline_bootstrap import naming, roles
from airline_bootstrap.config import BootstrapConfig, ConfigError, Environment
from airline_platform.plan import (
    MOCK_PROJECT_NUMBER,
    REPO_ROOT,
    STAND_IN_IMAGE,
    Plan,
    Program,
    render,
    stack_config,
)

BOOTSTRAP = Program(
    entry=REPO_ROOT / "platform" / "bootstrap" / "__main__.py",
    project="airline-delivery-bootstrap",
    stacks_dir=REPO_ROOT / "platform" / "bootstrap",
    deploy_time_config={},
)
OPS = "airline-delivery"
REPO = "example-airline/airline-data-platform"
ENV_PROJECTS = {"dev": "airline-data-dev", "staging": "airline-data-staging", "prod": "airline-data-prod"}
PROJECT_IAM = "gcp:projects/iAMMember:IAMMember"
BASIC_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}


@pytest.fixture(scope="module")
def bootstrap() -> Plan:
    return render("delivery", program=BOOTSTRAP)


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
            where = inputs.get("project") or inputs.get("bucket") or inputs.get("cryptoKeyId") or ""
            found.add((r["type"], where, inputs["role"]))
    return found


def principals_of(plan: Plan, account_id: str) -> set[str]:
    sa = f"projects/{OPS}/serviceAccounts/{email(account_id)}"
    bindings = of_type(plan, "gcp:serviceaccount/iAMMember:IAMMember")
    assert all(b["role"] == roles.IMPERSONATION_ROLE for b in bindings)
    return {b["member"] for b in bindings if b["serviceAccountId"] == sa}


def subject(context: str) -> str:
    return naming.github_principal(MOCK_PROJECT_NUMBER, f"repo:{REPO}:{context}")


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


def test_identity_provider_trusts_only_this_repository(bootstrap: Plan) -> None:
    (provider,) = of_type(bootstrap, "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider")
    assert provider["oidc"] == {"issuerUri": "https://token.actions.githubusercontent.com"}
    assert provider["attributeMapping"]["google.subject"] == "assertion.sub"
    condition = provider["attributeCondition"]
    for clause in (
        "assertion.repository_id == '812345678'",
        "assertion.repository_owner_id == '91234567'",
        f"assertion.repository == '{REPO}'",
    ):
        assert clause in condition
    assert condition.count("&&") == 2  # all three must hold
    assert bootstrap.outputs["github_variables"] == {
        "GCP_OPS_PROJECT": OPS,
        "GCP_REGION": "europe-west1",
        "GCP_WORKLOAD_IDENTITY_PROVIDER": naming.workload_identity_provider(MOCK_PROJECT_NUMBER),
    }


def test_each_identity_answers_to_exact_github_subjects(bootstrap: Plan) -> None:
    for env in ENV_PROJECTS:
        assert principals_of(bootstrap, naming.deployer(env)) == {subject(f"environment:{env}")}
    assert principals_of(bootstrap, naming.PREVIEWER) == {
        subject("pull_request"),
        subject("ref:refs/heads/develop"),
    }
    assert principals_of(bootstrap, naming.PUBLISHER) == {
        subject("ref:refs/heads/develop"),
        subject("ref:refs/heads/main"),
    }
    members = {b["member"] for b in of_type(bootstrap, "gcp:serviceaccount/iAMMember:IAMMember")}
    assert not [m for m in members if m.startswith("principalSet://")]  # no wildcard over the pool


@pytest.mark.parametrize("env", list(ENV_PROJECTS))
def test_a_deployer_reaches_its_own_environment_only(bootstrap: Plan, env: str) -> None:
    ring = f"projects/{OPS}/locations/europe-west1/keyRings/{naming.KEY_RING}"
    assert grants_of(bootstrap, naming.deployer(env)) == {
        *((PROJECT_IAM, ENV_PROJECTS[env], r.role) for r in roles.DEPLOYER_ROLES),
        (
            "gcp:storage/bucketIAMMember:BucketIAMMember",
            naming.state_bucket(OPS, env),
            roles.DEPLOYER_STATE_ROLE,
        ),
        (
            "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
            f"{ring}/cryptoKeys/{env}",
            roles.DEPLOYER_KEY_ROLE,
        ),
    }


def test_only_the_project_iam_admin_grant_is_conditioned_to_the_program_s_roles(bootstrap: Plan) -> None:
    conditioned = [r for r in of_type(bootstrap, PROJECT_IAM) if r.get("condition")]
    assert {r["role"] for r in conditioned} == {"roles/resourcemanager.projectIamAdmin"}
    assert len(conditioned) == len(ENV_PROJECTS)
    for grant in conditioned:
        assert grant["condition"]["expression"] == (
            "api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', [])"
            ".hasOnly(['roles/bigquery.jobUser'])"
        )


def test_the_previewer_only_reads(bootstrap: Plan) -> None:
    granted = {role for _, _, role in grants_of(bootstrap, naming.PREVIEWER)}
    assert granted == {r.role for r in roles.PREVIEWER_ROLES} | {
        roles.PREVIEWER_STATE_ROLE,
        roles.PREVIEWER_KEY_ROLE,
    }
    writes = ("admin", "editor", "owner", "user", "writer", "encrypter", "creator")
    assert not [role for role in granted if any(word in role.lower() for word in writes)], granted


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


@pytest.mark.parametrize(
    "grants", [roles.DEPLOYER_ROLES, roles.PREVIEWER_ROLES], ids=["deployer", "previewer"]
)
def test_roles_cover_exactly_what_the_program_declares(
    plans: dict[str, Plan], grants: tuple[roles.Role, ...]
) -> None:
    # Component resources (airline:platform:...) only group others; the cloud never sees them.
    declared = {
        r["type"] for plan in plans.values() for r in plan.resources if not r["type"].startswith("airline:")
    }
    uncovered = {t for t in declared if not any(t.startswith(p) for g in grants for p in g.covers)}
    assert not uncovered, f"no role lets CI manage or read {sorted(uncovered)}: add one to roles.py"
    unused = [g.role for g in grants if not any(t.startswith(p) for p in g.covers for t in declared)]
    assert not unused, f"{unused} cover nothing the program declares: remove them"


def test_the_deployer_may_grant_exactly_the_program_s_project_roles(plans: dict[str, Plan]) -> None:
    granted = {
        r["inputs"]["role"] for plan in plans.values() for r in plan.resources if r["type"] == PROJECT_IAM
    }
    assert granted == set(roles.GRANTABLE_PROJECT_ROLES)


def test_environments_come_from_the_main_stacks(bootstrap: Plan) -> None:
    projects = {r["inputs"]["project"] for r in bootstrap.resources if r["type"] == PROJECT_IAM}
    assert projects == set(ENV_PROJECTS.values())


GOOD = BootstrapConfig(
    project=OPS,
    region="europe-west1",
    owner="data-platform",
    github_repository=REPO,
    github_repository_id="812345678",
    github_owner_id="91234567",
    github_default_branch="develop",
    environments=tuple(Environment(name, project) for name, project in ENV_PROJECTS.items()),
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
