"""Every Google API call the API makes is covered by the roles the Pulumi program grants its identity.

The API runs every route against recording clients that implement exactly the methods listed in
`PERMISSIONS` (a new call fails here until someone says which permission it needs); each call's
permissions, on the resource it touches, must then be held through the runtime service account's
grants in the rendered stack. `ROLE_PERMISSIONS` is the relevant part of Google's predefined-role
reference (https://cloud.google.com/iam/docs/roles-permissions).
"""

from __future__ import annotations

import json
import re
from concurrent.futures import Future
from typing import Any

import pytest
from airline_platform.plan import Plan, stack_config
from litestar.testing import TestClient

from app.api.main import create_app
from app.api.services import Services
from app.api.settings import Settings
from app.api.warehouse import FlightWarehouse
from app.contract.examples import EXAMPLE_EVENT
from app.contract.pipeline import PIPELINE

ROLE_PERMISSIONS = {
    "roles/bigquery.dataViewer": {
        "bigquery.datasets.get",
        "bigquery.tables.get",
        "bigquery.tables.getData",
        "bigquery.tables.list",
    },
    "roles/bigquery.jobUser": {"bigquery.jobs.create"},
    "roles/pubsub.publisher": {"pubsub.topics.publish"},
    "roles/pubsub.viewer": {"pubsub.topics.get", "pubsub.topics.list", "pubsub.subscriptions.get"},
}
# What each client method needs: (kind of resource it acts on, permission).
PERMISSIONS = {
    "bigquery.query": [("project", "bigquery.jobs.create")],  # plus read access to each table it reads
    "bigquery.get_table": [("dataset", "bigquery.tables.get")],
    "pubsub.publish": [("topic", "pubsub.topics.publish")],
    "pubsub.get_topic": [("topic", "pubsub.topics.get")],
}
TABLE_READ = [("dataset", "bigquery.tables.getData")]
# INFORMATION_SCHEMA.PARTITIONS reads table metadata (BigQuery documents both permissions).
PARTITIONS_READ = [("dataset", "bigquery.tables.get"), ("dataset", "bigquery.tables.list")]
TABLE_IN_SQL = re.compile(r"`([a-z0-9-]+)\.([A-Za-z0-9_]+)\.([A-Za-z0-9_.]+)`")


class Calls:
    """What the API did: (client method, permission it needs, resource kind, resource id)."""

    def __init__(self) -> None:
        self.made: list[tuple[str, str, str, str]] = []

    def need(
        self, method: str, resources: dict[str, str], extra: list[tuple[str, str]] | None = None
    ) -> None:
        for kind, permission in PERMISSIONS[method] + (extra or []):
            self.made.append((method, permission, kind, resources[kind]))


class RecordingBigQuery:
    """bigquery.Client with only the methods the permission table knows."""

    def __init__(self, calls: Calls, project: str) -> None:
        self.calls, self.project = calls, project

    def query(self, sql: str, **_: Any) -> Any:
        self.calls.need("bigquery.query", {"project": self.project})
        self.rows = [{"newest": "20130101"}] if "INFORMATION_SCHEMA" in sql else []
        for _project, dataset, table in TABLE_IN_SQL.findall(sql):
            reads = PARTITIONS_READ if table == "INFORMATION_SCHEMA.PARTITIONS" else TABLE_READ
            self.calls.made += [("bigquery.query", permission, kind, dataset) for kind, permission in reads]
        return self

    def result(self, **_: Any) -> list[dict[str, Any]]:
        return self.rows

    def get_table(self, table: str, **_: Any) -> None:
        self.calls.need("bigquery.get_table", {"dataset": table.split(".")[1]})

    def close(self) -> None:
        pass


class RecordingPublisher:
    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    def publish(self, topic: str, data: bytes, **_: Any) -> Future[str]:
        self.calls.need("pubsub.publish", {"topic": topic.rsplit("/", 1)[-1]})
        future: Future[str] = Future()
        future.set_result("1")
        return future

    def get_topic(self, request: dict[str, str], **_: Any) -> None:
        self.calls.need("pubsub.get_topic", {"topic": request["topic"].rsplit("/", 1)[-1]})

    def stop(self) -> None:
        pass


@pytest.fixture(scope="module")
def calls() -> Calls:
    """Every route the API serves, called once, against the recording clients."""
    recorded = Calls()
    settings = Settings(project_id="runtime-project", publish_auth="none")
    services = Services(settings)
    services.__dict__["warehouse"] = FlightWarehouse(RecordingBigQuery(recorded, "runtime-project"), settings)  # type: ignore[arg-type]
    services.__dict__["publisher"] = RecordingPublisher(recorded)
    with TestClient(create_app(services=services)) as client:
        for path in (
            "/v1/flights",
            "/v1/flights?from=2013-01-01",
            "/v1/flights/x",
            "/v1/flights/x?on=2013-01-01",
        ):
            assert client.get(path).status_code in (200, 404), path
        assert client.get("/ready").status_code == 200
        published = client.post(
            "/v1/events", content=json.dumps(EXAMPLE_EVENT), headers={"content-type": "application/json"}
        )
        assert published.status_code == 202, published.text
    return recorded


def runtime_grants(plan: Plan, stack: str) -> list[tuple[str, str, str]]:
    """(resource kind, resource id, role) of every grant to the API's service account."""
    project = stack_config(stack)["gcp:project"]
    member = f"serviceAccount:flight-api-runtime@{project}.iam.gserviceaccount.com"
    scope = {
        "gcp:bigquery/datasetIamMember:DatasetIamMember": ("dataset", "datasetId"),
        "gcp:projects/iAMMember:IAMMember": ("project", "project"),
        "gcp:pubsub/topicIAMMember:TopicIAMMember": ("topic", "topic"),
    }
    return [
        (scope[r["type"]][0], r["inputs"][scope[r["type"]][1]], r["inputs"]["role"])
        for r in plan.resources
        if r["inputs"].get("member") == member
    ]


def test_the_api_touches_the_pipeline_resources_only(calls: Calls) -> None:
    assert {(kind, resource) for _, _, kind, resource in calls.made} == {
        ("project", "runtime-project"),
        ("dataset", PIPELINE.dataset),
        ("topic", PIPELINE.topic),
    }
    assert {method for method, _, _, _ in calls.made} == set(PERMISSIONS), "every client method was exercised"


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_call_is_covered_by_the_granted_roles(plans: dict[str, Plan], calls: Calls, stack: str) -> None:
    project = stack_config(stack)["gcp:project"]
    held: dict[tuple[str, str], set[str]] = {}
    for kind, resource, role in runtime_grants(plans[stack], stack):
        assert role in ROLE_PERMISSIONS, f"{role} is granted but its permissions are not described here"
        held.setdefault((kind, resource), set()).update(ROLE_PERMISSIONS[role])
    project_wide = held.get(("project", project), set())
    missing = sorted(
        {
            (method, permission, kind, resource)
            for method, permission, kind, resource in calls.made
            # The recording ran in another project: its project-level needs map to this stack's project.
            if permission
            not in held.get((kind, project if kind == "project" else resource), set()) | project_wide
        }
    )
    assert not missing, f"the runtime identity lacks: {missing}"
