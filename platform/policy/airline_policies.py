"""The security baseline (DESIGN §5) as CrossGuard resource policies.

Kept apart from the pack's entry file because `PolicyPack(...)` starts a server and never
returns: tests import this module and call each policy's `validate` directly. Properties
arrive as the engine sees them: camelCase keys, the program's inputs. The environment is the
stack name, read from the resource's URN (`urn:pulumi:<stack>::<project>::...`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
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
    if args.resource_type not in LABELLED_TYPES:
        return
    labels = args.props.get("labels") or {}
    missing = [key for key in REQUIRED_LABELS if not labels.get(key)]
    if missing:
        report_violation(f"missing labels: {', '.join(missing)}", None)


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
        "Labellable resources carry environment, service and owner labels.",
        _labels,
    ),
]
