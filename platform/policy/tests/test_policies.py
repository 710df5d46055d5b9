# ruff: noqa: S101 - pytest asserts (the root per-file ignore covers tests/ only)
"""Each policy on a good and a bad resource, then the whole pack over every stack's plan."""

from __future__ import annotations

from typing import Any

import pytest
from airline_policies import POLICIES, STACK_POLICIES
from pulumi_policy import PolicyResource, ResourceValidationArgs, StackValidationArgs

BY_NAME = {p.name: p for p in POLICIES}
STACK_BY_NAME = {p.name: p for p in STACK_POLICIES}
SLO_NAME = "projects/1/services/flight-api/serviceLevelObjectives/api-availability"
RUNBOOK = "https://github.com/o/r/blob/main/docs/runbooks/api-availability.md"
DIGEST_IMAGE = "europe-west1-docker.pkg.dev/p/airline/flight-api@sha256:" + "a" * 64
LABELS = {"environment": "prod", "service": "api", "owner": "data-platform"}


def violations(policy: str, type_: str, props: dict[str, Any], stack: str = "prod") -> list[str]:
    """Run one policy on one resource the way the engine would; return its messages."""
    found: list[str] = []
    args = ResourceValidationArgs(
        resource_type=type_,
        props=props,
        urn=f"urn:pulumi:{stack}::airline-data-platform::{type_}::r",
        name="r",
        opts=None,  # type: ignore[arg-type]
        provider=None,
    )
    BY_NAME[policy].validate(args, lambda message, urn=None: found.append(message))
    return found


def run_service(**template: Any) -> dict[str, Any]:
    return {"labels": LABELS, "template": {"serviceAccount": "api@p.iam.gserviceaccount.com", **template}}


