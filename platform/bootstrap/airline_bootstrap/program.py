"""The delivery foundation, created once by an administrator before the first pipeline run.

In the delivery project: one Pulumi state bucket and one KMS key per environment (and one pair
for this program's own state), the GitHub workload identity pool with a provider that trusts
only this repository, the service accounts CI acts as, and the one image registry. In each
environment's project: the deployer's roles and the Cloud Run service agent's read access to
the registry, so every environment pulls the same digest. Nothing here creates a key.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import pulumi
import pulumi_gcp as gcp

from airline_bootstrap import github, naming, roles, trust
from airline_bootstrap.config import BootstrapConfig, Environment

# Enabled in the delivery project. Resource Manager, Service Usage and IAM bill and check the
# caller's project, and the deployers live here.
DELIVERY_APIS = (
    "artifactregistry.googleapis.com",
    "cloudkms.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "serviceusage.googleapis.com",
    "storage.googleapis.com",
    "sts.googleapis.com",
)
KEY_ROTATION = f"{90 * 24 * 3600}s"
NONCURRENT_STATE_DAYS = 90  # old state versions kept for recovery, then deleted


def build(cfg: BootstrapConfig) -> dict[str, Any]:
    """Create the foundation; returns what the administrator copies into GitHub and the stacks."""
    ops = cfg.project
    number = gcp.organizations.get_project_output(project_id=ops).number
    apis = [
        gcp.projects.Service(
            f"delivery-api-{api.split('.')[0]}", project=ops, service=api, disable_on_destroy=False
        )
        for api in DELIVERY_APIS
    ]
    # State, keys and images outlive any mistake in this program: `pulumi destroy` refuses them.
    keep = pulumi.ResourceOptions(depends_on=apis, protect=True)

    ring = gcp.kms.KeyRing("key-ring", project=ops, location=cfg.region, name=naming.KEY_RING, opts=keep)
    scopes = (naming.BOOTSTRAP_SCOPE, *(env.name for env in cfg.environments))
    buckets = {scope: _state_bucket(cfg, scope, keep) for scope in scopes}
    keys = {
        scope: gcp.kms.CryptoKey(
            f"secrets-{scope}",
            key_ring=ring.id,
            name=scope,
            purpose="ENCRYPT_DECRYPT",
            rotation_period=KEY_ROTATION,
            labels=cfg.labels(scope),
            opts=keep,
        )
        for scope in scopes
    }

    pool = gcp.iam.WorkloadIdentityPool(
        "github-pool",
        project=ops,
        workload_identity_pool_id=naming.POOL_ID,
        display_name="GitHub Actions",
        description=f"Workflows of {cfg.github_repository}",
        opts=pulumi.ResourceOptions(depends_on=apis),
    )
    gcp.iam.WorkloadIdentityPoolProvider(
        "github-provider",
        project=ops,
        workload_identity_pool_id=pool.workload_identity_pool_id,
        workload_identity_pool_provider_id=naming.PROVIDER_ID,
        display_name="GitHub OIDC",
        # Each token becomes one access context (trust.py); any other token is refused here.
        attribute_mapping=trust.attribute_mapping(cfg),
        attribute_condition=trust.attribute_condition(cfg),
        oidc=gcp.iam.WorkloadIdentityPoolProviderOidcArgs(issuer_uri=naming.GITHUB_ISSUER),
    )
    identity = _Identity(cfg, number, apis)
    accounts: dict[str, gcp.serviceaccount.Account] = {}
    runtime_accounts: dict[str, pulumi.Output[str]] = {}

    for env in cfg.environments:
        # Only deploy-stack.yml at the environment's branch, in the GitHub environment (prod: approved).
        deployer = identity.account(
            naming.deployer(env.name), f"Deploys the {env.name} stack", [trust.deploy(env.name)]
        )
        accounts[naming.deployer(env.name)] = deployer
        _grant_environment(naming.deployer(env.name), deployer, roles.DEPLOYER, env, buckets, keys)
        runtime_accounts[env.name] = _runtime_account(env, deployer).email
        # Before each update and nightly; pull requests preview dev and staging, never prod.
        previews = [trust.preview_on(naming.DEPLOY_BRANCH[env.name]), trust.DRIFT]
        previewer = identity.account(
            naming.previewer(env.name),
            f"Previews the {env.name} stack and checks it for drift (read-only)",
            previews if env.name == "prod" else [*previews, trust.PULL_REQUEST],
        )
        accounts[naming.previewer(env.name)] = previewer
        _grant_environment(naming.previewer(env.name), previewer, roles.PREVIEWER, env, buckets, keys)

    registry = gcp.artifactregistry.Repository(
        "images",
        project=ops,
        location=cfg.region,
        repository_id=naming.REGISTRY_ID,
        format="DOCKER",
        description="The flight API image: pushed once per change, promoted by digest to every environment.",
        # A tag, once pushed, never moves to other bytes.
        docker_config=gcp.artifactregistry.RepositoryDockerConfigArgs(immutable_tags=True),
        labels=cfg.labels("shared"),
        opts=keep,
    )
    publisher = identity.account(
        naming.PUBLISHER, "Builds and pushes the API image from the deploy branches", [trust.PUBLISH]
    )
    accounts[naming.PUBLISHER] = publisher
    _registry_member(
        cfg,
        registry,
        "publisher-pushes",
        roles.PUBLISHER_REGISTRY_ROLE,
        pulumi.Output.concat("serviceAccount:", publisher.email),
    )
    for env in cfg.environments:
        run_api = gcp.projects.Service(
            f"{env.name}-api-run", project=env.project, service="run.googleapis.com", disable_on_destroy=False
        )
        agent = gcp.projects.ServiceIdentity(
            f"{env.name}-run-agent",
            project=env.project,
            service="run.googleapis.com",
            opts=pulumi.ResourceOptions(depends_on=[run_api]),
        )
        _registry_member(
            cfg, registry, f"{env.name}-run-agent-pulls", roles.PULLER_REGISTRY_ROLE, agent.member
        )

    provider = number.apply(naming.workload_identity_provider)
    # Repository variables: all the workflows need to derive every other name (naming.py).
    variables: dict[str, pulumi.Input[str]] = {
        "GCP_OPS_PROJECT": ops,
        "GCP_REGION": cfg.region,
        "GCP_WORKLOAD_IDENTITY_PROVIDER": provider,
    }
    github.build(cfg, variables)
    return {
        "workload_identity_provider": provider,
        "image_repository": naming.image_repository(ops, cfg.region),
        "state_backends": {scope: pulumi.Output.concat("gs://", b.name) for scope, b in buckets.items()},
        "secrets_providers": {scope: pulumi.Output.concat("gcpkms://", k.id) for scope, k in keys.items()},
        "service_accounts": {name: account.email for name, account in accounts.items()},
        "runtime_service_accounts": runtime_accounts,
        "github_variables": variables,
    }


class _Identity:
    """Service accounts in the delivery project that GitHub jobs of named access contexts may act as."""

    def __init__(self, cfg: BootstrapConfig, number: pulumi.Output[str], apis: Sequence[pulumi.Resource]):
        self.cfg = cfg
        self.number = number
        self.apis = list(apis)

    def account(
        self, account_id: str, description: str, accesses: Sequence[str]
    ) -> gcp.serviceaccount.Account:
        account = gcp.serviceaccount.Account(
            account_id,
            project=self.cfg.project,
            account_id=account_id,
            display_name=description,
            opts=pulumi.ResourceOptions(depends_on=self.apis),
        )
        for access in accesses:
            gcp.serviceaccount.IAMMember(
                f"{account_id}-as-{access}",
                service_account_id=_path(account),
                role=roles.IMPERSONATION_ROLE,
                member=self.number.apply(partial(naming.access_principal_set, access=access)),
            )
        return account


def _state_bucket(cfg: BootstrapConfig, scope: str, opts: pulumi.ResourceOptions) -> gcp.storage.Bucket:
    return gcp.storage.Bucket(
        f"state-{scope}",
        project=cfg.project,
        name=naming.state_bucket(cfg.project, scope),
        location=cfg.region,
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        # Every state write is a new version: a broken update can be rolled back to the last good state.
        versioning=gcp.storage.BucketVersioningArgs(enabled=True),
        lifecycle_rules=[
            gcp.storage.BucketLifecycleRuleArgs(
                action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                    with_state="ARCHIVED", days_since_noncurrent_time=NONCURRENT_STATE_DAYS
                ),
            )
        ],
        force_destroy=False,
        labels=cfg.labels(scope),
        opts=opts,
    )


def _grant_environment(
    who: str,
    account: gcp.serviceaccount.Account,
    access: roles.Access,
    env: Environment,
    buckets: dict[str, gcp.storage.Bucket],
    keys: dict[str, gcp.kms.CryptoKey],
) -> None:
    """One identity's access to one environment: roles on its project, its state bucket, its key."""
    member = pulumi.Output.concat("serviceAccount:", account.email)
    for grant in access.project_roles:
        condition = grant.condition
        gcp.projects.IAMMember(
            f"{who}-on-{env.name}-{grant.role.removeprefix('roles/').replace('.', '-')}",
            project=env.project,
            role=grant.role,
            member=member,
            condition=gcp.projects.IAMMemberConditionArgs(
                title=condition.title, description=condition.description, expression=condition.expression
            )
            if condition
            else None,
        )
    for custom in access.custom_roles:
        role = gcp.projects.IAMCustomRole(
            f"{who}-{env.name}-{custom.role_id}",
            project=env.project,
            role_id=custom.role_id,
            title=custom.title,
            description=custom.why,
            permissions=list(custom.permissions),
        )
        gcp.projects.IAMMember(
            f"{who}-on-{env.name}-{custom.role_id}",
            project=env.project,
            role=custom.name(env.project),
            member=member,
            opts=pulumi.ResourceOptions(depends_on=[role]),
        )
    gcp.storage.BucketIAMMember(
        f"{who}-state-{env.name}", bucket=buckets[env.name].name, role=access.state_role, member=member
    )
    gcp.kms.CryptoKeyIAMMember(
        f"{who}-secrets-{env.name}", crypto_key_id=keys[env.name].id, role=access.key_role, member=member
    )


