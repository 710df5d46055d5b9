"""First-deploy conformance: what only a real project can confirm, checked after `pulumi up`.

The offline tests prove the program renders what we mean; they cannot prove that Google's
services behave as the program assumes (a log filter matching the entries Cloud Logging
stores, a metric a BigQuery subscription really reports, a runbook link that resolves). After
the canary's requests this reads the deployed stack back through Google's own clients and
prints PASS or FAIL per check (docs/operations.md, "First-deploy conformance"):

    make conformance STACK=dev    # ID_TOKEN: the canary's ID token where the service is private

Monitoring shows a sample only after its ingestion delay (Pub/Sub's metrics: "after sampling,
data is not visible for up to 240 seconds"; https://cloud.google.com/monitoring/api/v3/latency-n-retention),
so the checks on data are retried until they pass or `--wait` seconds have gone by.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urldefrag

import requests
from google.api_core.exceptions import GoogleAPICallError
from google.cloud import monitoring_dashboard_v1, monitoring_v3
from google.cloud.pubsub_v1 import SubscriberClient
from google.pubsub_v1.types import BigQueryConfig, Subscription

from airline_platform.monitoring.catalog import filter_text
from airline_platform.monitoring.log_metrics import CONTRACT_BREACHES, METRIC_PREFIX

# What the canary and Schemathesis cannot make happen: these metrics must exist, not have data.
NO_DATA_EXPECTED = {
    CONTRACT_BREACHES.name: "counts stored rows that break the contract; a healthy deploy stores none",
}
SUBSCRIPTION_DETAILS = "pubsub.googleapis.com/subscription/export_push_subscription_details"
ACKED = "pubsub.googleapis.com/subscription/ack_message_count"
UPTIME_PASSED = "monitoring.googleapis.com/uptime_check/check_passed"
# The stack outputs it reads (`program.build` exports them).
OUTPUTS = (
    "project",
    "service_url",
    "subscription",
    "dashboard",
    "uptime_check",
    "slos",
    "alert_policies",
    "log_metrics",
)
HTTP_TIMEOUT_SECONDS = 10
FULL_VIEW = monitoring_v3.ListTimeSeriesRequest.TimeSeriesView(
    monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL
)


class ConformanceError(RuntimeError):
    """The stack cannot be checked at all (outputs missing, the Pulumi CLI failed)."""


@dataclass(frozen=True)
class Stack:
    """The deployed resources to check, as the Pulumi program exports them (`program.build`)."""

    project: str
    service_url: str
    subscription: str
    dashboard: str
    uptime_check: str
    slos: Mapping[str, str]
    alert_policies: Mapping[str, str]
    log_metrics: Sequence[str]

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, Any]) -> Stack:
        if missing := [key for key in OUTPUTS if not outputs.get(key)]:
            raise ConformanceError(
                f"the stack exports no {', '.join(missing)}: run `pulumi up` with this commit"
            )
        return cls(**{key: outputs[key] for key in OUTPUTS})


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Check:
    """One named check; `waits` when its answer depends on data still being ingested."""

    name: str
    run: Callable[[], tuple[bool, str]]
    waits: bool = True


@dataclass
class Cloud:
    """Google's clients, and plain HTTP for the service and the runbook links (fakes in tests)."""

    metrics: monitoring_v3.MetricServiceClient
    alerts: monitoring_v3.AlertPolicyServiceClient
    uptime: monitoring_v3.UptimeCheckServiceClient
    dashboards: monitoring_dashboard_v1.DashboardsServiceClient
    subscriber: SubscriberClient
    http_status: Callable[[str, str, Mapping[str, str]], int]
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


def _series(cloud: Cloud, stack: Stack, filter_: str, lookback: timedelta) -> list[monitoring_v3.TimeSeries]:
    end = cloud.now()
    return list(
        cloud.metrics.list_time_series(
            name=f"projects/{stack.project}",
            filter=filter_,
            interval=monitoring_v3.TimeInterval(start_time=end - lookback, end_time=end),
            view=FULL_VIEW,
        )
    )


def _amount(value: monitoring_v3.TypedValue) -> float:
    """A point's count: a distribution's sample count, else its number (a bool counts 1 when true)."""
    kind = monitoring_v3.TypedValue.pb(value).WhichOneof("value")
    if kind == "distribution_value":
        return float(value.distribution_value.count)
    return float(getattr(value, kind)) if kind in ("int64_value", "double_value", "bool_value") else 0.0


def _total(series: Iterable[monitoring_v3.TimeSeries]) -> float:
    return sum(_amount(point.value) for s in series for point in s.points)


def _newest(series: monitoring_v3.TimeSeries) -> monitoring_v3.Point:
    return max(series.points, key=lambda p: p.interval.end_time)


