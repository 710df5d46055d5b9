"""Names the bootstrap creates and the GitHub workflows derive, so CI needs only three variables.

The workflows know `GCP_OPS_PROJECT`, `GCP_REGION` and `GCP_WORKLOAD_IDENTITY_PROVIDER`
(repository variables, from this program's `github_variables` output) and build every other
name with these rules; tests/delivery checks that both sides agree.
"""

from __future__ import annotations

POOL_ID = "github"
PROVIDER_ID = "github-actions"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
KEY_RING = "pulumi"
REGISTRY_ID = "airline"
IMAGE_NAME = "flight-api"
PUBLISHER = "image-publisher"
# The API's runtime identity in each environment's project: the bootstrap creates it, the main
# program deploys Cloud Run as it (airline_platform.service), and only its own deployer may act as it.
RUNTIME_ACCOUNT = "flight-api-runtime"
# The bootstrap's own state lives beside the environments', under this scope.
BOOTSTRAP_SCOPE = "bootstrap"
# GitFlow: develop deploys dev; main deploys staging, then prod. Only these push images.
DEPLOY_BRANCHES = ("develop", "main")
DEPLOY_BRANCH = {"dev": "develop", "staging": "main", "prod": "main"}
# The workflow files (under .github/workflows) whose jobs may exchange a GitHub token (trust.py).
DEPLOY_WORKFLOW = "deploy.yml"  # builds and pushes the image, calls DEPLOY_STACK_WORKFLOW per stack
DEPLOY_STACK_WORKFLOW = "deploy-stack.yml"  # one stack: prod's preview, then `pulumi up` in its environment
PREVIEW_WORKFLOW = "preview.yml"  # pull requests
DRIFT_WORKFLOW = "drift.yml"  # nightly, on the default branch


def state_bucket(ops_project: str, scope: str) -> str:
    """One bucket per environment (and one for the bootstrap): a deployer reaches only its own."""
    return f"{ops_project}-pulumi-{scope}"


def deployer(environment: str) -> str:
    """Account id of the environment's deployer."""
    return f"deployer-{environment}"


def previewer(environment: str) -> str:
    """Account id of the environment's read-only previewer (previews and drift)."""
    return f"previewer-{environment}"


def service_account_email(account_id: str, project: str) -> str:
    return f"{account_id}@{project}.iam.gserviceaccount.com"


def image_repository(ops_project: str, region: str) -> str:
    """Where CI pushes the image once and every environment pulls it by digest."""
    return f"{region}-docker.pkg.dev/{ops_project}/{REGISTRY_ID}/{IMAGE_NAME}"


def workload_identity_provider(project_number: str) -> str:
    return (
        f"projects/{project_number}/locations/global/workloadIdentityPools/{POOL_ID}/providers/{PROVIDER_ID}"
    )


def access_principal_set(project_number: str, access: str) -> str:
    """Every GitHub job whose token the provider mapped to one access context (trust.py)."""
    return (
        f"principalSet://iam.googleapis.com/projects/{project_number}/locations/global/"
        f"workloadIdentityPools/{POOL_ID}/attribute.access/{access}"
    )
