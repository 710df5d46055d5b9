"""The security baseline as CrossGuard resource policies, and the operations baseline as stack policies.

Kept apart from the pack's entry file because `PolicyPack(...)` starts a server and never
returns: tests import this module and call each policy's `validate` directly. Properties
arrive as the engine sees them: camelCase keys, the program's inputs. The environment is the
stack name, read from the resource's URN (`urn:pulumi:<stack>::<project>::...`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})
BROAD_PROJECT_ROLES = frozenset(
    {
        "roles/bigquery.admin",
        "roles/bigquery.dataEditor",
        "roles/bigquery.dataOwner",
        "roles/editor",
        "roles/owner",
    }
)
REQUIRED_LABELS = ("environment", "service", "owner")
LABELLED_TYPES = frozenset(
    {
        "gcp:artifactregistry/repository:Repository",
        "gcp:bigquery/dataset:Dataset",
        "gcp:bigquery/table:Table",
        "gcp:cloudrunv2/service:Service",
        "gcp:pubsub/subscription:Subscription",
        "gcp:pubsub/topic:Topic",
    }
)
CLOUD_RUN_INVOKER_TYPES = frozenset(
    {
        "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
        "gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding",
        "gcp:cloudrunv2/serviceIamPolicy:ServiceIamPolicy",
        "gcp:cloudrun/iamMember:IamMember",
        "gcp:cloudrun/iamBinding:IamBinding",
        "gcp:cloudrun/iamPolicy:IamPolicy",
    }
)
PROJECT_IAM_TYPES = frozenset(
    {
        "gcp:projects/iAMMember:IAMMember",
        "gcp:projects/iAMBinding:IAMBinding",
        "gcp:projects/iAMPolicy:IAMPolicy",
    }
)
# Monitoring resources label through `userLabels`.
USER_LABELLED_TYPES = frozenset(
    {
        "gcp:monitoring/alertPolicy:AlertPolicy",
        "gcp:monitoring/customService:CustomService",
        "gcp:monitoring/genericService:GenericService",
        "gcp:monitoring/notificationChannel:NotificationChannel",
        "gcp:monitoring/slo:Slo",
        "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig",
    }
)
ALERT_POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
SLO = "gcp:monitoring/slo:Slo"
BURN_RATE = re.compile(r'^select_slo_burn_rate\("(?P<slo>[^"]+)", "(?P<lookback>\d+)s"\)$')
RUNBOOK_LINK = re.compile(r"/docs/runbooks/(?P<name>[a-z0-9-]+)\.md(?:#(?P<anchor>[a-z0-9-]+))?\)")
# The pack lives in the repository it checks: platform/policy -> docs/runbooks.
RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks"
# The API's switch for verifying publishers (app/contract/service_env.py); the pack runs without app code.
PUBLISH_AUTH_VARIABLE = "APP_PUBLISH_AUTH"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
DEFAULT_PUBLIC_STACKS = ("dev",)
DEFAULT_PROTECTED_STACKS = ("prod",)


def stack_of(args: ResourceValidationArgs) -> str:
    """The stack (= environment) the resource belongs to."""
    return args.urn.removeprefix("urn:pulumi:").split("::")[0]


def _stacks_config(key: str, default: tuple[str, ...]) -> PolicyConfigSchema:
    return PolicyConfigSchema(
        properties={key: {"type": "array", "items": {"type": "string"}, "default": list(default)}}
    )


def _bindings(props: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """(role, members) pairs of an IAM member, binding or policy resource."""
    if "policyData" in props:
        data = props["policyData"]
        policy = json.loads(data) if isinstance(data, str) else data
        return [(b.get("role", ""), list(b.get("members", []))) for b in policy.get("bindings", [])]
    members = props.get("members") or ([props["member"]] if "member" in props else [])
    return [(props.get("role", ""), list(members))]


def _no_public_invoker(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in CLOUD_RUN_INVOKER_TYPES:
        return
    allowed = args.get_config().get("publicInvokerStacks", list(DEFAULT_PUBLIC_STACKS))
    if stack_of(args) in allowed:
        return
    for role, members in _bindings(args.props):
        public = PUBLIC_MEMBERS.intersection(members)
        if public:
            report_violation(
                f"{', '.join(sorted(public))} granted {role} on a Cloud Run service in stack "
                f"'{stack_of(args)}'; public invokers are allowed only in {allowed}.",
                None,
            )


def _containers(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((props.get("template") or {}).get("containers") or [])


def _image_by_digest(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "gcp:cloudrunv2/service:Service":
        return
    containers = _containers(args.props)
    if not containers:
        report_violation("Cloud Run service declares no container image.", None)
    for container in containers:
        image = str(container.get("image", ""))
        if not DIGEST.search(image):
            report_violation(f"Cloud Run image '{image}' is not pinned by digest (@sha256:...).", None)


def _dedicated_service_account(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "gcp:cloudrunv2/service:Service":
        return
    account = str((args.props.get("template") or {}).get("serviceAccount") or "")
    if not account or account.endswith("-compute@developer.gserviceaccount.com"):
        report_violation(
            "Cloud Run service runs as the default compute service account; give it its own.", None
        )


def _publishers_authenticated(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """The API verifies publishers' ID tokens unless told `APP_PUBLISH_AUTH=none` (the local stack's mode)."""
    if args.resource_type != "gcp:cloudrunv2/service:Service":
        return
    for container in _containers(args.props):
        envs = {e.get("name"): e.get("value") for e in container.get("envs") or []}
        if envs.get(PUBLISH_AUTH_VARIABLE) != "google-id-token":
            report_violation(
                f"Cloud Run container sets {PUBLISH_AUTH_VARIABLE}={envs.get(PUBLISH_AUTH_VARIABLE)!r}: "
                "anyone who reaches the service could publish; set it to google-id-token.",
                None,
            )


def _no_broad_project_roles(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in PROJECT_IAM_TYPES:
        return
    for role, members in _bindings(args.props):
        if role in BROAD_PROJECT_ROLES:
            report_violation(
                f"{role} granted project-wide to {members}; grant it on the dataset, topic or "
                f"subscription instead.",
                None,
            )


def _bigquery_subscription_dead_letter(
    args: ResourceValidationArgs, report_violation: ReportViolation
) -> None:
    if args.resource_type != "gcp:pubsub/subscription:Subscription" or not args.props.get("bigqueryConfig"):
        return
    policy = args.props.get("deadLetterPolicy") or {}
    if not policy.get("deadLetterTopic") or not policy.get("maxDeliveryAttempts"):
        report_violation(
            "BigQuery subscription has no dead-letter policy (topic and max delivery attempts): "
            "rows BigQuery rejects would be retried forever.",
            None,
        )


def _deletion_protection(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    protected = args.get_config().get("protectedStacks", list(DEFAULT_PROTECTED_STACKS))
    if stack_of(args) not in protected:
        return
    props = args.props
    if args.resource_type == "gcp:bigquery/table:Table":
        holds_data = not props.get("view") and not props.get("materializedView")
        if holds_data and props.get("deletionProtection") is not True:
            report_violation(f"Table '{props.get('tableId')}' needs deletionProtection: true.", None)
    elif args.resource_type == "gcp:bigquery/dataset:Dataset" and props.get("deleteContentsOnDestroy"):
        report_violation(f"Dataset '{props.get('datasetId')}' would drop its tables on destroy.", None)


def _labels(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type in LABELLED_TYPES:
        labels = args.props.get("labels") or {}
    elif args.resource_type in USER_LABELLED_TYPES:
        labels = args.props.get("userLabels") or {}
    else:
        return
    missing = [key for key in REQUIRED_LABELS if not labels.get(key)]
    if missing:
        report_violation(f"missing labels: {', '.join(missing)}", None)


def _burn_rate_slos(policy: PolicyResource) -> set[str]:
    """The SLO names a policy alerts on, if every condition is an SLO burn-rate threshold."""
    conditions = [c.get("conditionThreshold") or {} for c in policy.props.get("conditions") or []]
    matches = [BURN_RATE.match(str(c.get("filter", ""))) for c in conditions]
    if not matches or not all(matches) or any(c.get("comparison") != "COMPARISON_GT" for c in conditions):
        return set()
    if len(matches) > 1 and policy.props.get("combiner") != "AND":
        return set()  # a multiwindow alert must need both windows
    return {m["slo"] for m in matches if m}


def _every_slo_is_alerted(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Each SLO needs a page (CRITICAL) and a ticket (WARNING) burn-rate policy on its own name."""
    policies = [r for r in args.resources if r.resource_type == ALERT_POLICY]
    alerted: dict[str, set[str]] = {}
    for policy in policies:
        for slo in _burn_rate_slos(policy):
            alerted.setdefault(slo, set()).add(str(policy.props.get("severity")))
    for slo in (r for r in args.resources if r.resource_type == SLO):
        suffix = f"/services/{slo.props.get('service')}/serviceLevelObjectives/{slo.props.get('sloId')}"
        severities = set().union(*(s for name, s in alerted.items() if name.endswith(suffix)))
        missing = {"CRITICAL", "WARNING"} - severities
        if missing:
            report_violation(
                f"SLO '{slo.props.get('sloId')}' has no select_slo_burn_rate policy of severity "
                f"{', '.join(sorted(missing))}: add its page and ticket burn-rate alerts.",
                slo.urn,
            )


