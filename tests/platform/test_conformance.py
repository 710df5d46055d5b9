"""`make conformance` against recorded API answers: a healthy project passes, each defect fails its check.

The answers are built from Google's own message types (monitoring_v3, monitoring_dashboard_v1,
pubsub_v1), and the clients are autospecced from the real client classes, so a call with a
method or argument the real client lacks fails here too. The stack is what the Pulumi program
exports for staging under mocks, so conformance reads exactly the outputs `pulumi up` produces.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from airline_platform import conformance
from airline_platform.conformance import (
    ACKED,
    SUBSCRIPTION_DETAILS,
    UPTIME_PASSED,
    Check,
    Cloud,
    ConformanceError,
    Stack,
    all_checks,
    report,
    run_checks,
)
from airline_platform.monitoring.catalog import filter_text
from airline_platform.monitoring.log_metrics import METRIC_PREFIX
from airline_platform.plan import Plan
from google.api import metric_pb2
from google.api_core.exceptions import NotFound
from google.cloud import monitoring_dashboard_v1, monitoring_v3, pubsub_v1

NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
LOOKBACK = timedelta(minutes=30)
TOKEN = "canary-id-token"
DISTRIBUTIONS = {"flight_api/warehouse_query_latency", "flight_api/warehouse_bytes_billed"}


def _point(minutes_ago: int, **value: Any) -> monitoring_v3.Point:
    end = NOW - timedelta(minutes=minutes_ago)
    return monitoring_v3.Point(
        interval=monitoring_v3.TimeInterval(start_time=end - timedelta(minutes=1), end_time=end),
        value=monitoring_v3.TypedValue(**value),
    )


def _series(metric: str, points: list[monitoring_v3.Point], **labels: str) -> monitoring_v3.TimeSeries:
    return monitoring_v3.TimeSeries(metric={"type": metric, "labels": labels}, points=points)


@dataclass
class Project:
    """The recorded answers of one project: what each API returned."""

    series: dict[str, list[monitoring_v3.TimeSeries]]
    descriptors: set[str]
    subscription: pubsub_v1.types.Subscription
    uptime: dict[str, monitoring_v3.UptimeCheckConfig]
    dashboards: dict[str, monitoring_dashboard_v1.Dashboard]
    policies: dict[str, monitoring_v3.AlertPolicy]
    http: dict[tuple[str, str], int]
    requests: list[tuple[str, str, Mapping[str, str]]] = field(default_factory=list)

    def cloud(self) -> Cloud:
        def spec(cls: type, **methods: Callable[..., Any]) -> Any:
            client = mock.create_autospec(cls, instance=True)
            for name, answer in methods.items():
                getattr(client, name).side_effect = answer
            return client

        def found(table: Mapping[str, Any], name: str) -> Any:
            if name not in table:
                raise NotFound(f"{name} not found")
            return table[name]

        def descriptor(name: str) -> metric_pb2.MetricDescriptor:
            if name not in self.descriptors:
                raise NotFound(f"{name} not found")
            return metric_pb2.MetricDescriptor(name=name)

        def http_status(method: str, url: str, headers: Mapping[str, str]) -> int:
            self.requests.append((method, url, headers))
            return self.http.get((method, url), 404)

        return Cloud(
            metrics=spec(
                monitoring_v3.MetricServiceClient,
                list_time_series=lambda name, filter, interval, view: self.series.get(filter, []),
                get_metric_descriptor=lambda name: descriptor(name),
            ),
            alerts=spec(
                monitoring_v3.AlertPolicyServiceClient,
                get_alert_policy=lambda name: found(self.policies, name),
            ),
            uptime=spec(
                monitoring_v3.UptimeCheckServiceClient,
                get_uptime_check_config=lambda name: found(self.uptime, name),
            ),
            dashboards=spec(
                monitoring_dashboard_v1.DashboardsServiceClient,
                get_dashboard=lambda name: found(self.dashboards, name),
            ),
            subscriber=spec(
                pubsub_v1.SubscriberClient, get_subscription=lambda subscription: self.subscription
            ),
            http_status=http_status,
            now=lambda: NOW,
        )


RUNBOOKS = "https://github.com/example-airline/airline-data-platform/blob/main/docs/runbooks"


def healthy(stack: Stack) -> Project:
    """A project after `pulumi up` and the canary, as the documentation says it answers."""
    series: dict[str, list[monitoring_v3.TimeSeries]] = {}
    for name in stack.log_metrics:
        value = {"distribution_value": {"count": 3}} if name in DISTRIBUTIONS else {"int64_value": 2}
        series[f'metric.type="{METRIC_PREFIX}{name}"'] = [
            _series(METRIC_PREFIX + name, [_point(3, **value), _point(4, int64_value=0)])
        ]
    for slo in stack.slos.values():
        series[f'select_slo_health("{slo}")'] = [_series("", [_point(2, double_value=1.0)])]
    on_subscription = {"subscription_id": stack.subscription}
    series[filter_text(SUBSCRIPTION_DETAILS, "pubsub_subscription", on_subscription)] = [
        _series(
            SUBSCRIPTION_DETAILS,
            [_point(2, int64_value=1)],
            subscription_state="ACTIVE",
            subscription_type="BigQuery",
        )
    ]
    series[filter_text(ACKED, "pubsub_subscription", on_subscription)] = [
        _series(ACKED, [_point(3, int64_value=2)], delivery_type="push")
    ]
    series[filter_text(UPTIME_PASSED, "uptime_url", {}, {"check_id": stack.uptime_check})] = [
        _series(
            UPTIME_PASSED, [_point(1, bool_value=True), _point(2, bool_value=False)], checker_location=region
        )
        for region in ("usa-iowa", "europe", "asia-pacific")
    ]
    policies = {
        name: monitoring_v3.AlertPolicy(
            name=name,
            display_name=key,
            enabled=True,
            documentation=monitoring_v3.AlertPolicy.Documentation(
                links=[
                    monitoring_v3.AlertPolicy.Documentation.Link(
                        display_name="Runbook", url=f"{RUNBOOKS}/{key}.md#section"
                    ),
                    monitoring_v3.AlertPolicy.Documentation.Link(display_name="Dashboard", url="https://x"),
                ]
            ),
        )
        for key, name in stack.alert_policies.items()
    }
    return Project(
        series=series,
        descriptors={
            f"projects/{stack.project}/metricDescriptors/{METRIC_PREFIX}{name}" for name in stack.log_metrics
        },
        subscription=pubsub_v1.types.Subscription(
            name=f"projects/{stack.project}/subscriptions/{stack.subscription}",
            state=pubsub_v1.types.Subscription.State.ACTIVE,
            bigquery_config=pubsub_v1.types.BigQueryConfig(
                table=f"{stack.project}.airline_analytics.flight_events",
                state=pubsub_v1.types.BigQueryConfig.State.ACTIVE,
            ),
        ),
        uptime={
            f"projects/{stack.project}/uptimeCheckConfigs/{stack.uptime_check}": (
                monitoring_v3.UptimeCheckConfig(display_name="flight API uptime")
            )
        },
        dashboards={stack.dashboard: monitoring_dashboard_v1.Dashboard(display_name="Airline data platform")},
        policies=policies,
        http={("GET", f"{RUNBOOKS}/{key}.md"): 200 for key in stack.alert_policies}
        | {("POST", f"{stack.service_url}/v1/events"): 401},
    )


@pytest.fixture
def stack(plans: dict[str, Plan]) -> Stack:
    return Stack.from_outputs(plans["staging"].outputs)


def results(project: Project, stack: Stack) -> dict[str, conformance.Result]:
    checks = all_checks(project.cloud(), stack, LOOKBACK, TOKEN)
    return {r.name: r for r in run_checks(checks, wait_seconds=0)}


def test_a_healthy_project_passes_every_check(stack: Stack) -> None:
    project = healthy(stack)
    answered = results(project, stack)

    assert [name for name, r in answered.items() if not r.ok] == []
    # One check per alert policy, SLO and log metric the program exports, plus the fixed ones.
    assert len(answered) == len(stack.alert_policies) + len(stack.slos) + len(stack.log_metrics) + 6
    assert answered["log metric flight_api/contract_breaches exists"].detail.startswith("exists; no data")
    assert "passing from 3 regions" in answered[f"uptime check {stack.uptime_check} passes"].detail
    # The probe carries the canary's token for Cloud Run's invoker check and for the app.
    method, url, headers = project.requests[0]
    assert (method, url) == ("POST", f"{stack.service_url}/v1/events")
    assert headers["X-Serverless-Authorization"] == headers["Authorization"] == f"Bearer {TOKEN}"
    # Each runbook page is fetched once, however many policies link it.
    assert len([r for r in project.requests if r[0] == "GET"]) == len(set(stack.alert_policies))


def _policy(project: Project, stack: Stack, key: str) -> monitoring_v3.AlertPolicy:
    return project.policies[stack.alert_policies[key]]


def _zero_rejections(project: Project, stack: Stack) -> None:
    metric = f'metric.type="{METRIC_PREFIX}flight_api/rejected_publishes"'
    project.series[metric] = [_series(metric, [_point(3, int64_value=0)])]


def _no_breach_metric(project: Project, stack: Stack) -> None:
    project.descriptors = {d for d in project.descriptors if not d.endswith("contract_breaches")}


def _no_slo_data(project: Project, stack: Stack) -> None:
    del project.series[f'select_slo_health("{stack.slos["ingest-correctness"]}")']


def _resource_error(project: Project, stack: Stack) -> None:
    project.subscription.state = pubsub_v1.types.Subscription.State.RESOURCE_ERROR
    project.subscription.bigquery_config.state = pubsub_v1.types.BigQueryConfig.State.PERMISSION_DENIED


def _details_not_active(project: Project, stack: Stack) -> None:
    key = filter_text(SUBSCRIPTION_DETAILS, "pubsub_subscription", {"subscription_id": stack.subscription})
    project.series[key].append(
        _series(SUBSCRIPTION_DETAILS, [_point(1, int64_value=1)], subscription_state="SCHEMA_MISMATCH")
    )


def _acks_not_counted(project: Project, stack: Stack) -> None:
    del project.series[filter_text(ACKED, "pubsub_subscription", {"subscription_id": stack.subscription})]


def _uptime_failing(project: Project, stack: Stack) -> None:
    key = filter_text(UPTIME_PASSED, "uptime_url", {}, {"check_id": stack.uptime_check})
    project.series[key][1].points.insert(0, _point(0, bool_value=False))


def _no_dashboard(project: Project, stack: Stack) -> None:
    project.dashboards.clear()


def _disabled(project: Project, stack: Stack) -> None:
    _policy(project, stack, "api-at-max-instances").enabled = False


def _runbook_404(project: Project, stack: Stack) -> None:
    del project.http[("GET", f"{RUNBOOKS}/ingest-subscription-not-active.md")]


def _no_runbook_link(project: Project, stack: Stack) -> None:
    del _policy(project, stack, "api-query-cost-cap").documentation.links[0]


def _publish_accepted(project: Project, stack: Stack) -> None:
    project.http[("POST", f"{stack.service_url}/v1/events")] = 202


@pytest.mark.parametrize(
    ("defect", "failing", "detail"),
    [
        (_zero_rejections, "log metric flight_api/rejected_publishes has data", "nothing in the last"),
        (_no_breach_metric, "log metric flight_api/contract_breaches exists", "NotFound"),
        (_no_slo_data, "SLO ingest-correctness has data", "no SLI data"),
        (
            _resource_error,
            "subscription ACTIVE (Pub/Sub API)",
            "RESOURCE_ERROR, bigqueryConfig.state PERMISSION",
        ),
        (_details_not_active, "subscription ACTIVE (export_push_subscription_details)", "SCHEMA_MISMATCH"),
        (_acks_not_counted, "ack_message_count counts the BigQuery subscription's writes", "nothing"),
        (_uptime_failing, "uptime check {uptime} passes", "failing from europe"),
        (_no_dashboard, "dashboard exists", "NotFound"),
        (_disabled, "alert policy api-at-max-instances", "disabled"),
        (_runbook_404, "alert policy ingest-subscription-not-active", "answered 404"),
        (_no_runbook_link, "alert policy api-query-cost-cap", "no Runbook link"),
        (_publish_accepted, "a refused publish is answered 4xx", "answered 202"),
    ],
)
def test_each_defect_fails_its_check_and_only_it(
    stack: Stack, defect: Callable[[Project, Stack], None], failing: str, detail: str
) -> None:
    project = healthy(stack)
    defect(project, stack)
    answered = results(project, stack)

    failed = {name: r.detail for name, r in answered.items() if not r.ok}
    assert list(failed) == [failing.format(uptime=stack.uptime_check)]
    assert detail in next(iter(failed.values()))
    assert report(list(answered.values())) == 1


def test_checks_on_data_are_retried_until_they_pass_within_the_wait() -> None:
    answers = iter([(False, "not yet"), (False, "not yet"), (True, "there")])
    config_calls: list[int] = []
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    checks = [
        Check("data", lambda: next(answers)),
        Check("config", lambda: config_calls.append(1) or (True, "ok"), waits=False),
    ]
    answered = run_checks(checks, wait_seconds=600, poll_seconds=30, sleep=sleep, clock=lambda: clock[0])

    assert [(r.name, r.ok, r.detail) for r in answered] == [("data", True, "there"), ("config", True, "ok")]
    assert clock[0] == 60
    assert config_calls == [1]  # configuration does not change by waiting: read once


def test_the_wait_is_bounded() -> None:
    clock = [0.0]
    attempts: list[float] = []

    def never() -> tuple[bool, str]:
        attempts.append(clock[0])
        return False, "no data"

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    answered = run_checks([Check("data", never)], 100, poll_seconds=30, sleep=sleep, clock=lambda: clock[0])

    assert not answered[0].ok
    assert attempts == [0, 30, 60, 90, 100]
    assert report(answered) == 1


def test_missing_outputs_are_named(plans: dict[str, Plan]) -> None:
    outputs = dict(plans["prod"].outputs)
    del outputs["alert_policies"]
    with pytest.raises(ConformanceError, match="exports no alert_policies"):
        Stack.from_outputs(outputs)


def test_every_stack_exports_what_conformance_reads(plans: dict[str, Plan]) -> None:
    for plan in plans.values():
        stack = Stack.from_outputs(plan.outputs)
        assert stack.alert_policies
        assert stack.slos
        assert stack.log_metrics
        assert all(
            name.startswith(f"projects/{stack.project}/alertPolicies/")
            for name in stack.alert_policies.values()
        )


def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outputs: dict[str, Any] | None) -> None:
    """A `pulumi` on PATH that prints the given stack outputs, or fails as the CLI does without a login."""
    script = tmp_path / "pulumi"
    if outputs is None:
        script.write_text("#!/bin/sh\necho 'error: no stack named dev found' >&2\nexit 255\n")
    else:
        (tmp_path / "outputs.json").write_text(json.dumps(outputs))
        script.write_text(
            f'#!/bin/sh\n[ "$*" = "stack output --json --stack staging" ] && cat {tmp_path}/outputs.json\n'
        )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")


def test_the_command_reads_the_stack_outputs_and_exits_by_the_result(
    plans: dict[str, Plan],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stack = Stack.from_outputs(plans["staging"].outputs)
    project = healthy(stack)
    fake_pulumi(tmp_path, monkeypatch, plans["staging"].outputs)
    monkeypatch.setattr(conformance, "google_cloud", project.cloud)
    monkeypatch.setenv("ID_TOKEN", TOKEN)

    assert conformance.main(["--stack", "staging", "--wait", "0"]) == 0
    assert project.requests[0][2]["Authorization"] == f"Bearer {TOKEN}"
    _no_dashboard(project, stack)
    assert conformance.main(["--stack", "staging", "--wait", "0"]) == 1
    printed = capsys.readouterr().out
    assert "FAIL  dashboard exists: NotFound" in printed


def test_a_stack_the_cli_cannot_read_fails_with_its_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_pulumi(tmp_path, monkeypatch, None)
    assert conformance.main(["--stack", "dev", "--wait", "0"]) == 1
    assert "no stack named dev found" in capsys.readouterr().out
