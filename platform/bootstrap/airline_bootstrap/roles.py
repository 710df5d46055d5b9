"""Who may do what: every role the bootstrap grants, with the reason.

Each deployer holds these on its own environment's project only, each previewer the read-only
ones on its own environment only. No identity holds a role that lets it act as, or grant, a
service account: the deployer may act as its environment's runtime account alone (granted on that
account, not the project), and Cloud Run comes through a custom role without run.admin's job
execution and SSH permissions. tests/platform/test_deploy_permissions.py maps every permission the
main program's resources need onto these roles, using the permissions Google documents for each
predefined role (https://cloud.google.com/iam/docs/roles-permissions, recorded in
tests/platform/data/iam_roles.json), and checks that none of them reaches another account.
"""

from __future__ import annotations

from dataclasses import dataclass

# Project-level roles the main program itself grants (gcp.projects.IAMMember): the deployer may
# grant these and nothing else (an IAM condition on its projectIamAdmin binding).
GRANTABLE_PROJECT_ROLES = ("roles/bigquery.jobUser",)


@dataclass(frozen=True)
class Condition:
    title: str
    description: str
    expression: str


@dataclass(frozen=True)
class Role:
    role: str
    why: str
    condition: Condition | None = None


@dataclass(frozen=True)
class CustomRole:
    """A project-level custom role, created in each environment's project by the bootstrap."""

    role_id: str
    title: str
    why: str
    permissions: tuple[str, ...]

    def name(self, project: str) -> str:
        return f"projects/{project}/roles/{self.role_id}"


ONLY_GRANTABLE_ROLES = Condition(
    title="Only the main program's project-level roles",
    description="May grant or revoke only the project-level roles the main program manages.",
    expression="api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly(["
    + ", ".join(f"'{role}'" for role in GRANTABLE_PROJECT_ROLES)
    + "])",
)

# roles/run.admin would add running existing jobs with overrides (run.jobs.runWithOverrides) and
# SSH into services and instances (run.*.sshRoot): both run code as *their* service accounts,
# without the actAs check Cloud Run makes on a deploy. This role is the service's lifecycle only.
CLOUD_RUN_DEPLOYER = CustomRole(
    role_id="flightApiCloudRunDeployer",
    title="Flight API Cloud Run deployer",
    why="create, update and delete the Cloud Run service, set its invoker IAM, and call it "
    "(Schemathesis and the canary after each update); no jobs, worker pools or SSH",
    permissions=(
        "run.locations.list",
        "run.operations.get",
        "run.revisions.get",
        "run.revisions.list",
        "run.routes.invoke",
        "run.services.create",
        "run.services.delete",
        "run.services.get",
        "run.services.getIamPolicy",
        "run.services.list",
        "run.services.setIamPolicy",
        "run.services.update",
    ),
)

# roles/pubsub.viewer reads topics and subscriptions but not their IAM policies, which a refresh
# (drift) reads for every TopicIAMMember and SubscriptionIAMMember; no read-only predefined role does.
PUBSUB_IAM_READER = CustomRole(
    role_id="flightApiPubSubIamReader",
    title="Flight API Pub/Sub IAM reader",
    why="read the IAM policies of the stack's topics and subscriptions (previews and drift)",
    permissions=("pubsub.subscriptions.getIamPolicy", "pubsub.topics.getIamPolicy"),
)

DEPLOYER_ROLES = (
    Role(
        "roles/serviceusage.serviceUsageAdmin",
        "enable the APIs the stack uses (gcp.projects.Service) and create the service agents it "
        "grants roles to (gcp.projects.ServiceIdentity)",
    ),
    Role(
        "roles/monitoring.editor",
        "the stack's SLOs and their services, alert policies, notification channels, uptime check and "
        "dashboard; monitoring.admin would add nothing the program needs",
    ),
    Role(
        "roles/logging.configWriter",
        "the log-based metrics read from the API's structured logs (logging.logMetrics.*)",
    ),
    Role(
        "roles/bigquery.dataOwner",
        "create the dataset, table and view and grant dataset-level access; dataEditor cannot set "
        "dataset IAM, and BigQuery has no narrower predefined role that can",
    ),
    Role(
        "roles/pubsub.admin",
        "topics, subscriptions and their IAM (pubsub.editor cannot set IAM policies); the canary "
        "publishes with it",
    ),
    Role(
        "roles/resourcemanager.projectIamAdmin",
        "grant the runtime account its project-level roles; conditioned so that it can grant "
        "only GRANTABLE_PROJECT_ROLES, never owner, a service-account role or itself more",
        ONLY_GRANTABLE_ROLES,
    ),
)

PREVIEWER_ROLES = (
    Role(
        "roles/serviceusage.serviceUsageViewer", "read which APIs are enabled and which service agents exist"
    ),
    Role("roles/monitoring.viewer", "read the SLOs, alert policies, channels, uptime check and dashboard"),
    Role("roles/logging.viewer", "read the log-based metrics' definitions"),
    Role("roles/bigquery.metadataViewer", "read datasets, tables, views and their access, never their rows"),
    Role("roles/pubsub.viewer", "read topics, subscriptions and their IAM policies"),
    Role("roles/run.viewer", "read the Cloud Run service and its IAM policy"),
    Role("roles/browser", "read the project and its IAM policy (project-level grants)"),
)

# On the environment's runtime service account only (never the project): deploy Cloud Run as it.
RUNTIME_ACCOUNT_ROLE = "roles/iam.serviceAccountUser"
# The runtime account's own project-level role, granted by the main program (GRANTABLE_PROJECT_ROLES).

# Grants on single resources of the delivery project.
# Each deployer: its own environment's state bucket and key only. Updates write state and a lock.
DEPLOYER_STATE_ROLE = "roles/storage.objectUser"
DEPLOYER_KEY_ROLE = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
# Each previewer: its own environment's state and key. `pulumi preview` and `refresh --preview-only`
# read state and take no lock (Pulumi's DIY backend locks only real updates), and decrypt the
# stack's secrets config.
PREVIEWER_STATE_ROLE = "roles/storage.objectViewer"
PREVIEWER_KEY_ROLE = "roles/cloudkms.cryptoKeyDecrypter"
# The publisher pushes the image once; each environment's Cloud Run service agent pulls it.
PUBLISHER_REGISTRY_ROLE = "roles/artifactregistry.writer"
PULLER_REGISTRY_ROLE = "roles/artifactregistry.reader"
# A GitHub job of an accepted context may act as a service account (no keys anywhere).
IMPERSONATION_ROLE = "roles/iam.workloadIdentityUser"


@dataclass(frozen=True)
class Access:
    """What one identity holds for one environment: roles on its project, its state, its key."""

    project_roles: tuple[Role, ...]
    custom_roles: tuple[CustomRole, ...]
    state_role: str
    key_role: str


DEPLOYER = Access(DEPLOYER_ROLES, (CLOUD_RUN_DEPLOYER,), DEPLOYER_STATE_ROLE, DEPLOYER_KEY_ROLE)
PREVIEWER = Access(PREVIEWER_ROLES, (PUBSUB_IAM_READER,), PREVIEWER_STATE_ROLE, PREVIEWER_KEY_ROLE)