def _every_alert_has_a_runbook(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Each alert policy's Markdown documentation links a runbook (and section) that exists."""
    for policy in (r for r in args.resources if r.resource_type == ALERT_POLICY):
        doc = policy.props.get("documentation") or {}
        link = RUNBOOK_LINK.search(str(doc.get("content", "")))
        name = policy.props.get("displayName", policy.name)
        if doc.get("mimeType") != "text/markdown" or not link:
            report_violation(
                f"alert '{name}' does not link a docs/runbooks/<name>.md in its Markdown.", policy.urn
            )
            continue
        runbook = RUNBOOKS / f"{link['name']}.md"
        if not runbook.is_file():
            report_violation(f"alert '{name}' links {runbook.name}, which does not exist.", policy.urn)
        elif link["anchor"] and link["anchor"] not in _anchors(runbook):
            report_violation(
                f"alert '{name}' links a missing section #{link['anchor']} of {runbook.name}.", policy.urn
            )


def _anchors(markdown: Path) -> set[str]:
    """GitHub's anchors for a Markdown file's headings."""
    headings = (
        line.lstrip("#").strip().lower() for line in markdown.read_text().splitlines() if line.startswith("#")
    )
    return {re.sub(r"[^\w\- ]", "", h).replace(" ", "-") for h in headings}


def _policy(
    name: str, description: str, validate: Any, config: PolicyConfigSchema | None = None
) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=config,
    )