@pytest.mark.parametrize(
    ("policy", "type_", "props", "stack", "bad"),
    [
        # Public invokers: fine in dev, refused elsewhere, whatever the IAM resource shape.
        (
            "cloud-run-no-public-invoker",
            "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
            {"role": "roles/run.invoker", "member": "allUsers"},
            "dev",
            False,
        ),
        (
            "cloud-run-no-public-invoker",
            "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
            {"role": "roles/run.invoker", "member": "allUsers"},
            "staging",
            True,
        ),
        (
            "cloud-run-no-public-invoker",
            "gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding",
            {"role": "roles/run.invoker", "members": ["group:a@example.com", "allAuthenticatedUsers"]},
            "prod",
            True,
        ),
        (
            "cloud-run-no-public-invoker",
            "gcp:cloudrunv2/serviceIamPolicy:ServiceIamPolicy",
            {"policyData": '{"bindings": [{"role": "roles/run.invoker", "members": ["allUsers"]}]}'},
            "prod",
            True,
        ),
        (
            "cloud-run-no-public-invoker",
            "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
            {"role": "roles/run.invoker", "member": "group:a@example.com"},
            "prod",
            False,
        ),
        # Images by digest.
        (
            "cloud-run-image-by-digest",
            "gcp:cloudrunv2/service:Service",
            run_service(containers=[{"image": DIGEST_IMAGE}]),
            "prod",
            False,
        ),
        (
            "cloud-run-image-by-digest",
            "gcp:cloudrunv2/service:Service",
            run_service(containers=[{"image": "europe-west1-docker.pkg.dev/p/airline/flight-api:latest"}]),
            "prod",
            True,
        ),
        (
            "cloud-run-image-by-digest",
            "gcp:cloudrunv2/service:Service",
            run_service(containers=[]),
            "prod",
            True,
        ),
        # Own service account.
        (
            "cloud-run-dedicated-service-account",
            "gcp:cloudrunv2/service:Service",
            run_service(),
            "prod",
            False,
        ),
        # Publishers authenticated in every stack, dev included.
        (
            "cloud-run-publishers-authenticated",
            "gcp:cloudrunv2/service:Service",
            run_service(containers=[{"envs": [{"name": "APP_PUBLISH_AUTH", "value": "google-id-token"}]}]),
            "dev",
            False,
        ),
        (
            "cloud-run-publishers-authenticated",
            "gcp:cloudrunv2/service:Service",
            run_service(containers=[{"envs": [{"name": "APP_PUBLISH_AUTH", "value": "none"}]}]),
            "dev",
            True,
        ),
        (
            "cloud-run-publishers-authenticated",
            "gcp:cloudrunv2/service:Service",
            run_service(containers=[{"envs": []}]),
            "prod",
            True,
        ),
        (
            "cloud-run-dedicated-service-account",
            "gcp:cloudrunv2/service:Service",
            {"template": {"containers": []}},
            "prod",
            True,
        ),
        (
            "cloud-run-dedicated-service-account",
            "gcp:cloudrunv2/service:Service",
            run_service(serviceAccount="123-compute@developer.gserviceaccount.com"),
            "prod",
            True,
        ),
        # Project-level roles.
        (
            "no-broad-project-roles",
            "gcp:projects/iAMMember:IAMMember",
            {"role": "roles/bigquery.jobUser", "member": "serviceAccount:a@p.iam.gserviceaccount.com"},
            "prod",
            False,
        ),
        (
            "no-broad-project-roles",
            "gcp:projects/iAMMember:IAMMember",
            {"role": "roles/bigquery.dataEditor", "member": "serviceAccount:a@p.iam.gserviceaccount.com"},
            "dev",
            True,
        ),
        (
            "no-broad-project-roles",
            "gcp:projects/iAMBinding:IAMBinding",
            {"role": "roles/editor", "members": ["user:a@example.com"]},
            "dev",
            True,
        ),
        (
            "no-broad-project-roles",
            "gcp:bigquery/datasetIamMember:DatasetIamMember",
            {"role": "roles/bigquery.dataEditor", "member": "serviceAccount:a@p.iam.gserviceaccount.com"},
            "prod",
            False,
        ),
        # Dead-lettering on BigQuery subscriptions.
        (
            "bigquery-subscription-dead-letter",
            "gcp:pubsub/subscription:Subscription",
            {
                "bigqueryConfig": {"table": "p.d.t"},
                "deadLetterPolicy": {"deadLetterTopic": "projects/p/topics/dl", "maxDeliveryAttempts": 5.0},
            },
            "prod",
            False,
        ),
        (
            "bigquery-subscription-dead-letter",
            "gcp:pubsub/subscription:Subscription",
            {"bigqueryConfig": {"table": "p.d.t"}},
            "prod",
            True,
        ),
        (
            "bigquery-subscription-dead-letter",
            "gcp:pubsub/subscription:Subscription",
            {
                "bigqueryConfig": {"table": "p.d.t"},
                "deadLetterPolicy": {"deadLetterTopic": "projects/p/topics/dl"},
            },
            "prod",
            True,
        ),
        (
            "bigquery-subscription-dead-letter",
            "gcp:pubsub/subscription:Subscription",
            {"topic": "projects/p/topics/t"},
            "prod",
            False,
        ),
        # Deletion protection in prod only, and only where data lives.
        (
            "deletion-protection-in-prod",
            "gcp:bigquery/table:Table",
            {"tableId": "t", "deletionProtection": True},
            "prod",
            False,
        ),
        ("deletion-protection-in-prod", "gcp:bigquery/table:Table", {"tableId": "t"}, "prod", True),
        (
            "deletion-protection-in-prod",
            "gcp:bigquery/table:Table",
            {"tableId": "t", "deletionProtection": False},
            "dev",
            False,
        ),
        (
            "deletion-protection-in-prod",
            "gcp:bigquery/table:Table",
            {"tableId": "v", "view": {"query": "SELECT 1"}, "deletionProtection": False},
            "prod",
            False,
        ),
        (
            "deletion-protection-in-prod",
            "gcp:bigquery/dataset:Dataset",
            {"datasetId": "d", "deleteContentsOnDestroy": True},
            "prod",
            True,
        ),
        (
            "deletion-protection-in-prod",
            "gcp:bigquery/dataset:Dataset",
            {"datasetId": "d", "deleteContentsOnDestroy": False},
            "prod",
            False,
        ),
        # Labels.
        ("required-labels", "gcp:pubsub/topic:Topic", {"labels": LABELS}, "prod", False),
        ("required-labels", "gcp:pubsub/topic:Topic", {"labels": {"environment": "prod"}}, "prod", True),
        ("required-labels", "gcp:bigquery/dataset:Dataset", {}, "prod", True),
        ("required-labels", "gcp:pubsub/topicIAMMember:TopicIAMMember", {}, "prod", False),
        ("required-labels", "gcp:monitoring/slo:Slo", {"userLabels": LABELS}, "prod", False),
        ("required-labels", "gcp:monitoring/alertPolicy:AlertPolicy", {"labels": LABELS}, "prod", True),
    ],
)
def test_policy(policy: str, type_: str, props: dict[str, Any], stack: str, bad: bool) -> None:
    assert bool(violations(policy, type_, props, stack)) is bad


def test_policy_config_overrides_default_stacks() -> None:
    args = ResourceValidationArgs(
        resource_type="gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
        props={"role": "roles/run.invoker", "member": "allUsers"},
        urn="urn:pulumi:dev::airline-data-platform::x::r",
        name="r",
        opts=None,  # type: ignore[arg-type]
        provider=None,
        config={"publicInvokerStacks": []},
    )
    found: list[str] = []
    BY_NAME["cloud-run-no-public-invoker"].validate(args, lambda message, urn=None: found.append(message))
    assert found


