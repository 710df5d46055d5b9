"""`make plan` for people, in the order a reviewer reads: what differs between the stacks, then
each stack's summary (monitoring, burn-rate policies kept and left out, cost); the full detail
goes to `plans/`.

Everything is read from the rendered plans (the inputs the engine would receive), so the
report shows what would be deployed, not what the configuration meant to say. Values are
shown as a reviewer reads them: whole numbers without `.0`, `3600s` as `1 h`, each stack's
project id as `${project}` and its name as `${stack}`, JSON documents (the dashboard) compared
field by field, list items named by their name or title (`envs[APP_RATE_LIMIT_PER_MINUTE]`,
`tiles[API latency]`) rather than their position, and values never cut: a long text that
differs shows the words that differ, and its full versions are in `plans/differences.txt`.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from airline_platform.monitoring import alerting
from airline_platform.monitoring.alerting import BURN_RATE_WINDOWS, human_duration, percent

ALERT = "gcp:monitoring/alertPolicy:AlertPolicy"
SLO = "gcp:monitoring/slo:Slo"
CHANNEL = "gcp:monitoring/notificationChannel:NotificationChannel"
_SECONDS = re.compile(r"^(\d+)s$")
_BURN_RATE = re.compile(r'select_slo_burn_rate\("([^"]+)", "(\d+)s"\)')
# Keys that name an item of a list (a container's env var, a dashboard tile, an alert condition).
_NAMING_KEYS = ("name", "displayName", "title", "key", "sloId")
# A value longer than this is shown by the words that differ (in full in plans/differences.txt).
LONG_VALUE = 160


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


def _monitoring(resources: list[dict[str, Any]]) -> list[str]:
    """Channels, services, the uptime check, the dashboard and the SLOs."""
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
    return lines


def burn_rate_policies(resources: list[dict[str, Any]]) -> list[str]:
    """Per SLO, the burn-rate policies the stack has and those it leaves out, with the reason.

    The window pairs and reasons are the program's (`alerting.burn_rate_policies`: a threshold T
    on a goal G can only fire when T x (1 - G) < 1); what exists is read from the rendered plan.
    """
    names = {r["name"] for r in _of_type(resources, ALERT)}
    goals = {r["inputs"]["sloId"]: r["inputs"]["goal"] for r in _of_type(resources, SLO)}
    lines = []
    for slo, goal in goals.items():
        kept, left = [], []
        for policy in alerting.burn_rate_policies({slo: goal}):
            label = f"{policy.window.key} {policy.window.burn_rate:g}x"
            if f"monitoring-alert-{slo}-{policy.window.key}" in names:
                kept.append(
                    label if policy.can_fire else f"{label} (can never fire: {policy.left_out_because})"
                )
            else:
                left.append(f"{label}: {policy.left_out_because or 'not in the plan, though it could fire'}")
        lines.append(
            f"  burn rate     {slo} ({percent(goal)}): {', '.join(kept) or 'none'}"
            + (f"; left out: {'; '.join(left)}" if left else "")
        )
    return lines


def stack_summary(resources: list[dict[str, Any]]) -> list[str]:
    """What a reviewer needs of one stack: monitoring, burn-rate policies, the other alerts by name."""
    channels = _channel_names(resources)
    others = [
        r["inputs"]
        for r in _of_type(resources, ALERT)
        if not any(r["name"].endswith(f"-{w.key}") for w in BURN_RATE_WINDOWS)
    ]
    lines = _monitoring(resources) + burn_rate_policies(resources)
    for i in sorted(others, key=lambda a: a["displayName"]):
        to = ", ".join(channels.get(c, c) for c in i.get("notificationChannels") or []) or "nobody"
        lines.append(f"  alert         {i['severity']:<8} {i['displayName']} -> {to}")
    return lines


def stack_detail(resources: list[dict[str, Any]]) -> list[str]:
    """Everything `stack_summary` leaves out for plans/<stack>.txt: every alert with its filters."""
    lines = _monitoring(resources)
    channels = _channel_names(resources)
    for r in sorted(_of_type(resources, ALERT), key=lambda a: a["inputs"]["displayName"]):
        i = r["inputs"]
        to = ", ".join(channels.get(c, c) for c in i.get("notificationChannels") or []) or "nobody"
        lines.append(f"  alert         {i['severity']:<8} {i['displayName']} -> {to}")
        joiner = f"\n                  {i['combiner']} "
        lines.append("                  " + joiner.join(_condition(c) for c in i["conditions"]))
    return lines


def _item_name(item: Any) -> str | None:
    """What names a list item: its name, display name, title or key (a tile: its widget's title)."""
    if not isinstance(item, dict):
        return None
    for key in _NAMING_KEYS:
        if isinstance(item.get(key), str) and item[key]:
            return str(item[key])
    widget = item.get("widget")
    return _item_name(widget) if isinstance(widget, dict) else None


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf values by property path; list items by name where they have a unique one."""
    if isinstance(value, str) and value.startswith("{"):
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(value)
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else key))
        return flat
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        # A single item keeps [0]: its name may be what differs (`instances >= 2 for 5 min`).
        names = [_item_name(item) for item in value]
        unique = len(value) > 1 and len(set(names)) == len(names)
        flat = {}
        for index, (name, item) in enumerate(zip(names, value, strict=True)):
            flat.update(_flatten(item, f"{prefix}[{name if unique and name else index}]"))
        return flat
    return {prefix: readable(value)}


def _generic(resources: list[dict[str, Any]], stack: str, project: str) -> dict[tuple[str, str], Any]:
    """Inputs per resource with what is expected to differ made generic: the project id, the
    stack's name where it stands alone or ends a name (`deployer-dev@`, not `pkg.dev`), channel ids
    as channel names."""
    text = json.dumps({f"{r['type']} {r['name']}": r["inputs"] for r in resources})
    for resource_name, channel in _channel_names(resources).items():
        text = text.replace(resource_name, f"channel:{channel}")
    text = re.sub(rf"(?<![\w.]){re.escape(stack)}(?![\w.-])", "${stack}", text.replace(project, "${project}"))
    return {tuple(key.split(" ", 1)): _flatten(inputs) for key, inputs in json.loads(text).items()}


def _differing_words(texts: list[str]) -> list[str]:
    """Each text's words that are not in every other text, whole and in order."""
    words = [text.split() for text in texts]
    shown = []
    for own in words:
        parts: list[str] = []
        for other in words:
            if other is own:
                continue
            matcher = difflib.SequenceMatcher(a=own, b=other, autojunk=False)
            parts += [
                " ".join(own[i1:i2])
                for tag, i1, i2, _, _ in matcher.get_opcodes()
                if tag != "equal" and i2 > i1
            ]
        shown.append(" ... ".join(dict.fromkeys(parts)) or "(the same words, spaced differently)")
    return shown


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


def _values_lines(d: Difference) -> list[str]:
    texts = [json.dumps(v) for v in d.values.values()]
    if sum(map(len, texts)) <= 90:
        return [f"    {d.field}: " + "  ".join(f"{n}={t}" for n, t in zip(d.values, texts, strict=True))]
    long = max(map(len, texts)) > LONG_VALUE
    shown = _differing_words([str(v) for v in d.values.values()]) if long else texts
    note = " (texts; the words that differ, in full in plans/differences.txt)" if long else ""
    width = max(map(len, d.values))
    return [f"    {d.field}{note}:"] + [
        f"      {n + ':':<{width + 1}} {t}" for n, t in zip(d.values, shown, strict=True)
    ]


def diff(plans: dict[str, tuple[str, list[dict[str, Any]]]]) -> str:
    """`differences` as text: resources that differ alike under one heading, each input that differs
    named by its path, every stack's value in full (a long text by the words that differ).

    `plans` maps each stack to (project id, resources).
    """
    found = differences(plans)
    only = [d for d in found if d.field is None]
    # Resources whose input differs alike (same path, same values as shown) are listed together.
    shown = {id(d): tuple(_values_lines(d)) for d in found if d.field is not None}
    sharing: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for d in found:
        if d.field is not None:
            sharing.setdefault((d.type, shown[id(d)]), []).append(d.name)
    groups: dict[tuple[str, tuple[str, ...]], list[tuple[str, ...]]] = {}
    for d in found:
        if d.field is not None:
            names = tuple(sharing[d.type, shown[id(d)]])
            if names[0] == d.name:
                groups.setdefault((d.type, names), []).append(shown[id(d)])
    lines = []
    for (type_, names), fields in groups.items():
        label = names[0] if len(names) == 1 else f"{len(names)} resources: {', '.join(names)}"
        lines.append(f"{label} ({type_}):")
        for field_lines in fields:
            lines += field_lines
    lines += [f"{d.name} ({d.type}): only in {', '.join(d.values)}" for d in only]
    return "\n".join(lines)


def full_differences(plans: dict[str, tuple[str, list[dict[str, Any]]]]) -> str:
    """Every difference with every stack's whole value, one per line (plans/differences.txt)."""
    return "\n".join(
        f"{d.name} {d.field or '(resource)'}\n"
        + "\n".join(f"  {n}: {json.dumps(v)}" for n, v in d.values.items())
        for d in differences(plans)
    )


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