def _runtime_account(env: Environment, deployer: gcp.serviceaccount.Account) -> gcp.serviceaccount.Account:
    """The API's identity, created once here; the deployer may act as it (and as nothing else)."""
    iam_api = gcp.projects.Service(
        f"{env.name}-api-iam", project=env.project, service="iam.googleapis.com", disable_on_destroy=False
    )
    account = gcp.serviceaccount.Account(
        f"{env.name}-runtime",
        project=env.project,
        account_id=naming.RUNTIME_ACCOUNT,
        display_name="Flight API (Cloud Run runtime identity)",
        opts=pulumi.ResourceOptions(depends_on=[iam_api]),
    )
    gcp.serviceaccount.IAMMember(
        f"{naming.deployer(env.name)}-acts-as-runtime",
        service_account_id=_path(account),
        role=roles.RUNTIME_ACCOUNT_ROLE,
        member=pulumi.Output.concat("serviceAccount:", deployer.email),
    )
    return account


def _path(account: gcp.serviceaccount.Account) -> pulumi.Output[str]:
    return pulumi.Output.concat("projects/", account.project, "/serviceAccounts/", account.email)


def _registry_member(
    cfg: BootstrapConfig,
    registry: gcp.artifactregistry.Repository,
    name: str,
    role: str,
    member: pulumi.Input[str],
) -> None:
    gcp.artifactregistry.RepositoryIamMember(
        name,
        project=cfg.project,
        location=cfg.region,
        repository=registry.repository_id,
        role=role,
        member=member,
    )
