"""`make plan` for people: what each stack monitors, and what differs between stacks.

Everything is read from the rendered plans (the inputs the engine would receive), so the
report shows what would be deployed, not what the configuration meant to say. Values are
shown as a reviewer reads them: whole numbers without `.0`, `3600s` as `1 h`, each stack's
project id as `${project}` and its name as `${stack}`, JSON documents (the dashboard) compared
field by field, so only real differences remain.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from airline_platform.monitoring.alerting import human_duration, percent

ALERT = "gcp:monitoring/alertPolicy:AlertPolicy"
SLO = "gcp:monitoring/slo:Slo"
CHANNEL = "gcp:monitoring/notificationChannel:NotificationChannel"
_SECONDS = re.compile(r"^(\d+)s$")
_BURN_RATE = re.compile(r'select_slo_burn_rate\("([^"]+)", "(\d+)s"\)')


def readable(value: Any) -> Any:
    """Whole floats as ints and "<n>s" durations in the largest whole unit."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and (match := _SECONDS.match(value)):
        return human_duration(int(match.group(1)))
    return value


def _of_type(resources: Iterable[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["type"] == type_]


def _channel_names(resources: list[dict[str, Any]]) -> dict[str, str]:
    """Channel resource name (as alert policies reference it) -> the channel's configured name."""
    return {r["outputs"]["name"]: r["name"].split("-channel-", 1)[-1] for r in _of_type(resources, CHANNEL)}


def _condition(condition: dict[str, Any]) -> str:
    if absent := condition.get("conditionAbsent"):
        return f"{absent['filter']} absent for {readable(absent['duration'])}"
    threshold = condition["conditionThreshold"]
    filter_ = _BURN_RATE.sub(
        lambda m: (
            f'select_slo_burn_rate("{m.group(1)}", "{m.group(2)}s" = {human_duration(int(m.group(2)))})'
        ),
        threshold["filter"],
    )
    comparison = {"COMPARISON_GT": ">", "COMPARISON_LT": "<"}[threshold["comparison"]]
    held = readable(threshold["duration"])
    suffix = f" for {held}" if held != "0 s" else ""
    return f"{filter_} {comparison} {readable(threshold['thresholdValue'])}{suffix}"


def stack_summary(resources: list[dict[str, Any]]) -> list[str]:
    """The stack's monitoring: services, channels, uptime check, dashboard, SLOs and their alerts."""
    lines = []
    channels = _channel_names(resources)
    for r in _of_type(resources, CHANNEL):
        i = r["inputs"]
        lines.append(f"  channel       {r['name'].split('-channel-', 1)[-1]}: {i['type']} {i['labels']}")
    if not channels:
        lines.append("  channel       none: incidents open in Cloud Monitoring and notify nobody")
    for r in _of_type(resources, "gcp:monitoring/genericService:GenericService"):
        labels = r["inputs"]["basicService"]["serviceLabels"]
        kind = r["inputs"]["basicService"]["serviceType"]
        where = f"{labels['service_name']} in {labels['location']}"
        lines.append(f"  service       {r['inputs']['serviceId']}: {kind} {where}")
    for r in _of_type(resources, "gcp:monitoring/customService:CustomService"):
        lines.append(f"  service       {r['inputs']['serviceId']}: custom ({r['inputs']['displayName']})")
    for r in _of_type(resources, "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig"):
        http, resource = r["inputs"]["httpCheck"], r["inputs"]["monitoredResource"]["labels"]
        lines.append(
            f"  uptime check  GET https://{resource['host']}{http['path']} "
            f"every {readable(r['inputs']['period'])}, auth {http['serviceAgentAuthentication']['type']}"
        )
    for r in _of_type(resources, "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"):
        if "gcp-sa-monitoring" in r["inputs"]["member"]:
            lines.append(f"  uptime IAM    {r['inputs']['role']} for {r['inputs']['member']}")
    for r in _of_type(resources, "gcp:monitoring/dashboard:Dashboard"):
        board = json.loads(r["inputs"]["dashboardJson"])
        lines.append(f"  dashboard     {board['displayName']!r}, {len(board['mosaicLayout']['tiles'])} tiles")
    for r in _of_type(resources, SLO):
        i = r["inputs"]
        sli = "request-based" if "requestBasedSli" in i else "windows-based"
        lines.append(
            f"  SLO           {i['service']}/{i['sloId']}: {percent(i['goal'])} over "
            f"{readable(i['rollingPeriodDays'])} days, {sli}"
        )
    for r in sorted(_of_type(resources, ALERT), key=lambda a: a["inputs"]["displayName"]):
        i = r["inputs"]
        to = ", ".join(channels.get(c, c) for c in i.get("notificationChannels") or []) or "nobody"
        lines.append(f"  alert         {i['severity']:<8} {i['displayName']} -> {to}")
        joiner = f"\n                  {i['combiner']} "
        lines.append("                  " + joiner.join(_condition(c) for c in i["conditions"]))
    return lines


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, str) and value.startswith("{"):
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(value)
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else key))
        return flat
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        flat = {}
        for index, item in enumerate(value):
            flat.update(_flatten(item, f"{prefix}[{index}]"))
        return flat
    return {prefix: readable(value)}


