"""The Pulumi program under mocks, for dev, staging and prod.

Resources are captured by the mock monitor and asserted after the program's outputs have
resolved (preview=False), so every `apply` ran and every check here can fail.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from airline_platform.apis import API_OF, REQUIRED_APIS
from airline_platform.config import ConfigError
from airline_platform.plan import MOCK_PROJECT_NUMBER, STAND_IN_IMAGE, Plan, render, stack_config

from app.api.settings import Settings
from app.contract.pipeline import PIPELINE
from app.contract.warehouse_schema import table_schema

STACKS = ["dev", "staging", "prod"]
LABELLED = {
    "gcp:bigquery/dataset:Dataset",
    "gcp:bigquery/table:Table",
    "gcp:cloudrunv2/service:Service",
    "gcp:pubsub/subscription:Subscription",
    "gcp:pubsub/topic:Topic",
}
PUBSUB_AGENT = f"serviceAccount:service-{MOCK_PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"


def of_type(plan: Plan, type_: str) -> list[dict[str, Any]]:
    return [r for r in plan.resources if r["type"] == type_]


def one(plan: Plan, type_: str, name: str) -> dict[str, Any]:
    (found,) = [r for r in of_type(plan, type_) if r["name"] == name]
    return found["inputs"]


def project(stack: str) -> str:
    return stack_config(stack)["gcp:project"]


@pytest.mark.parametrize("stack", STACKS)
def test_names_and_urns_are_unique(plans: dict[str, Plan], stack: str) -> None:
    # The mock monitor accepts duplicates the real engine rejects.
    resources = plans[stack].resources
    assert len({r["urn"] for r in resources}) == len(resources)
    assert len({(r["type"], r["name"]) for r in resources}) == len(resources)


def test_environments_differ_only_in_configuration(plans: dict[str, Plan]) -> None:
    # Invokers and notification channels are configuration: their number differs per stack. So are
    # burn-rate policies: a stack's goals leave out those a total outage cannot fire
    # (test_monitoring.py checks which).
    per_stack = ("serviceIamMember", "notificationChannel")

    def shape(plan: Plan) -> set[tuple[str, str]]:
        return {
            (r["type"], r["name"])
            for r in plan.resources
            if not any(t in r["type"] for t in per_stack) and not r["name"].endswith("-burn")
        }

    assert shape(plans["dev"]) == shape(plans["staging"]) == shape(plans["prod"])


@pytest.mark.parametrize("stack", STACKS)
def test_every_labellable_resource_is_labelled(plans: dict[str, Plan], stack: str) -> None:
    labelled = [r for r in plans[stack].resources if r["type"] in LABELLED]
    assert len(labelled) == 8
    for resource in labelled:
        assert resource["inputs"]["labels"].keys() >= {"environment", "service", "owner"}, resource["name"]
        assert resource["inputs"]["labels"]["environment"] == stack
        assert resource["inputs"]["project"] == project(stack)


@pytest.mark.parametrize("stack", STACKS)
def test_table_matches_the_contract(plans: dict[str, Plan], stack: str) -> None:
    table = one(plans[stack], "gcp:bigquery/table:Table", "warehouse-events-table")
    assert json.loads(table["schema"]) == table_schema()
    assert table["timePartitioning"]["type"] == "DAY"
    assert table["timePartitioning"]["field"] == PIPELINE.partition_field
    assert table["requirePartitionFilter"] is True
    assert table["clusterings"] == list(PIPELINE.clustering_fields)
    view = one(plans[stack], "gcp:bigquery/table:Table", "warehouse-latest-view")
    assert view["view"] == {"query": PIPELINE.latest_view_sql(project(stack)), "useLegacySql": False}


@pytest.mark.parametrize(
    ("stack", "protected", "expiration_days"),
    [("dev", False, 30), ("staging", False, 90), ("prod", True, None)],
)
def test_retention_and_deletion_protection(
    plans: dict[str, Plan], stack: str, protected: bool, expiration_days: int | None
) -> None:
    plan = plans[stack]
    table = one(plan, "gcp:bigquery/table:Table", "warehouse-events-table")
    assert table["deletionProtection"] is protected
    assert table["timePartitioning"].get("expirationMs") == (
        None if expiration_days is None else expiration_days * 86_400_000
    )
    assert (
        one(plan, "gcp:bigquery/dataset:Dataset", "warehouse-dataset")["deleteContentsOnDestroy"]
        is not protected
    )
    assert one(plan, "gcp:cloudrunv2/service:Service", "api-service")["deletionProtection"] is protected


@pytest.mark.parametrize("stack", STACKS)
def test_project_level_iam_is_only_bigquery_job_user(plans: dict[str, Plan], stack: str) -> None:
    project_iam = [r for r in plans[stack].resources if r["type"].startswith("gcp:projects/iAM")]
    assert [(r["type"], r["inputs"]["role"]) for r in project_iam] == [
        ("gcp:projects/iAMMember:IAMMember", "roles/bigquery.jobUser")
    ]
    editors = [r for r in plans[stack].resources if r["inputs"].get("role") == "roles/bigquery.dataEditor"]
    assert [(r["type"], r["inputs"]["member"]) for r in editors] == [
        ("gcp:bigquery/datasetIamMember:DatasetIamMember", PUBSUB_AGENT)
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_service_agent_can_write_and_dead_letter(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    grants = {
        (r["type"], r["inputs"]["role"]): r["inputs"]
        for r in plan.resources
        if r["inputs"].get("member") == PUBSUB_AGENT
    }
    assert grants.keys() == {
        ("gcp:bigquery/datasetIamMember:DatasetIamMember", "roles/bigquery.dataEditor"),
        ("gcp:pubsub/topicIAMMember:TopicIAMMember", "roles/pubsub.publisher"),
        ("gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember", "roles/pubsub.subscriber"),
    }
    assert grants[("gcp:bigquery/datasetIamMember:DatasetIamMember", "roles/bigquery.dataEditor")][
        "datasetId"
    ] == (PIPELINE.dataset)
    assert grants[("gcp:pubsub/topicIAMMember:TopicIAMMember", "roles/pubsub.publisher")]["topic"] == (
        PIPELINE.dead_letter_topic
    )
    assert grants[("gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember", "roles/pubsub.subscriber")][
        "subscription"
    ] == (PIPELINE.subscription)


@pytest.mark.parametrize("stack", STACKS)
def test_bigquery_subscription(plans: dict[str, Plan], stack: str) -> None:
    sub = one(plans[stack], "gcp:pubsub/subscription:Subscription", "ingestion-bigquery-subscription")
    p = project(stack)
    assert sub["name"] == PIPELINE.subscription
    assert sub["topic"] == f"projects/{p}/topics/{PIPELINE.topic}"
    assert sub["bigqueryConfig"] == {
        "table": f"{p}.{PIPELINE.dataset}.{PIPELINE.table}",
        "useTableSchema": True,
        "writeMetadata": True,
        "dropUnknownFields": False,
    }
    assert sub["deadLetterPolicy"] == {
        "deadLetterTopic": f"projects/{p}/topics/{PIPELINE.dead_letter_topic}",
        "maxDeliveryAttempts": PIPELINE.max_delivery_attempts,
    }
    assert sub["retryPolicy"] == {
        "minimumBackoff": f"{PIPELINE.retry_minimum_backoff_seconds}s",
        "maximumBackoff": f"{PIPELINE.retry_maximum_backoff_seconds}s",
    }
    assert sub["ackDeadlineSeconds"] == PIPELINE.ack_deadline_seconds
    inspect = one(plans[stack], "gcp:pubsub/subscription:Subscription", "ingestion-dead-letter-inspect")
    assert inspect["topic"] == f"projects/{p}/topics/{PIPELINE.dead_letter_topic}"
    assert "bigqueryConfig" not in inspect


@pytest.mark.parametrize("stack", STACKS)
def test_api_identity_has_only_its_grants(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    email = f"flight-api-runtime@{project(stack)}.iam.gserviceaccount.com"
    grants = sorted(
        (r["type"], r["inputs"]["role"])
        for r in plan.resources
        if r["inputs"].get("member") == f"serviceAccount:{email}"
    )
    assert grants == [
        ("gcp:bigquery/datasetIamMember:DatasetIamMember", "roles/bigquery.dataViewer"),
        ("gcp:projects/iAMMember:IAMMember", "roles/bigquery.jobUser"),
        ("gcp:pubsub/topicIAMMember:TopicIAMMember", "roles/pubsub.publisher"),
        ("gcp:pubsub/topicIAMMember:TopicIAMMember", "roles/pubsub.viewer"),
    ]
    assert one(plan, "gcp:cloudrunv2/service:Service", "api-service")["template"]["serviceAccount"] == email


@pytest.mark.parametrize("stack", STACKS)
def test_service_runs_the_configured_image_by_digest(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    (container,) = one(plan, "gcp:cloudrunv2/service:Service", "api-service")["template"]["containers"]
    assert container["image"] == STAND_IN_IMAGE == plan.outputs["image"]
    # No stack builds or stores images: the one registry lives in the delivery project.
    assert not [r for r in plan.resources if r["type"].startswith(("docker:", "gcp:artifactregistry/"))]


def test_the_promoted_digest_is_what_the_service_runs() -> None:
    promoted = "europe-west1-docker.pkg.dev/airline-delivery/airline/flight-api@sha256:" + "b" * 64
    plan = render("prod", {"airline-data-platform:image": promoted})
    (container,) = one(plan, "gcp:cloudrunv2/service:Service", "api-service")["template"]["containers"]
    assert container["image"] == promoted == plan.outputs["image"]
    with pytest.raises(ConfigError, match="image must be an Artifact Registry image by digest"):
        render("prod", {"airline-data-platform:image": promoted.split("@")[0] + ":latest"})
    with pytest.raises(ConfigError, match="image is required"):
        render("staging", {"airline-data-platform:image": ""})


@pytest.mark.parametrize("stack", STACKS)
def test_service_shape_follows_config(
    plans: dict[str, Plan], stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = stack_config(stack)
    service = one(plans[stack], "gcp:cloudrunv2/service:Service", "api-service")
    template = service["template"]
    (container,) = template["containers"]
    key = "airline-data-platform:"
    assert template["scaling"] == {
        "minInstanceCount": float(config[key + "minInstances"]),
        "maxInstanceCount": float(config[key + "maxInstances"]),
    }
    assert container["resources"]["limits"] == {"cpu": config[key + "cpu"], "memory": config[key + "memory"]}
    assert container["resources"]["startupCpuBoost"] is True
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert service["ingress"] == config[key + "ingress"]
    # The env vars the service sets are the ones the app reads.
    envs = {e["name"]: e["value"] for e in container["envs"]}
    assert "PORT" not in envs  # Cloud Run sets it
    for name, value in envs.items():
        monkeypatch.setenv(name, value)
    assert Settings.from_env() == Settings(
        project_id=project(stack),
        host="127.0.0.1",
        port=8000,
        publish_auth="google-id-token",
        publishers=tuple(json.loads(config[key + "publishers"])),
        max_bytes_billed=int(config[key + "maxBytesBilled"]),
        rate_limit_per_minute=int(config[key + "rateLimitPerMinute"]),
        # Only where Cloud Run's invoker check guards every request (app/api/auth.py).
        trust_cloud_run_iam=config[key + "allowPublicInvoker"] != "true",
        synthetic_publishers=tuple(json.loads(config[key + "syntheticPublishers"])),
    )


@pytest.mark.parametrize(("stack", "public"), [("dev", True), ("staging", False), ("prod", False)])
def test_invokers(plans: dict[str, Plan], stack: str, public: bool) -> None:
    invokers = [
        r
        for r in of_type(plans[stack], "gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
        if r["name"] != "monitoring-uptime-invoker"  # the uptime check's identity, see test_monitoring
    ]
    members = {r["inputs"]["member"] for r in invokers}
    config = stack_config(stack)
    assert ("allUsers" in members) is public
    assert "allAuthenticatedUsers" not in members
    # Cloud Run refuses a caller without run.invoker before the app sees it: publishers included.
    assert members - {"allUsers"} == set(json.loads(config["airline-data-platform:invokerMembers"])) | set(
        json.loads(config["airline-data-platform:publishers"])
    )
    assert {r["inputs"]["role"] for r in invokers} == {"roles/run.invoker"}


@pytest.mark.parametrize("stack", STACKS)
def test_every_publisher_can_invoke_the_service(plans: dict[str, Plan], stack: str) -> None:
    """Whatever the other invokers, each principal the app lets publish can reach the app."""
    grants = {
        (r["inputs"]["member"], r["inputs"]["role"], r["inputs"]["name"])
        for r in of_type(plans[stack], "gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
    }
    publishers = json.loads(stack_config(stack)["airline-data-platform:publishers"])
    assert publishers
    for publisher in publishers:
        assert (publisher, "roles/run.invoker", "flight-api") in grants


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_waits_for_its_api(plans: dict[str, Plan], stack: str) -> None:
    """On a fresh project each resource is created only after the API that serves it is enabled."""
    plan = plans[stack]
    by_urn = {r["urn"]: r for r in plan.resources}
    enabler = {r["inputs"]["service"]: r["urn"] for r in of_type(plan, "gcp:projects/service:Service")}
    assert set(enabler) == set(REQUIRED_APIS)

    def waits_for(urn: str, seen: set[str]) -> set[str]:
        for dependency in plan.dependencies.get(urn, []):
            if dependency not in seen:
                seen.add(dependency)
                waits_for(dependency, seen)
        return seen

    checked = 0
    for resource in plan.resources:
        if not resource["type"].startswith("gcp:") or resource["type"] == "gcp:projects/service:Service":
            continue
        if resource["type"] == "gcp:projects/serviceIdentity:ServiceIdentity":
            api = resource["inputs"]["service"]  # the agent of that API
        else:
            (api,) = [api for prefix, api in API_OF.items() if resource["type"].startswith(prefix)]
        assert enabler[api] in waits_for(resource["urn"], set()), (resource["name"], api)
        assert by_urn[enabler[api]]["inputs"]["project"] == resource["inputs"]["project"]
        checked += 1
    assert checked > 50


@pytest.mark.parametrize("stack", STACKS)
def test_outputs(plans: dict[str, Plan], stack: str) -> None:
    outputs = plans[stack].outputs
    assert outputs["service_url"].startswith("https://")
    assert {
        k: outputs[k] for k in ("topic", "subscription", "dead_letter_topic", "dataset", "table", "view")
    } == {
        "topic": PIPELINE.topic,
        "subscription": PIPELINE.subscription,
        "dead_letter_topic": PIPELINE.dead_letter_topic,
        "dataset": PIPELINE.dataset,
        "table": PIPELINE.table,
        "view": PIPELINE.latest_view,
    }


def test_bad_stack_config_stops_the_program(plans: dict[str, Plan]) -> None:
    with pytest.raises(ConfigError, match="allowPublicInvoker is only allowed in dev"):
        render("staging", {"airline-data-platform:allowPublicInvoker": "true"})
    with pytest.raises(pulumi.ConfigTypeError):
        render("prod", {"airline-data-platform:maxInstances": "many"})
    # A failed run leaves nothing behind: the next render is the same as the first.
    assert render("dev").resources == plans["dev"].resources