POLICIES = [
    _policy(
        "cloud-run-publishers-authenticated",
        "The flight API verifies publishers' Google ID tokens in every stack: no anonymous publishing.",
        _publishers_authenticated,
    ),
    _policy(
        "cloud-run-no-public-invoker",
        "No allUsers/allAuthenticatedUsers invoker on Cloud Run outside the stacks that allow it (dev).",
        _no_public_invoker,
        _stacks_config("publicInvokerStacks", DEFAULT_PUBLIC_STACKS),
    ),
    _policy(
        "cloud-run-image-by-digest", "Cloud Run deploys images by digest, never by tag.", _image_by_digest
    ),
    _policy(
        "cloud-run-dedicated-service-account",
        "Cloud Run runs as its own service account, not the default compute account.",
        _dedicated_service_account,
    ),
    _policy(
        "no-broad-project-roles",
        "No project-level BigQuery admin/dataEditor/dataOwner, owner or editor grants.",
        _no_broad_project_roles,
    ),
    _policy(
        "bigquery-subscription-dead-letter",
        "A Pub/Sub BigQuery subscription has a dead-letter topic and max delivery attempts.",
        _bigquery_subscription_dead_letter,
    ),
    _policy(
        "deletion-protection-in-prod",
        "Stateful BigQuery resources are protected from deletion in prod.",
        _deletion_protection,
        _stacks_config("protectedStacks", DEFAULT_PROTECTED_STACKS),
    ),
    _policy(
        "required-labels",
        "Labellable resources carry environment, service and owner labels (userLabels on monitoring).",
        _labels,
    ),
]
STACK_POLICIES = [
    StackValidationPolicy(
        name="every-slo-is-alerted",
        description="Every SLO has page and ticket burn-rate alert policies whose filters name it.",
        validate=_every_slo_is_alerted,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    StackValidationPolicy(
        name="every-alert-has-a-runbook",
        description="Every alert policy's documentation links an existing runbook in docs/runbooks/.",
        validate=_every_alert_has_a_runbook,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
]