def _generic(resources: list[dict[str, Any]], stack: str, project: str) -> dict[tuple[str, str], Any]:
    """Inputs per resource with what is expected to differ made generic: the project id, the
    stack's name where it stands alone (not inside `pkg.dev`), channel ids as channel names."""
    text = json.dumps({f"{r['type']} {r['name']}": r["inputs"] for r in resources})
    for resource_name, channel in _channel_names(resources).items():
        text = text.replace(resource_name, f"channel:{channel}")
    text = re.sub(
        rf"(?<![\w.-]){re.escape(stack)}(?![\w.-])", "${stack}", text.replace(project, "${project}")
    )
    return {tuple(key.split(" ", 1)): _flatten(inputs) for key, inputs in json.loads(text).items()}


def _shown(values: list[Any]) -> list[str]:
    """JSON of each value; long strings cut to the part where they start to differ."""
    texts = [json.dumps(v) for v in values]
    if max(len(t) for t in texts) <= 120:
        return texts
    start = next(
        (i for i, chars in enumerate(zip(*texts, strict=False)) if len(set(chars)) > 1), min(map(len, texts))
    )
    return [("..." if start > 20 else "") + t[max(start - 20, 0) : start + 60] + "..." for t in texts]


@dataclass(frozen=True)
class Difference:
    """One input of one resource that is not the same in every stack (`field` None: the resource
    itself exists only in some stacks, and `values` maps those to None)."""

    type: str
    name: str
    field: str | None
    values: dict[str, Any]


def differences(plans: dict[str, tuple[str, list[dict[str, Any]]]]) -> list[Difference]:
    """Per resource, the inputs whose values are not the same in every stack, in resource order.

    `plans` maps each stack to (project id, resources). Values are as `readable` shows them.
    """
    names = list(plans)
    by_stack = [_generic(resources, stack, project) for stack, (project, resources) in plans.items()]
    found = []
    for key in sorted({k for resources in by_stack for k in resources}):
        present = dict(zip(names, (resources.get(key) for resources in by_stack), strict=True))
        if any(p is None for p in present.values()):
            found.append(Difference(*key, None, {n: None for n, p in present.items() if p is not None}))
            continue
        fields = sorted({f for p in present.values() if p for f in p})
        for f in fields:
            values = {n: p.get(f) if p else None for n, p in present.items()}
            if len({json.dumps(v) for v in values.values()}) > 1:
                found.append(Difference(*key, f, values))
    return found


def diff(plans: dict[str, tuple[str, list[dict[str, Any]]]]) -> str:
    """`differences` as text: one heading per resource, one line per input that differs.

    `plans` maps each stack to (project id, resources).
    """
    lines = []
    heading = None
    for d in differences(plans):
        if d.field is None:
            lines.append(f"{d.name} ({d.type}): only in {', '.join(d.values)}")
            continue
        if heading != (d.type, d.name):
            heading = (d.type, d.name)
            lines.append(f"{d.name} ({d.type}):")
        shown = _shown(list(d.values.values()))
        lines.append(f"    {d.field}: " + "  ".join(f"{n}={v}" for n, v in zip(d.values, shown, strict=True)))
    return "\n".join(lines)


def at_a_glance(plans: dict[str, list[dict[str, Any]]]) -> str:
    """One table of what differs in monitoring: goals, thresholds, routing, counts."""
    rows: dict[str, dict[str, str]] = {}

    def put(row: str, stack: str, value: Any) -> None:
        rows.setdefault(row, {})[stack] = str(value)

    for stack, resources in plans.items():
        channels = _channel_names(resources)
        for r in _of_type(resources, SLO):
            i = r["inputs"]
            put(f"goal {i['sloId']}", stack, percent(i["goal"]))
            cut = (i.get("requestBasedSli") or {}).get("distributionCut")
            window = (i.get("windowsBasedSli") or {}).get("metricMeanInRange")
            if cut:
                put(f"{i['sloId']} threshold", stack, f"{readable(cut['range']['max'])} ms")
            if window:
                put(f"{i['sloId']} threshold", stack, human_duration(int(window["range"]["max"])))
        for severity in ("CRITICAL", "WARNING"):
            routed = {
                channels.get(c, c)
                for r in _of_type(resources, ALERT)
                if r["inputs"]["severity"] == severity
                for c in r["inputs"].get("notificationChannels") or []
            }
            put(f"{severity} alerts notify", stack, ", ".join(sorted(routed)) or "nobody")
        put("alert policies", stack, len(_of_type(resources, ALERT)))
        put("resources", stack, len(resources))
    stacks = list(plans)
    width = max(len(r) for r in rows) + 2
    columns = [max(len(s), *(len(rows[r].get(s, "")) for r in rows)) + 2 for s in stacks]
    lines = ["".ljust(width) + "".join(s.ljust(c) for s, c in zip(stacks, columns, strict=True))]
    for row, values in rows.items():
        lines.append(
            row.ljust(width)
            + "".join(values.get(s, "-").ljust(c) for s, c in zip(stacks, columns, strict=True))
        )
    return "\n".join(line.rstrip() for line in lines)
