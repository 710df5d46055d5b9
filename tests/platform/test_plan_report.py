"""`make plan` for people: readable values, folded noise, monitoring per stack and at a glance."""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airline_platform import plan_report
from airline_platform.plan import CHECKED_PULUMI, Plan, PulumiInternalsChanged, render, review, stack_config
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
    detail = "\n".join(plan_report.stack_detail(plans["prod"].resources))
    name = plans["prod"].outputs["slos"]["api-availability"]
    assert f'select_slo_burn_rate("{name}", "3600s" = 1 h) > 14.4' in detail
    assert "select_slo_burn_rate" not in prod  # filters are in plans/<stack>.txt, not on the screen
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


def test_the_review_shows_what_differs_first_by_name_and_uncut(
    plans: dict[str, Plan], tmp_path: Path
) -> None:
    text = review(list(plans.values()), tmp_path)
    order = [
        text.index("What differs between dev, staging, prod"),
        text.index("Monitoring at a glance"),
        text.index("\ndev: "),
        text.index("\nstaging: "),
        text.index("\nprod: "),
        text.index("\nAll: $"),
    ]
    assert order == sorted(order)
    first_screen = text[: text.index("Monitoring at a glance")]
    assert "template.scaling.minInstanceCount: dev=0  staging=0  prod=1" in first_screen
    # List items by name, never by position, where they have one.
    assert "envs[APP_RATE_LIMIT_PER_MINUTE].value" in first_screen
    assert "tiles[Latency (ms): p50, p95, p99]" in first_screen
    assert not re.search(r"(envs|tiles)\[\d+\]", text)
    # Every value that differs is on the screen whole, or (a long text) by the words that differ,
    # whole, with the full text in plans/differences.txt.
    projects = {s: (stack_config(s)["gcp:project"], p.resources) for s, p in plans.items()}
    full = (tmp_path / "differences.txt").read_text()
    for d in plan_report.differences(projects):
        for value in d.values.values():
            if d.field is None or value is None:
                continue
            if len(json.dumps(value)) <= plan_report.LONG_VALUE:
                assert json.dumps(value) in first_screen, (d.name, d.field, value)
            assert json.dumps(value) in full, (d.name, d.field)
    assert "alert         CRITICAL" in text[text.index("\ndev: ") :]
    for stack in plans:
        assert (tmp_path / f"{stack}.txt").read_text().count("select_slo_burn_rate") > 0


def test_burn_rate_policies_kept_and_left_out_with_the_reason(plans: dict[str, Plan]) -> None:
    """A threshold T on a goal G can only fire when T x (1 - G) < 1 (dev's 90% goals: not 14.4x)."""
    dev = "\n".join(plan_report.burn_rate_policies(plans["dev"].resources))
    (line,) = (x for x in dev.splitlines() if "api-latency (90%)" in x)
    assert line.startswith(
        "  burn rate     api-latency (90%): slow-burn 6x, budget-burn 1x; left out: fast-burn 14.4x"
    )
    assert "even a total outage burns at only 10x" in line
    prod = "\n".join(plan_report.burn_rate_policies(plans["prod"].resources))
    assert "left out" not in prod
    assert "api-availability (99.9%): fast-burn 14.4x, slow-burn 6x, budget-burn 1x" in prod
    # A policy missing from the plan although the goal lets it fire is called out, not explained away.
    without = [r for r in plans["prod"].resources if r["name"] != "monitoring-alert-api-latency-slow-burn"]
    assert "slow-burn 6x: not in the plan, though it could fire" in "\n".join(
        plan_report.burn_rate_policies(without)
    )
