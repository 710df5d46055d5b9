"""The Monitoring component as rendered for each stack: SLOs, their burn-rate policies, symptom
alerts, runbook links, channels, the uptime check and the dashboard.

Everything is read from the plan (the inputs the engine would receive), so a filter that reads
`select_slo_burn_rate("None", ...)` or a runbook link to a missing file fails here.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from airline_platform.config import runbook_base_url
from airline_platform.monitoring.alerting import BURN_RATE_WINDOWS, burn_rate_policies
from airline_platform.monitoring.config import SLO_IDS
from airline_platform.monitoring.log_metrics import LOG_METRICS
from airline_platform.plan import MOCK_PROJECT_NUMBER, STAND_IN_REPOSITORY, Plan, stack_config
from airline_platform.plan_report import stack_summary
from google.cloud import monitoring_dashboard_v1 as dash

STACKS = ["dev", "staging", "prod"]
REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO / "docs" / "runbooks"
ALERT = "gcp:monitoring/alertPolicy:AlertPolicy"
SLO = "gcp:monitoring/slo:Slo"
BURN = re.compile(r'^select_slo_burn_rate\("(?P<slo>[^"]+)", "(?P<seconds>\d+)s"\)$')
MONITORING_AGENT = (
    f"serviceAccount:service-{MOCK_PROJECT_NUMBER}@gcp-sa-monitoring-notification.iam.gserviceaccount.com"
)
SYMPTOMS = {
    "api-uptime-check-failing": "CRITICAL",
    "api-at-max-instances": "CRITICAL",
    "ingest-subscription-not-active": "CRITICAL",
    "ingest-dead-letters-waiting": "WARNING",
    # On log-based metrics from the API's structured logs.
    "api-query-cost-cap": "WARNING",
    "api-publish-rejections": "WARNING",
    "api-contract-breaches": "WARNING",
    # Silence is not health: the series the SLOs rest on keep arriving.
    "api-requests-absent": "WARNING",
    "api-uptime-results-absent": "WARNING",
    "ingest-state-absent": "WARNING",
    "ingest-backlog-absent": "WARNING",
    "ingest-acks-missing": "WARNING",
}


def of_type(plan: Plan, type_: str) -> list[dict[str, Any]]:
    return [r for r in plan.resources if r["type"] == type_]


def monitoring_config(stack: str) -> dict[str, Any]:
    return json.loads(stack_config(stack)["airline-data-platform:monitoring"])


def alerts(plan: Plan) -> dict[str, dict[str, Any]]:
    return {r["name"].removeprefix("monitoring-alert-"): r["inputs"] for r in of_type(plan, ALERT)}


def slo_names(plan: Plan) -> dict[str, str]:
    """SLO id -> the SLO's resource name, as the program exports it (the provider-computed output)."""
    return plan.outputs["slos"]


def empty_fields(value: Any, path: str = "") -> list[str]:
    """Paths of empty strings, lists and objects: defaults the API would drop, showing a diff."""
    if value in ("", [], {}):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in empty_fields(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in empty_fields(v, f"{path}[{i}]")]
    return []


def github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


COMMAND = re.compile(r"`(gcloud|bq|curl|jq|\.venv/bin/python) [^`]+`|^\s*(gcloud|bq|curl) ", re.MULTILINE)


