"""Who may do what: every role the bootstrap grants, with the reason and what it is for.

Each deployer holds these roles on its own environment's project only; the previewer holds
the read-only ones on every environment. `covers` lists the main program's resource types
(prefixes of Pulumi type tokens) a role lets its holder manage or read: tests/platform checks
that every type the program declares is covered and that no role covers nothing, so a new
resource type in the program fails the tests until someone decides which role it needs.
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
    covers: tuple[str, ...]
    condition: Condition | None = None


ONLY_GRANTABLE_ROLES = Condition(
    title="Only the main program's project-level roles",
    description="May grant or revoke only the project-level roles the main program manages.",
    expression="api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly(["
    + ", ".join(f"'{role}'" for role in GRANTABLE_PROJECT_ROLES)
    + "])",
)

DEPLOYER_ROLES = (
    Role(
        "roles/serviceusage.serviceUsageAdmin",
        "enable the APIs the stack uses (gcp.projects.Service) and create the service agents it "
        "grants roles to (gcp.projects.ServiceIdentity: serviceusage.services.generateServiceIdentity)",
        ("gcp:projects/service:Service", "gcp:projects/serviceIdentity:ServiceIdentity"),
    ),
    Role(
        "roles/monitoring.editor",
        "the stack's SLOs and their services, alert policies, notification channels, uptime check and "
        "dashboard; monitoring.admin would add nothing the program needs",
        ("gcp:monitoring/",),
    ),
    Role(
        "roles/logging.configWriter",
        "the log-based metrics read from the API's structured logs (logging.logMetrics.*)",
        ("gcp:logging/metric:Metric",),
    ),
    Role(
        "roles/bigquery.dataOwner",
        "create the dataset, table and view and grant dataset-level access; dataEditor cannot set "
        "dataset IAM, and BigQuery has no narrower predefined role that can",
        ("gcp:bigquery/",),
    ),
    Role(
        "roles/pubsub.admin",
        "topics, subscriptions and their IAM (pubsub.editor cannot set IAM policies); the canary "
        "publishes with it",
        ("gcp:pubsub/",),
    ),
    Role(
        "roles/run.admin",
        "the Cloud Run service and its invoker IAM (run.developer cannot set IAM policies); it "
        "includes run.routes.invoke, which Schemathesis and the canary need after each update",
        ("gcp:cloudrunv2/",),
    ),
    Role(
        "roles/iam.serviceAccountAdmin",
        "create the API's runtime service account",
        ("gcp:serviceaccount/account:Account",),
    ),
    Role(
        "roles/iam.serviceAccountUser",
        "deploy Cloud Run as that runtime service account (iam.serviceAccounts.actAs)",
        ("gcp:cloudrunv2/service:Service",),
    ),
    Role(
        "roles/resourcemanager.projectIamAdmin",
        "grant the runtime account its project-level roles; conditioned so that it can grant "
        "only GRANTABLE_PROJECT_ROLES, never owner or itself more",
        ("gcp:projects/iAMMember:IAMMember",),
        ONLY_GRANTABLE_ROLES,
    ),
)

PREVIEWER_ROLES = (
    Role(
        "roles/serviceusage.serviceUsageViewer",
        "read which APIs are enabled and which service agents exist",
        ("gcp:projects/service:Service", "gcp:projects/serviceIdentity:ServiceIdentity"),
    ),
    Role(
        "roles/monitoring.viewer",
        "read the SLOs, alert policies, channels, uptime check and dashboard",
        ("gcp:monitoring/",),
    ),
    Role(
        "roles/logging.viewer",
        "read the log-based metrics' definitions",
        ("gcp:logging/metric:Metric",),
    ),
    Role(
        "roles/bigquery.metadataViewer",
        "read datasets, tables, views and their access, never their rows",
        ("gcp:bigquery/",),
    ),
    Role(
        "roles/pubsub.viewer",
        "read topics, subscriptions and their IAM policies",
        ("gcp:pubsub/",),
    ),
    Role(
        "roles/run.viewer",
        "read the Cloud Run service and its IAM policy",
        ("gcp:cloudrunv2/",),
    ),
    Role(
        "roles/iam.serviceAccountViewer",
        "read the runtime service account",
        ("gcp:serviceaccount/account:Account",),
    ),
    Role(
        "roles/browser",
        "read the project and its IAM policy (project-level grants)",
        ("gcp:projects/iAMMember:IAMMember",),
    ),
)


# Grants on single resources of the delivery project.
# Each deployer: its own environment's state bucket and key only. Updates write state and a lock.
DEPLOYER_STATE_ROLE = "roles/storage.objectUser"
DEPLOYER_KEY_ROLE = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
# The previewer: `pulumi preview` and `refresh --preview-only` read state and take no lock
# (Pulumi's DIY backend locks only real updates), and decrypt the stack's secrets config.
PREVIEWER_STATE_ROLE = "roles/storage.objectViewer"
PREVIEWER_KEY_ROLE = "roles/cloudkms.cryptoKeyDecrypter"
# The publisher pushes the image once; each environment's Cloud Run service agent pulls it.
PUBLISHER_REGISTRY_ROLE = "roles/artifactregistry.writer"
PULLER_REGISTRY_ROLE = "roles/artifactregistry.reader"
# A GitHub OIDC subject may act as a service account (no keys anywhere).
IMPERSONATION_ROLE = "roles/iam.workloadIdentityUser"


@dataclass(frozen=True)
class Access:
    """What one identity holds for one environment: roles on its project, its state, its key."""

    project_roles: tuple[Role, ...]
    state_role: str
    key_role: str


DEPLOYER = Access(DEPLOYER_ROLES, DEPLOYER_STATE_ROLE, DEPLOYER_KEY_ROLE)
PREVIEWER = Access(PREVIEWER_ROLES, PREVIEWER_STATE_ROLE, PREVIEWER_KEY_ROLE)