def _has_counted(cloud: Cloud, stack: Stack, filter_: str, lookback: timedelta) -> tuple[bool, str]:
    total = _total(_series(cloud, stack, filter_, lookback))
    return (
        total > 0,
        f"{total:g} counted in the last {lookback}" if total else f"nothing in the last {lookback}",
    )


def log_metric_checks(cloud: Cloud, stack: Stack, lookback: timedelta) -> list[Check]:
    """Each log-based metric counted something (its filter matches the entries Logging stores)."""

    def check(name: str) -> Check:
        metric_type = METRIC_PREFIX + name
        if name in NO_DATA_EXPECTED:

            def exists() -> tuple[bool, str]:
                cloud.metrics.get_metric_descriptor(
                    name=f"projects/{stack.project}/metricDescriptors/{metric_type}"
                )
                return True, f"exists; no data expected: {NO_DATA_EXPECTED[name]}"

            return Check(f"log metric {name} exists", exists, waits=False)
        return Check(
            f"log metric {name} has data",
            lambda: _has_counted(cloud, stack, f'metric.type="{metric_type}"', lookback),
        )

    return [check(name) for name in stack.log_metrics]


def slo_checks(cloud: Cloud, stack: Stack, lookback: timedelta) -> list[Check]:
    """Each SLO's SLI has points: its filters name series that exist (timeseries-selectors docs)."""

    def check(key: str, slo: str) -> Check:
        def run() -> tuple[bool, str]:
            points = sum(
                len(s.points) for s in _series(cloud, stack, f'select_slo_health("{slo}")', lookback)
            )
            return points > 0, f"{points} health points" if points else "no SLI data yet"

        return Check(f"SLO {key} has data", run)

    return [check(key, slo) for key, slo in stack.slos.items()]


def subscription_checks(cloud: Cloud, stack: Stack, lookback: timedelta) -> list[Check]:
    """The BigQuery subscription is ACTIVE by its own API and by its metric, and its writes are counted."""
    path = SubscriberClient.subscription_path(stack.project, stack.subscription)
    on_subscription = {"subscription_id": stack.subscription}

    def api_state() -> tuple[bool, str]:
        subscription = cloud.subscriber.get_subscription(subscription=path)
        state = Subscription.State(subscription.state).name
        export = BigQueryConfig.State(subscription.bigquery_config.state).name
        return (state, export) == (
            "ACTIVE",
            "ACTIVE",
        ), f"Subscription.state {state}, bigqueryConfig.state {export}"

    def metric_state() -> tuple[bool, str]:
        series = _series(
            cloud, stack, filter_text(SUBSCRIPTION_DETAILS, "pubsub_subscription", on_subscription), lookback
        )
        if not series:
            return False, "no export_push_subscription_details series yet"
        newest = max(series, key=lambda s: _newest(s).interval.end_time)
        state = newest.metric.labels.get("subscription_state", "?")
        return state == "ACTIVE", f"newest subscription_state {state}"

    return [
        Check("subscription ACTIVE (Pub/Sub API)", api_state, waits=False),
        Check("subscription ACTIVE (export_push_subscription_details)", metric_state),
        Check(
            "ack_message_count counts the BigQuery subscription's writes",
            lambda: _has_counted(
                cloud, stack, filter_text(ACKED, "pubsub_subscription", on_subscription), lookback
            ),
        ),
    ]


def uptime_check(cloud: Cloud, stack: Stack, lookback: timedelta) -> Check:
    """The uptime check exists and the newest result from every checker region passed."""

    def run() -> tuple[bool, str]:
        config = cloud.uptime.get_uptime_check_config(
            name=f"projects/{stack.project}/uptimeCheckConfigs/{stack.uptime_check}"
        )
        series = _series(
            cloud,
            stack,
            filter_text(UPTIME_PASSED, "uptime_url", {}, {"check_id": stack.uptime_check}),
            lookback,
        )
        if not series:
            return False, f"{config.display_name}: no results yet"
        latest = {s.metric.labels.get("checker_location", "?"): _newest(s).value.bool_value for s in series}
        failing = sorted(region for region, passed in latest.items() if not passed)
        if failing:
            return False, f"{config.display_name}: failing from {', '.join(failing)}"
        return True, f"{config.display_name}: passing from {len(latest)} regions"

    return Check(f"uptime check {stack.uptime_check} passes", run)


def dashboard_check(cloud: Cloud, stack: Stack) -> Check:
    def run() -> tuple[bool, str]:
        dashboard = cloud.dashboards.get_dashboard(name=stack.dashboard)
        return True, f"{dashboard.display_name!r}"

    return Check("dashboard exists", run, waits=False)