def test_pack_names_are_unique() -> None:
    assert len(BY_NAME | STACK_BY_NAME) == len(POLICIES) + len(STACK_POLICIES)


def policy_resource(type_: str, props: dict[str, Any], name: str = "r") -> PolicyResource:
    return PolicyResource(
        resource_type=type_,
        props=props,
        urn=f"urn:pulumi:prod::airline-data-platform::{type_}::{name}",
        name=name,
        opts=None,  # type: ignore[arg-type]
        provider=None,
        parent=None,
        dependencies=[],
        property_dependencies={},
    )


def stack_violations(policy: str, resources: list[PolicyResource]) -> list[str]:
    found: list[str] = []
    STACK_BY_NAME[policy].validate(
        StackValidationArgs(resources), lambda message, urn=None: found.append(message)
    )
    return found


def slo() -> PolicyResource:
    return policy_resource(
        "gcp:monitoring/slo:Slo", {"service": "flight-api", "sloId": "api-availability"}, "slo"
    )


def burn_policy(severity: str, slo_name: str = SLO_NAME, **changes: Any) -> PolicyResource:
    def condition(lookback: int) -> dict[str, Any]:
        return {
            "conditionThreshold": {
                "filter": f'select_slo_burn_rate("{slo_name}", "{lookback}s")',
                "comparison": "COMPARISON_GT",
                "thresholdValue": 14.4,
                "duration": "0s",
            }
        }

    props = {
        "displayName": f"burn {severity}",
        "combiner": "AND",
        "severity": severity,
        "conditions": [condition(3600), condition(300)],
        "documentation": {"mimeType": "text/markdown", "content": f"[runbook]({RUNBOOK}#fast-burn)"},
    }
    return policy_resource("gcp:monitoring/alertPolicy:AlertPolicy", props | changes, f"alert-{severity}")


@pytest.mark.parametrize(
    ("resources", "bad"),
    [
        ([slo(), burn_policy("CRITICAL"), burn_policy("WARNING")], False),
        ([slo(), burn_policy("CRITICAL")], True),  # no ticket
        ([slo(), burn_policy("WARNING")], True),  # nobody paged
        ([slo()], True),
        (
            [slo(), burn_policy("CRITICAL", "None"), burn_policy("WARNING", "None")],
            True,
        ),  # mocks without names
        (
            [
                slo(),
                burn_policy("CRITICAL", SLO_NAME.replace("api-availability", "api-latency")),
                burn_policy("WARNING"),
            ],
            True,
        ),
        ([slo(), burn_policy("CRITICAL", combiner="OR"), burn_policy("WARNING")], True),
        ([burn_policy("CRITICAL")], False),  # an alert without an SLO is the other policy's business
    ],
)
def test_every_slo_is_alerted(resources: list[PolicyResource], bad: bool) -> None:
    assert bool(stack_violations("every-slo-is-alerted", resources)) is bad


@pytest.mark.parametrize(
    ("documentation", "bad"),
    [
        ({"mimeType": "text/markdown", "content": f"[runbook]({RUNBOOK}#fast-burn)"}, False),
        ({"mimeType": "text/markdown", "content": f"[runbook]({RUNBOOK})"}, False),
        ({"mimeType": "text/markdown", "content": f"[runbook]({RUNBOOK}#no-such-section)"}, True),
        (
            {"mimeType": "text/markdown", "content": "[runbook](https://x/docs/runbooks/no-such-alert.md)"},
            True,
        ),
        ({"mimeType": "text/markdown", "content": "Call Bob."}, True),
        ({"content": f"[runbook]({RUNBOOK})"}, True),
        ({}, True),
    ],
)
def test_every_alert_has_a_runbook(documentation: dict[str, Any], bad: bool) -> None:
    policy = burn_policy("CRITICAL", documentation=documentation)
    assert bool(stack_violations("every-alert-has-a-runbook", [policy])) is bad


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_whole_pack_passes_on_each_stack(plans: dict[str, list[dict[str, Any]]], stack: str) -> None:
    resources = plans[stack]
    assert len(resources) > 20
    failures = []
    for resource in resources:
        for policy in POLICIES:
            args = ResourceValidationArgs(
                resource_type=resource["type"],
                props=resource["inputs"],
                urn=resource["urn"],
                name=resource["name"],
                opts=None,  # type: ignore[arg-type]
                provider=None,
            )
            policy.validate(args, lambda message, urn=None, p=policy.name: failures.append(f"{p}: {message}"))
    stack = [policy_resource(r["type"], r["inputs"], r["name"]) for r in resources]
    for stack_policy in STACK_POLICIES:
        failures += [f"{stack_policy.name}: {m}" for m in stack_violations(stack_policy.name, stack)]
    assert failures == []
    assert any(r["type"] == "gcp:monitoring/slo:Slo" for r in resources), (
        "the stack policies had SLOs to check"
    )