def section(runbook: Path, heading: str) -> str:
    text = runbook.read_text()
    start = text.index(f"## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : None if end < 0 else end]


def anchors(runbook: Path) -> set[str]:
    return {
        github_anchor(line.lstrip("#")) for line in runbook.read_text().splitlines() if line.startswith("#")
    }


@pytest.mark.parametrize("stack", STACKS)
def test_slos_have_real_names_and_the_stacks_goals(plans: dict[str, Plan], stack: str) -> None:
    goals = monitoring_config(stack)["goals"]
    slos = {r["inputs"]["sloId"]: r["inputs"] for r in of_type(plans[stack], SLO)}
    assert sorted(slos) == sorted(SLO_IDS)
    for slo_id, inputs in slos.items():
        assert inputs["goal"] == goals[slo_id]
        assert inputs["rollingPeriodDays"] == 30
        assert ("requestBasedSli" in inputs) != ("windowsBasedSli" in inputs)
        assert slo_names(plans[stack])[slo_id] == (
            f"projects/{MOCK_PROJECT_NUMBER}/services/{inputs['service']}/serviceLevelObjectives/{slo_id}"
        )
    assert {slos[s]["service"] for s in SLO_IDS if s.startswith("api-")} == {"flight-api"}
    assert {slos[s]["service"] for s in SLO_IDS if s.startswith("ingest-")} == {"flight-ingest"}


@pytest.mark.parametrize("stack", STACKS)
def test_cloud_run_is_a_monitoring_service(plans: dict[str, Plan], stack: str) -> None:
    (service,) = of_type(plans[stack], "gcp:monitoring/genericService:GenericService")
    assert service["inputs"]["serviceId"] == "flight-api"
    assert service["inputs"]["basicService"] == {
        "serviceType": "CLOUD_RUN",
        "serviceLabels": {"service_name": "flight-api", "location": stack_config(stack)["gcp:region"]},
    }


@pytest.mark.parametrize("stack", STACKS)
def test_every_slo_has_the_burn_rate_policies_that_can_fire(plans: dict[str, Plan], stack: str) -> None:
    policies = alerts(plans[stack])
    for decision in burn_rate_policies(monitoring_config(stack)["goals"]):
        slo_id, window = decision.slo, decision.window
        if not decision.can_fire:
            assert f"{slo_id}-{window.key}" not in policies
            assert "total outage" in (decision.left_out_because or "")
            continue
        policy = policies[f"{slo_id}-{window.key}"]
        assert policy["combiner"] == "AND"
        assert policy["severity"] == ("CRITICAL" if window.route == "page" else "WARNING")
        lookbacks = []
        for condition in policy["conditions"]:
            threshold = condition["conditionThreshold"]
            # SLO conditions accept nothing else: no aggregations, no trigger.
            assert set(threshold) == {"filter", "comparison", "thresholdValue", "duration"}
            assert threshold["comparison"] == "COMPARISON_GT"
            assert threshold["thresholdValue"] == window.burn_rate
            match = BURN.match(threshold["filter"])
            assert match, threshold["filter"]
            assert match["slo"] == slo_names(plans[stack])[slo_id]
            lookbacks.append(int(match["seconds"]))
        assert lookbacks == [window.long_seconds, window.short_seconds]


def test_burn_rate_windows_are_the_workbooks() -> None:
    # SRE workbook, "Alerting on SLOs", recommended parameters for a 99.9% SLO over 30 days.
    table = {
        (3600, 300): (14.4, 0.02, "page"),
        (21600, 1800): (6.0, 0.05, "page"),
        (259200, 21600): (1.0, 0.10, "ticket"),
    }
    assert {
        (w.long_seconds, w.short_seconds): (w.burn_rate, round(w.budget_spent_at_detection, 3), w.route)
        for w in BURN_RATE_WINDOWS
    } == table
    assert all(w.short_seconds * 12 == w.long_seconds for w in BURN_RATE_WINDOWS)


@pytest.mark.parametrize("stack", STACKS)
def test_symptom_alerts(plans: dict[str, Plan], stack: str) -> None:
    policies = alerts(plans[stack])
    burn_rate = [p for p in burn_rate_policies(monitoring_config(stack)["goals"]) if p.can_fire]
    assert len(policies) == len(SYMPTOMS) + len(burn_rate)
    for key, severity in SYMPTOMS.items():
        assert policies[key]["severity"] == severity
    state = policies["ingest-subscription-not-active"]["conditions"][0]["conditionThreshold"]
    assert (
        'metric.type="pubsub.googleapis.com/subscription/export_push_subscription_details"' in state["filter"]
    )
    assert 'metric.label."subscription_state"!="ACTIVE"' in state["filter"]
    assert 'resource.label."subscription_id"="flight-events-to-warehouse"' in state["filter"]
    dead = policies["ingest-dead-letters-waiting"]["conditions"][0]["conditionThreshold"]
    assert 'resource.label."subscription_id"="flight-events-dead-letter-inspect"' in dead["filter"]
    assert dead["comparison"] == "COMPARISON_GT"
    assert dead["thresholdValue"] == 0
    uptime = policies["api-uptime-check-failing"]["conditions"][0]["conditionThreshold"]
    assert f'metric.label."check_id"="{plans[stack].outputs["uptime_check"]}"' in uptime["filter"]
    max_instances = float(stack_config(stack)["airline-data-platform:maxInstances"])
    saturation = policies["api-at-max-instances"]["conditions"][0]["conditionThreshold"]
    assert saturation["thresholdValue"] == max_instances - 1
    assert saturation["comparison"] == "COMPARISON_GT"


@pytest.mark.parametrize("stack", STACKS)
def test_every_alert_links_an_existing_runbook_section(plans: dict[str, Plan], stack: str) -> None:
    base = runbook_base_url(STAND_IN_REPOSITORY, os.environ)  # the repository deployed from
    for key, policy in alerts(plans[stack]).items():
        doc = policy["documentation"]
        assert doc["mimeType"] == "text/markdown"
        runbook_link, dashboard_link = doc["links"]
        url = runbook_link["url"]
        assert url.startswith(base + "/"), key
        assert f"]({url})" in doc["content"], "the Markdown itself links the runbook"
        assert len(doc["content"]) <= 8192, "Cloud Monitoring's limit"
        if key not in SYMPTOMS:
            assert "The SLI: " in doc["content"], "burn-rate alerts say what their SLO counts"
        name, _, anchor = url.removeprefix(base + "/").partition("#")
        runbook = RUNBOOKS / name
        assert runbook.is_file(), f"{key} links missing runbook {name}"
        if anchor:
            assert anchor in anchors(runbook), f"{key} links missing section #{anchor} of {name}"
        assert policy["userLabels"]["runbook"] == name.removesuffix(".md")
        assert dashboard_link["url"].startswith("https://console.cloud.google.com/monitoring/dashboards/")
        assert policy["alertStrategy"]["autoClose"].endswith("s")


def test_every_runbook_is_linked_and_answers_a_responder(plans: dict[str, Plan]) -> None:
    linked = {p["userLabels"]["runbook"] for p in alerts(plans["prod"]).values()}
    on_disk = {p.stem for p in RUNBOOKS.glob("*.md")} - {"README"}
    assert linked == on_disk
    for name in on_disk:
        sections = anchors(RUNBOOKS / f"{name}.md")
        assert {"what-it-means-for-users", "first-checks", "mitigations", "escalation"} <= sections, name
        first_checks = section(RUNBOOKS / f"{name}.md", "First checks")
        assert COMMAND.search(first_checks), f"{name}: first checks need an exact command"


@pytest.mark.parametrize("stack", STACKS)
def test_channels_and_routing_follow_the_stack(plans: dict[str, Plan], stack: str) -> None:
    configured = monitoring_config(stack)["channels"]
    created = {
        r["name"].removeprefix("monitoring-channel-"): r
        for r in of_type(plans[stack], "gcp:monitoring/notificationChannel:NotificationChannel")
    }
    assert sorted(created) == sorted(c["name"] for c in configured)
    for channel in configured:
        assert created[channel["name"]]["inputs"]["type"] == channel["type"]
        assert created[channel["name"]]["inputs"]["labels"] == channel["labels"]
    by_route = {
        route: {c["name"] for c in configured if route in c["routes"]} for route in ("page", "ticket")
    }
    names = {r["outputs"]["name"]: name for name, r in created.items()}
    for policy in alerts(plans[stack]).values():
        route = "page" if policy["severity"] == "CRITICAL" else "ticket"
        assert {names[c] for c in policy.get("notificationChannels", [])} == by_route[route]


def test_dev_notifies_nobody_and_prod_pages(plans: dict[str, Plan]) -> None:
    assert all(not p.get("notificationChannels") for p in alerts(plans["dev"]).values())
    pages = [p for p in alerts(plans["prod"]).values() if p["severity"] == "CRITICAL"]
    assert pages
    assert all(p["notificationChannels"] for p in pages)


@pytest.mark.parametrize("stack", STACKS)
def test_uptime_check_is_authenticated_and_allowed_in(plans: dict[str, Plan], stack: str) -> None:
    plan = plans[stack]
    (check,) = of_type(plan, "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig")
    http = check["inputs"]["httpCheck"]
    assert http["path"] == "/health"
    assert http["useSsl"] is True
    assert http["validateSsl"] is True
    assert http["serviceAgentAuthentication"] == {"type": "OIDC_TOKEN"}
    assert check["inputs"]["monitoredResource"] == {
        "type": "uptime_url",
        "labels": {"project_id": stack_config(stack)["gcp:project"], "host": plan.outputs["service_url"][8:]},
    }
    agents = of_type(plan, "gcp:projects/serviceIdentity:ServiceIdentity")
    assert "monitoring.googleapis.com" in {agent["inputs"]["service"] for agent in agents}
    invoker = next(r for r in plan.resources if r["name"] == "monitoring-uptime-invoker")["inputs"]
    assert (invoker["role"], invoker["member"], invoker["name"]) == (
        "roles/run.invoker",
        MONITORING_AGENT,
        "flight-api",
    )
    urn = {r["name"]: r["urn"] for r in plan.resources}
    assert urn["monitoring-uptime-invoker"] in plan.dependencies[urn["monitoring-uptime-check"]]


@pytest.mark.parametrize("stack", STACKS)
def test_dashboard_parses_and_shows_every_slo(plans: dict[str, Plan], stack: str) -> None:
    (board,) = of_type(plans[stack], "gcp:monitoring/dashboard:Dashboard")
    text = board["inputs"]["dashboardJson"]
    parsed = dash.Dashboard.from_json(text)  # raises on any field the API does not know
    assert parsed.display_name == f"Airline data platform ({stack})"
    # Already in the API's normal form: enum names, no default-valued fields, so no permanent diff.
    again = dash.Dashboard.to_json(
        parsed,
        use_integers_for_enums=False,
        always_print_fields_with_no_presence=False,
        sort_keys=True,
        indent=None,
    )
    assert json.loads(again) == json.loads(text)
    assert not re.search(r'"(perSeriesAligner|crossSeriesReducer|plotType|color)": \d', text)
    (empty,) = empty_fields(json.loads(text))  # the incident list widget takes no settings
    assert empty.endswith(".widget.incidentList")
    for name in slo_names(plans[stack]).values():
        assert f'select_slo_budget_fraction(\\"{name}\\")' in text
    widgets = [tile.widget for tile in parsed.mosaic_layout.tiles]
    titles = " | ".join(w.title for w in widgets)
    for signal in ("Traffic", "5xx", "Latency", "Saturation", "Throughput", "Backlog age", "Dead letters"):
        assert signal in titles
    for metric in LOG_METRICS:  # what only the API's logs show
        assert metric.metric_type in text
    for tile in parsed.mosaic_layout.tiles:
        assert tile.x_pos + tile.width <= parsed.mosaic_layout.columns


ALIGNERS = {"ALIGN_MEAN": lambda points: sum(points) / len(points), "ALIGN_MAX": max}


def aligned_total(aggregation: dict[str, Any], series: dict[str, list[int]]) -> float:
    """What Monitoring compares with the threshold for one revision's per-state series in one
    alignment period: each series aligned on its own, then reduced across series
    (https://cloud.google.com/monitoring/api/v3/aggregation)."""
    assert aggregation["crossSeriesReducer"] == "REDUCE_SUM"
    assert aggregation["groupByFields"] == ["resource.label.revision_name"]
    align = ALIGNERS[aggregation["perSeriesAligner"]]
    return sum(align(points) for points in series.values())


@pytest.mark.parametrize("stack", STACKS)
def test_at_max_instances_counts_instances_at_one_moment(plans: dict[str, Plan], stack: str) -> None:
    limit = int(float(stack_config(stack)["airline-data-platform:maxInstances"]))
    condition = alerts(plans[stack])["api-at-max-instances"]["conditions"][0]["conditionThreshold"]
    (aggregation,) = condition["aggregations"]
    assert 'metric.type="run.googleapis.com/container/instance_count"' in condition["filter"]

    def fires(series: dict[str, list[int]]) -> bool:
        return aligned_total(aggregation, series) > condition["thresholdValue"]

    # Half the limit, instances moving between active and idle within the minute: never at the limit.
    half = limit // 2
    assert not fires({"active": [half, 0, half, 0], "idle": [0, half, 0, half]})
    assert not fires({"active": [limit - 1] * 4, "idle": [0] * 4})
    # At the limit, however the instances split between the states.
    assert fires({"active": [limit] * 4, "idle": [0] * 4})
    assert fires({"active": [limit - 1] * 4, "idle": [1] * 4})
    assert int(condition["duration"].removesuffix("s")) == 300


@pytest.mark.parametrize("stack", STACKS)
def test_make_plan_prints_the_burn_rate_policies_left_out_and_why(plans: dict[str, Plan], stack: str) -> None:
    printed = stack_summary(plans[stack].resources)
    decisions = burn_rate_policies(monitoring_config(stack)["goals"])
    for decision in decisions:
        (line,) = [x for x in printed if x.startswith(f"  burn rate     {decision.slo} (")]
        kept, _, left = line.partition("; left out: ")
        label = f"{decision.window.key} {decision.window.burn_rate:g}x"
        assert (label in kept) == decision.can_fire, line
        assert (f"{label}: {decision.left_out_because}" in left) == (not decision.can_fire), line
    assert (stack == "dev") == any(not d.can_fire for d in decisions)


def metric_labels_read(filter_: str) -> set[str]:
    return set(re.findall(r'metric\.label\."?([a-z_]+)"?\s*!?=', filter_))


@pytest.mark.parametrize("stack", STACKS)
def test_alerts_and_tiles_read_only_labels_a_log_metric_extracts(plans: dict[str, Plan], stack: str) -> None:
    """A label a log-based metric does not define reads nothing: a chart stays flat, an alert silent."""
    defined = {spec.metric_type: set(spec.labels) for spec in LOG_METRICS}
    (board,) = of_type(plans[stack], "gcp:monitoring/dashboard:Dashboard")
    parsed = dash.Dashboard.from_json(board["inputs"]["dashboardJson"])
    reads: list[tuple[str, set[str]]] = []
    for tile in parsed.mosaic_layout.tiles:
        for data_set in tile.widget.xy_chart.data_sets:
            query = data_set.time_series_query.time_series_filter
            grouped = {f.removeprefix("metric.label.") for f in query.aggregation.group_by_fields}
            reads.append((query.filter, grouped | metric_labels_read(query.filter)))
    for policy in alerts(plans[stack]).values():
        for condition in policy["conditions"]:
            threshold = condition.get("conditionThreshold") or condition["conditionAbsent"]
            reads.append((threshold["filter"], metric_labels_read(threshold["filter"])))
    checked = 0
    for filter_, labels in reads:
        metric = re.search(r'metric\.type="([^"]+)"', filter_)
        if metric and metric[1] in defined:
            assert labels <= defined[metric[1]], (filter_, labels)
            checked += 1
    assert checked >= len(LOG_METRICS), "every log-based metric is read somewhere"
