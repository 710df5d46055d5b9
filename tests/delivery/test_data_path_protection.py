"""Prod's data path is protected in code: the engine is asked to refuse deleting or replacing it.

Reads the `protect` flag of each RegisterResource request the program sends, the same request the
engine receives, for every stack. Pulumi refuses any deployment that would delete a protected
resource, a replacement included
(https://www.pulumi.com/docs/iac/operations/stack-management/protecting-against-undesired-changes/).
"""

from __future__ import annotations

from typing import Any

import pytest
from airline_platform import plan

DATA_BEARING = {
    "gcp:pubsub/topic:Topic",
    "gcp:pubsub/subscription:Subscription",
    "gcp:bigquery/dataset:Dataset",
    "gcp:bigquery/table:Table",
}


def registrations(stack: str, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    original = plan._Monitor.RegisterResource

    def record(self: Any, request: Any) -> Any:
        response = original(self, request)
        seen.append({"type": request.type, "urn": response.urn, "protect": bool(request.protect)})
        return response

    monkeypatch.setattr(plan._Monitor, "RegisterResource", record)
    rendered = plan.render(stack)
    views = {r["urn"] for r in rendered.resources if r["inputs"].get("view")}
    return [r for r in seen if r["type"] in DATA_BEARING and r["urn"] not in views]


def test_prod_protects_every_topic_subscription_dataset_and_table(monkeypatch: pytest.MonkeyPatch) -> None:
    data = registrations("prod", monkeypatch)
    kinds = {r["type"] for r in data}
    assert kinds == DATA_BEARING
    assert len(data) >= 6  # two topics, two subscriptions, the dataset, the table
    assert [r["urn"] for r in data if not r["protect"]] == []


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_stacks_without_deletion_protection_can_still_be_torn_down(
    stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = registrations(stack, monkeypatch)
    assert data
    assert [r["urn"] for r in data if r["protect"]] == []