def alert_policy_checks(cloud: Cloud, stack: Stack) -> list[Check]:
    """Every policy is enabled and its Runbook link answers 200 (the page, not its anchor)."""
    statuses: dict[str, int] = {}

    def check(key: str, name: str) -> Check:
        def run() -> tuple[bool, str]:
            policy = cloud.alerts.get_alert_policy(name=name)
            runbooks = [link.url for link in policy.documentation.links if link.display_name == "Runbook"]
            if policy.enabled is not True:  # a BoolValue: proto-plus reads it as True, False or None
                return False, "disabled" if policy.enabled is False else "enabled not reported"
            if not runbooks:
                return False, "enabled, but its documentation has no Runbook link"
            page = urldefrag(runbooks[0]).url
            if page not in statuses:
                statuses[page] = cloud.http_status("GET", page, {})
            status = statuses[page]
            return status == 200, f"enabled; runbook {runbooks[0]} answered {status}"

        return Check(f"alert policy {key}", run, waits=False)

    return [check(key, name) for key, name in stack.alert_policies.items()]


def refused_publish(cloud: Cloud, stack: Stack, id_token: str | None) -> Check:
    """One refused publish (an empty body), so the refused-publishes metric has a line to count.

    The canary's token goes in both headers: where Cloud Run checks `X-Serverless-Authorization`
    for IAM it leaves `Authorization` to the app; either way the app refuses an empty body.
    """

    def run() -> tuple[bool, str]:
        headers = {"Content-Type": "application/json"}
        if id_token:
            headers |= {
                "Authorization": f"Bearer {id_token}",
                "X-Serverless-Authorization": f"Bearer {id_token}",
            }
        status = cloud.http_status("POST", f"{stack.service_url.rstrip('/')}/v1/events", headers)
        return status in (400, 401, 403), f"POST /v1/events with no event answered {status}"

    return Check("a refused publish is answered 4xx", run, waits=False)


def all_checks(cloud: Cloud, stack: Stack, lookback: timedelta, id_token: str | None) -> list[Check]:
    return [
        refused_publish(cloud, stack, id_token),
        dashboard_check(cloud, stack),
        *alert_policy_checks(cloud, stack),
        uptime_check(cloud, stack, lookback),
        *subscription_checks(cloud, stack, lookback),
        *slo_checks(cloud, stack, lookback),
        *log_metric_checks(cloud, stack, lookback),
    ]


def _attempt(check: Check) -> Result:
    try:
        ok, detail = check.run()
    except GoogleAPICallError as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc.message}"
    except requests.RequestException as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return Result(check.name, ok, detail)


def run_checks(
    checks: Sequence[Check],
    wait_seconds: float,
    poll_seconds: float = 30,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[Result]:
    """Every check once; those on ingested data again until they pass or the wait is over."""
    deadline = clock() + wait_seconds
    results = {check.name: _attempt(check) for check in checks}
    while (pending := [c for c in checks if c.waits and not results[c.name].ok]) and clock() < deadline:
        print(f"waiting for {len(pending)} checks on data still being ingested ...", file=sys.stderr)
        sleep(min(poll_seconds, max(deadline - clock(), 0)))
        results |= {check.name: _attempt(check) for check in pending}
    return [results[check.name] for check in checks]


def report(results: Sequence[Result]) -> int:
    for result in results:
        print(f"{'PASS' if result.ok else 'FAIL'}  {result.name}: {result.detail}")
    failed = sum(not r.ok for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def stack_outputs(stack: str) -> dict[str, Any]:
    """`pulumi stack output --json` of the stack (the deploy workflow's backend and login)."""
    command = ["pulumi", "stack", "output", "--json", "--stack", stack]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    if done.returncode:
        raise ConformanceError(f"{' '.join(command)} failed: {done.stderr.strip()}")
    outputs: dict[str, Any] = json.loads(done.stdout)
    return outputs


def _http_status(method: str, url: str, headers: Mapping[str, str]) -> int:
    return requests.request(method, url, headers=dict(headers), timeout=HTTP_TIMEOUT_SECONDS).status_code


def google_cloud() -> Cloud:
    return Cloud(
        metrics=monitoring_v3.MetricServiceClient(),
        alerts=monitoring_v3.AlertPolicyServiceClient(),
        uptime=monitoring_v3.UptimeCheckServiceClient(),
        dashboards=monitoring_dashboard_v1.DashboardsServiceClient(),
        subscriber=SubscriberClient(),
        http_status=_http_status,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, choices=("dev", "staging", "prod"))
    parser.add_argument("--wait", type=float, default=360, help="seconds to wait for ingested data (360)")
    parser.add_argument("--lookback", type=float, default=30, help="minutes of data to read (30)")
    args = parser.parse_args(argv)
    try:
        stack = Stack.from_outputs(stack_outputs(args.stack))
    except ConformanceError as exc:
        print(f"FAIL  {exc}")
        return 1
    checks = all_checks(google_cloud(), stack, timedelta(minutes=args.lookback), os.environ.get("ID_TOKEN"))
    return report(run_checks(checks, args.wait))


if __name__ == "__main__":
    sys.exit(main())
