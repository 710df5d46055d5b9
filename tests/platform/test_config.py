"""Configuration is validated on load: bad environments fail with every problem listed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from airline_platform.config import ConfigError, StackConfig, runbook_base_url
from airline_platform.monitoring.config import SLO_IDS, Channel, MonitoringConfig

PAGER = Channel("oncall", "email", {"email_address": "oncall@example.com"}, ("page",), "On-call")
MONITORING = MonitoringConfig(
    goals=dict.fromkeys(SLO_IDS, 0.99),
    latency_threshold_ms=2000,
    freshness_threshold_seconds=600,
    channels=(PAGER,),
    runbook_base_url="https://github.com/example/repo/blob/main/docs/runbooks",
)

REGISTRY = "europe-west1-docker.pkg.dev/airline-delivery/airline"
GOOD = StackConfig(
    project="airline-data-prod",
    region="europe-west1",
    environment="prod",
    owner="data-platform",
    bigquery_location="europe-west1",
    min_instances=1,
    max_instances=20,
    cpu="2",
    memory="1Gi",
    partition_expiration_days=None,
    deletion_protection=True,
    allow_public_invoker=False,
    invoker_members=("group:consumers@example.com",),
    ingress="INGRESS_TRAFFIC_ALL",
    ack_deadline_seconds=60,
    max_delivery_attempts=5,
    retry_minimum_backoff_seconds=10,
    retry_maximum_backoff_seconds=600,
    monitoring=MONITORING,
    publishers=("serviceAccount:feed@airline-data-prod.iam.gserviceaccount.com",),
    max_bytes_billed=1024**3,
    rate_limit_per_minute=600,
    image=f"{REGISTRY}/flight-api@sha256:" + "a" * 64,
)


def monitoring(**changes: object) -> MonitoringConfig:
    return dataclasses.replace(MONITORING, **changes)


def channel(**changes: object) -> Channel:
    return dataclasses.replace(PAGER, **changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"deletion_protection": False}, "prod requires deletionProtection"),
        ({"partition_expiration_days": 30}, "prod keeps its data"),
        ({"allow_public_invoker": True}, "allowPublicInvoker is only allowed in dev"),
        ({"invoker_members": ("allUsers",)}, "allUsers is not an invoker member"),
        ({"invoker_members": ("alice@example.com",)}, "is not an IAM member"),
        ({"min_instances": 3, "max_instances": 2}, "minInstances <= maxInstances"),
        ({"environment": "qa"}, "environment must be one of"),
        ({"owner": "Data Platform"}, "owner must be a label value"),
        ({"ingress": "all"}, "ingress must be one of"),
        ({"memory": "1GB"}, "memory must look like"),
        ({"cpu": "3"}, "cpu must be one of 1, 2, 4, 6, 8"),
        # Cloud Run's CPU/memory table (config.CPU_MEMORY_MIB cites the pages).
        ({"cpu": "4", "memory": "512Mi"}, "4 CPU with 2Gi to 16Gi of memory, got 512Mi"),
        ({"cpu": "4", "memory": "1Gi"}, "4 CPU with 2Gi to 16Gi"),
        ({"cpu": "6", "memory": "2Gi"}, "6 CPU with 4Gi to 24Gi"),
        ({"cpu": "8", "memory": "3Gi"}, "8 CPU with 4Gi to 32Gi"),
        ({"cpu": "1", "memory": "5Gi"}, "1 CPU with 512Mi to 4Gi"),
        ({"cpu": "2", "memory": "9Gi"}, "2 CPU with 512Mi to 8Gi"),
        ({"cpu": "8", "memory": "33Gi"}, "8 CPU with 4Gi to 32Gi"),
        ({"memory": "256Mi"}, "1 CPU with 512Mi to 4Gi|2 CPU with 512Mi to 8Gi"),
        ({"max_delivery_attempts": 3}, "maxDeliveryAttempts"),
        ({"retry_minimum_backoff_seconds": 700}, "retryMinimumBackoffSeconds"),
        ({"monitoring": monitoring(goals={"api-availability": 0.999})}, "needs a goal for api-latency"),
        (
            {"monitoring": monitoring(goals=dict.fromkeys([*SLO_IDS, "api-cost"], 0.9))},
            "unknown SLOs api-cost",
        ),
        ({"monitoring": monitoring(goals=dict.fromkeys(SLO_IDS, 0.9999))}, r"must be in \(0, 0.999\]"),
        ({"monitoring": monitoring(goals=dict.fromkeys(SLO_IDS, 0.0))}, r"must be in \(0, 0.999\]"),
        ({"monitoring": monitoring(latency_threshold_ms=0)}, "latencyThresholdMs"),
        ({"monitoring": monitoring(freshness_threshold_seconds=10)}, "freshnessThresholdSeconds"),
        ({"monitoring": monitoring(runbook_base_url="http://example.com/")}, "runbookBaseUrl"),
        ({"monitoring": monitoring(channels=())}, "prod must page someone"),
        ({"monitoring": monitoring(channels=(channel(routes=("ticket",)),))}, "prod must page someone"),
        ({"monitoring": monitoring(channels=(channel(routes=("sms",)),))}, "routes must be page, ticket"),
        ({"monitoring": monitoring(channels=(channel(labels={}),))}, "needs the label email_address"),
        (
            {"monitoring": monitoring(channels=(channel(type="slack", labels={"auth_token": "x"}),))},
            "credential",
        ),
        ({"monitoring": monitoring(channels=(channel(), channel()))}, "names must be unique"),
        ({"monitoring": monitoring(channels=(channel(name="On Call"),))}, "name must be lowercase"),
        ({"image": ""}, "image is required"),
        ({"publishers": ("group:feeds@example.com",)}, "never a group"),
        ({"publishers": ("allUsers",)}, "must be serviceAccount"),
        ({"publishers": ("feed@example.com",)}, "must be serviceAccount"),
        ({"max_bytes_billed": 1024}, "maxBytesBilled must be between"),
        ({"rate_limit_per_minute": 0}, "rateLimitPerMinute must be at least 1"),
        # Anything but an Artifact Registry image by full digest: prod must run the promoted bytes.
        ({"image": f"{REGISTRY}/flight-api:latest"}, "by digest"),
        ({"image": f"{REGISTRY}/flight-api"}, "by digest"),
        ({"image": f"{REGISTRY}/flight-api@sha256:abc"}, "by digest"),
        ({"image": f"{REGISTRY}/flight-api@sha256:" + "A" * 64}, "by digest"),
        ({"image": "docker.io/library/python@sha256:" + "a" * 64}, "by digest"),
        ({"image": "europe-west1-docker.pkg.dev/p/airline/flight-api@sha256:" + "a" * 64}, "by digest"),
    ],
)
def test_invalid_values_are_rejected(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(GOOD, **changes)


@pytest.mark.parametrize(
    ("cpu", "memory"),
    [("1", "512Mi"), ("1", "4Gi"), ("2", "8Gi"), ("4", "2Gi"), ("4", "16Gi"), ("6", "4Gi"), ("8", "32Gi")],
)
def test_cpu_and_memory_at_the_edges_of_cloud_runs_table_are_accepted(cpu: str, memory: str) -> None:
    assert dataclasses.replace(GOOD, cpu=cpu, memory=memory).memory == memory


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(ConfigError) as error:
        dataclasses.replace(GOOD, deletion_protection=False, allow_public_invoker=True)
    assert "deletionProtection" in str(error.value)
    assert "allowPublicInvoker" in str(error.value)


def test_public_invoker_is_fine_in_dev() -> None:
    dev = dataclasses.replace(
        GOOD,
        environment="dev",
        deletion_protection=False,
        partition_expiration_days=30,
        allow_public_invoker=True,
        monitoring=monitoring(channels=()),  # dev may notify nobody
    )
    assert dev.labels("api") == {"environment": "dev", "service": "api", "owner": "data-platform"}


def test_alerts_link_the_runbooks_of_the_repository_deployed_from() -> None:
    """GitHub Actions names the repository in every step; by hand, sourceRepository does."""
    actions = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/flights"}
    assert runbook_base_url(None, actions) == "https://github.com/acme/flights/blob/HEAD/docs/runbooks"
    assert runbook_base_url("https://github.com/me/fork", actions).startswith(
        "https://github.com/acme/flights/"
    )
    assert (
        runbook_base_url("https://github.com/me/fork/", {})
        == "https://github.com/me/fork/blob/HEAD/docs/runbooks"
    )
    with pytest.raises(ConfigError, match="sourceRepository"):
        runbook_base_url(None, {})


def test_no_stack_file_names_a_repository() -> None:
    """The runbook links come from the deploy, so a moved or forked repository links its own runbooks."""
    stacks = Path(__file__).resolve().parents[2] / "stacks"
    for stack_file in stacks.glob("Pulumi.*.yaml"):
        assert "github.com" not in stack_file.read_text(), stack_file.name
