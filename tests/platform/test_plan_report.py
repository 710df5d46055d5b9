"""`make plan` for people: readable values, folded noise, monitoring per stack and at a glance."""

from __future__ import annotations

from importlib.metadata import version
from types import SimpleNamespace
from typing import Any

import pytest
from airline_platform import plan_report
from airline_platform.plan import CHECKED_PULUMI, Plan, PulumiInternalsChanged, render, stack_config
from pulumi.runtime import mocks


def test_values_read_like_a_person_writes_them() -> None:
    assert plan_report.readable(20.0) == 20
    assert plan_report.readable(0.999) == 0.999
    assert [plan_report.readable(v) for v in ("3600s", "300s", "259200s", "90s", "0s")] == [
        "1 h",
        "5 min",
        "3 d",
        "90 s",
        "0 s",
    ]
    assert plan_report.readable("60 seconds") == "60 seconds"


def test_diff_keeps_only_real_differences(plans: dict[str, Plan]) -> None:
    text = plan_report.diff({s: (stack_config(s)["gcp:project"], p.resources) for s, p in plans.items()})
    assert "labels.environment" not in text  # each stack's name folds to ${stack}
    assert "pkg.${stack}" not in text  # ...but not inside europe-west1-docker.pkg.dev
    assert "maxInstanceCount: dev=2  staging=5  prod=20" in text  # whole numbers, no .0
    assert 'notificationChannels: dev=[]  staging=["channel:data-platform-team"]' in text
    assert "dashboardJson.mosaicLayout.tiles[" in text  # JSON compared field by field
    assert "goal: dev=0.95  staging=0.99  prod=0.999" in text


def test_differences_are_structured_per_stack(plans: dict[str, Plan]) -> None:
    found = plan_report.differences(
        {s: (stack_config(s)["gcp:project"], p.resources) for s, p in plans.items()}
    )
    by_field = {(d.name, d.field): d.values for d in found}
    assert by_field["api-service", "template.scaling.maxInstanceCount"] == {
        "dev": 2,
        "staging": 5,
        "prod": 20,
    }
    assert by_field["warehouse-events-table", "deletionProtection"] == {
        "dev": False,
        "staging": False,
        "prod": True,
    }
    assert by_field["api-invoker-allUsers", None] == {"dev": None}  # only in dev
    assert ("warehouse-events-table", "schema") not in by_field  # one contract: same everywhere


def test_each_stack_shows_its_monitoring(plans: dict[str, Plan]) -> None:
    prod = "\n".join(plan_report.stack_summary(plans["prod"].resources))
    name = plans["prod"].outputs["slos"]["api-availability"]
    assert f'select_slo_burn_rate("{name}", "3600s" = 1 h) > 14.4' in prod
    assert "auth OIDC_TOKEN" in prod
    assert "-> oncall-pager, data-platform-team" in prod
    assert "channel       none" in "\n".join(plan_report.stack_summary(plans["dev"].resources))
    glance = plan_report.at_a_glance({s: p.resources for s, p in plans.items()})
    assert "goal api-availability       95%      99%                 99.9%" in glance
    assert "CRITICAL alerts notify      nobody" in glance


def test_a_changed_pulumi_internal_stops_the_plan_naming_the_version(monkeypatch: Any) -> None:
    """The one read beyond Pulumi's public mocks API (URNs and dependencies from the mock monitor's
    registration) fails loudly, naming the installed and the checked version, never a silent plan."""
    original = mocks.MockMonitor.RegisterResource

    def without_urn(self: mocks.MockMonitor, request: Any) -> Any:
        response = original(self, request)
        return SimpleNamespace(id=response.id, object=response.object)  # as if `urn` were renamed

    monkeypatch.setattr(mocks.MockMonitor, "RegisterResource", without_urn)
    with pytest.raises(PulumiInternalsChanged) as failure:
        render("dev")
    assert f"pulumi {version('pulumi')} changed" in str(failure.value)
    assert f"checked with pulumi {CHECKED_PULUMI}" in str(failure.value)
