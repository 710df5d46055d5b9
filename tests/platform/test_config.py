"""Configuration is validated on load: bad environments fail with every problem listed."""

from __future__ import annotations

import dataclasses

import pytest
from airline_platform.config import ConfigError, StackConfig

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
    image=f"{REGISTRY}/flight-api@sha256:" + "a" * 64,
)


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
        ({"max_delivery_attempts": 3}, "maxDeliveryAttempts"),
        ({"retry_minimum_backoff_seconds": 700}, "retryMinimumBackoffSeconds"),
        ({"image": ""}, "image is required"),
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
    )
    assert dev.labels("api") == {"environment": "dev", "service": "api", "owner": "data-platform"}
