"""Every permission the deploy needs is held through the roles the bootstrap grants, and no more reach.

`NEEDS` says, for each resource type the main program declares, which permissions managing it
takes (create, update, delete) and which reading it takes (what `pulumi preview`, `refresh` and
drift call); a new resource type fails here until someone writes its line. The permissions of
predefined roles come from Google's reference (tests/platform/data/iam_roles.json, from
https://cloud.google.com/iam/docs/roles-permissions), those of custom roles from the rendered
bootstrap. Then: each deployer holds every need of its environment, each previewer every read
and no write, and no identity holds a permission that acts as, mints tokens for, or grants an
account, except the deployer's actAs on its own environment's runtime account.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airline_bootstrap import naming, roles
from airline_platform.plan import Plan

from tests.platform.test_bootstrap import ENV_PROJECTS, OPS, PROJECT_IAM, RING, SA_IAM, email, of_type

ROLE_DATA = json.loads((Path(__file__).parent / "data" / "iam_roles.json").read_text())
ROLE_PERMISSIONS: dict[str, set[str]] = {role: set(p) for role, p in ROLE_DATA["roles"].items()}

# (write, read) permissions per resource type of the main program, per the REST method each
# provider operation calls. Pub/Sub subscriptions also attach to their topic.
NEEDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "gcp:projects/service:Service": (("serviceusage.services.enable",), ("serviceusage.services.get",)),
    # Service Usage's generateServiceIdentity names no permission of its own in its reference;
    # it is part of enabling a service, so the deployer's enable right is what it takes.
    "gcp:projects/serviceIdentity:ServiceIdentity": (
        ("serviceusage.services.enable",),
        ("serviceusage.services.get",),
    ),
    "gcp:projects/iAMMember:IAMMember": (
        ("resourcemanager.projects.setIamPolicy",),
        ("resourcemanager.projects.getIamPolicy",),
    ),
    "gcp:bigquery/dataset:Dataset": (
        ("bigquery.datasets.create", "bigquery.datasets.update", "bigquery.datasets.delete"),
        ("bigquery.datasets.get",),
    ),
    "gcp:bigquery/datasetIamMember:DatasetIamMember": (
        ("bigquery.datasets.setIamPolicy",),
        ("bigquery.datasets.getIamPolicy",),
    ),
    "gcp:bigquery/table:Table": (
        ("bigquery.tables.create", "bigquery.tables.update", "bigquery.tables.delete"),
        ("bigquery.tables.get",),
    ),
    "gcp:pubsub/topic:Topic": (
        ("pubsub.topics.create", "pubsub.topics.update", "pubsub.topics.delete"),
        ("pubsub.topics.get",),
    ),
    "gcp:pubsub/topicIAMMember:TopicIAMMember": (
        ("pubsub.topics.setIamPolicy",),
        ("pubsub.topics.getIamPolicy",),
    ),
    "gcp:pubsub/subscription:Subscription": (
        (
            "pubsub.subscriptions.create",
            "pubsub.subscriptions.update",
            "pubsub.subscriptions.delete",
            "pubsub.topics.attachSubscription",
        ),
        ("pubsub.subscriptions.get",),
    ),
    "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember": (
        ("pubsub.subscriptions.setIamPolicy",),
        ("pubsub.subscriptions.getIamPolicy",),
    ),
    "gcp:cloudrunv2/service:Service": (
        ("run.services.create", "run.services.update", "run.services.delete"),
        ("run.services.get", "run.operations.get"),  # updates are long-running operations
    ),
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": (
        ("run.services.setIamPolicy",),
        ("run.services.getIamPolicy",),
    ),
    "gcp:logging/metric:Metric": (
        ("logging.logMetrics.create", "logging.logMetrics.update", "logging.logMetrics.delete"),
        ("logging.logMetrics.get",),
    ),
    **{
        f"gcp:monitoring/{kind}:{kind[0].upper()}{kind[1:]}": (
            tuple(f"monitoring.{collection}.{verb}" for verb in ("create", "update", "delete")),
            (f"monitoring.{collection}.get",),
        )
        for kind, collection in (
            ("alertPolicy", "alertPolicies"),
            ("customService", "services"),
            ("genericService", "services"),
            ("dashboard", "dashboards"),
            ("notificationChannel", "notificationChannels"),
            ("slo", "slos"),
            ("uptimeCheckConfig", "uptimeCheckConfigs"),
        )
    },
}
# After each update the deploy job calls the service (Schemathesis, the canary) and publishes;
# `make conformance` then reads the stack back (airline_platform/conformance.py, one call each).
AFTER_UPDATE = (
    "run.routes.invoke",
    "pubsub.topics.publish",
    "monitoring.timeSeries.list",
    "monitoring.metricDescriptors.get",
    "monitoring.alertPolicies.get",
    "monitoring.uptimeCheckConfigs.get",
    "monitoring.dashboards.get",
    "pubsub.subscriptions.get",
)
STATE_WRITE = ("storage.objects.create", "storage.objects.delete")
STATE_READ = ("storage.objects.get", "storage.objects.list")
KEY_WRITE = ("cloudkms.cryptoKeyVersions.useToEncrypt",)
KEY_READ = ("cloudkms.cryptoKeyVersions.useToDecrypt",)

# Permissions that use another identity or hand out access: a principal holding one can become,
# or make itself, an account it was not meant to be (Service Account User / Token Creator /
# Workload Identity User carry the first group; the rest change who holds what, or run code as an
# existing workload's account without the actAs check a deploy makes).
REACHES_ANOTHER_ACCOUNT = {
    "iam.serviceAccounts.actAs",
    "iam.serviceAccounts.getAccessToken",
    "iam.serviceAccounts.getOpenIdToken",
    "iam.serviceAccounts.implicitDelegation",
    "iam.serviceAccounts.signBlob",
    "iam.serviceAccounts.signJwt",
    "iam.serviceAccounts.setIamPolicy",
    "iam.serviceAccountKeys.create",
    "iam.roles.create",
    "iam.roles.update",
    "resourcemanager.projects.setIamPolicy",
    "run.jobs.run",
    "run.jobs.runWithOverrides",
}


def reaches_another_account(permission: str) -> bool:
    return permission in REACHES_ANOTHER_ACCOUNT or permission.endswith((".sshRoot", ".sshRead"))


def holdings(bootstrap: Plan, account_id: str) -> list[tuple[str, str, set[str], dict[str, str] | None]]:
    """(resource type, where, permissions, IAM condition) of every grant to one account."""
    custom = {
        f"projects/{r['project']}/roles/{r['roleId']}": set(r["permissions"])
        for r in of_type(bootstrap, "gcp:projects/iAMCustomRole:IAMCustomRole")
    }
    member = f"serviceAccount:{email(account_id)}"
    found = []
    for r in bootstrap.resources:
        inputs = r["inputs"]
        if inputs.get("member") != member:
            continue
        role = inputs["role"]
        assert role in ROLE_PERMISSIONS or role in custom, (
            f"{role} is granted but its permissions are unknown"
        )
        where = next(
            inputs[k]
            for k in ("project", "bucket", "cryptoKeyId", "serviceAccountId", "repository")
            if k in inputs
        )
        found.append((r["type"], where, ROLE_PERMISSIONS.get(role) or custom[role], inputs.get("condition")))
    return found


def held_on(bootstrap: Plan, account_id: str, where: str) -> set[str]:
    return {p for _, w, permissions, _ in holdings(bootstrap, account_id) if w == where for p in permissions}


def test_every_resource_type_of_the_program_has_its_needs_written_down(plans: dict[str, Plan]) -> None:
    declared = {r["type"] for plan in plans.values() for r in plan.resources if r["type"].startswith("gcp:")}
    assert declared <= set(NEEDS), f"say what managing {sorted(declared - set(NEEDS))} takes"
    assert set(NEEDS) <= declared, f"{sorted(set(NEEDS) - declared)} are no longer in the program"


@pytest.mark.parametrize("env", list(ENV_PROJECTS))
def test_the_deployer_holds_every_permission_the_deploy_needs(
    bootstrap: Plan, plans: dict[str, Plan], env: str
) -> None:
    types = {r["type"] for r in plans[env].resources if r["type"].startswith("gcp:")}
    needed = {p for t in types for side in NEEDS[t] for p in side} | set(AFTER_UPDATE)
    deployer = naming.deployer(env)
    missing = needed - held_on(bootstrap, deployer, ENV_PROJECTS[env])
    assert not missing, f"{deployer} lacks {sorted(missing)}"
    assert set(STATE_WRITE + STATE_READ) <= held_on(bootstrap, deployer, naming.state_bucket(OPS, env))
    assert set(KEY_WRITE + KEY_READ) <= held_on(bootstrap, deployer, f"{RING}/cryptoKeys/{env}")


@pytest.mark.parametrize("env", list(ENV_PROJECTS))
def test_the_previewer_reads_everything_and_writes_nothing(
    bootstrap: Plan, plans: dict[str, Plan], env: str
) -> None:
    types = {r["type"] for r in plans[env].resources if r["type"].startswith("gcp:")}
    previewer = naming.previewer(env)
    on_project = held_on(bootstrap, previewer, ENV_PROJECTS[env])
    reads = {p for t in types for p in NEEDS[t][1]}
    assert not reads - on_project, f"{previewer} cannot read {sorted(reads - on_project)}"
    writes = {p for t in types for p in NEEDS[t][0]}
    assert not writes & on_project, f"{previewer} could change {sorted(writes & on_project)}"
    state = held_on(bootstrap, previewer, naming.state_bucket(OPS, env))
    assert set(STATE_READ) <= state
    assert not set(STATE_WRITE) & state
    key = held_on(bootstrap, previewer, f"{RING}/cryptoKeys/{env}")
    assert set(KEY_READ) <= key
    assert not set(KEY_WRITE) & key


def test_every_granted_role_is_needed(bootstrap: Plan) -> None:
    """No role whose permissions include nothing the deploy or preview needs."""
    needed = (
        {p for side in NEEDS.values() for group in side for p in group}
        | set(AFTER_UPDATE + STATE_WRITE + STATE_READ + KEY_WRITE + KEY_READ)
        | {"iam.serviceAccounts.actAs"}
    )
    for env in ENV_PROJECTS:
        for account in (naming.deployer(env), naming.previewer(env)):
            for _, where, permissions, _ in holdings(bootstrap, account):
                assert permissions & needed, f"{account} holds a role on {where} that nothing needs"


@pytest.mark.parametrize(
    "account",
    [
        *(naming.deployer(e) for e in ENV_PROJECTS),
        *(naming.previewer(e) for e in ENV_PROJECTS),
        naming.PUBLISHER,
    ],
)
def test_no_identity_can_act_as_or_grant_another_account(bootstrap: Plan, account: str) -> None:
    own_runtime = {
        f"projects/{p}/serviceAccounts/{naming.service_account_email(naming.RUNTIME_ACCOUNT, p)}"
        for env, p in ENV_PROJECTS.items()
        if account == naming.deployer(env)
    }
    for type_, where, permissions, condition in holdings(bootstrap, account):
        risky = {p for p in permissions if reaches_another_account(p)}
        if type_ == SA_IAM and where in own_runtime:
            risky -= {"iam.serviceAccounts.actAs"}  # deploying Cloud Run as its own runtime account
        if type_ == PROJECT_IAM and condition == {
            "title": roles.ONLY_GRANTABLE_ROLES.title,
            "description": roles.ONLY_GRANTABLE_ROLES.description,
            "expression": roles.ONLY_GRANTABLE_ROLES.expression,
        }:
            # May grant only these roles, and none of them reaches an account in turn.
            grantable = {p for r in roles.GRANTABLE_PROJECT_ROLES for p in ROLE_PERMISSIONS[r]}
            assert not {p for p in grantable if reaches_another_account(p)}
            risky -= {"resourcemanager.projects.setIamPolicy"}
        assert not risky, f"{account} on {where}: {sorted(risky)}"


def test_the_check_finds_what_the_old_grants_gave() -> None:
    """The rule is not vacuous: run.admin and serviceAccountAdmin, granted before issue 18, fail it."""
    reaching = {
        role: {p for p in permissions if reaches_another_account(p)}
        for role, permissions in ROLE_DATA["not_granted"].items()
    }
    assert {"run.jobs.runWithOverrides", "run.services.sshRoot"} <= reaching["roles/run.admin"]
    assert "iam.serviceAccounts.setIamPolicy" in reaching["roles/iam.serviceAccountAdmin"]
    assert "iam.serviceAccounts.actAs" in ROLE_PERMISSIONS[roles.RUNTIME_ACCOUNT_ROLE]
