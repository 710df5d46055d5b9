"""The monitoring part of a stack's configuration: SLO goals, thresholds, who gets notified.

It lives under the stack key `monitoring` (see `stacks/Pulumi.<env>.yaml`). Environments differ
here only: dev may notify nobody, prod must page someone. `problems()` lists every broken rule
so `StackConfig` can report them together with the rest of the stack's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# The SLOs every stack defines (their ids are also the runbooks' file names).
SLO_IDS = ("api-availability", "api-latency", "api-reachability", "ingest-freshness", "ingest-correctness")
# Cloud Monitoring accepts goals in (0, 0.999].
MAX_GOAL = 0.999
# Channel types whose required label we check; others are passed through as configured.
REQUIRED_CHANNEL_LABEL = {"email": "email_address", "sms": "number", "pubsub": "topic"}
# Credentials never belong in a stack file: such channels are created by hand and referenced by name.
SECRET_CHANNEL_LABELS = frozenset({"auth_token", "service_key", "password"})
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}$")
_URL = re.compile(r"^https://\S+[^/]$")


class Route(StrEnum):
    """Who an alert interrupts: a page wakes the on-call, a ticket waits for working hours."""

    PAGE = "page"
    TICKET = "ticket"


@dataclass(frozen=True)
class Channel:
    """A notification channel the stack creates, and the routes whose alerts it receives."""

    name: str
    type: str
    labels: Mapping[str, str]
    routes: tuple[str, ...]
    display_name: str

    @classmethod
    def from_config(cls, raw: Mapping[str, Any]) -> Channel:
        name = str(raw.get("name", ""))
        return cls(
            name=name,
            type=str(raw.get("type", "")),
            labels={str(k): str(v) for k, v in (raw.get("labels") or {}).items()},
            routes=tuple(str(r) for r in raw.get("routes") or ()),
            display_name=str(raw.get("displayName") or name),
        )


@dataclass(frozen=True)
class MonitoringConfig:
    """Goals, thresholds and channels of one environment."""

    goals: Mapping[str, float]
    latency_threshold_ms: int
    freshness_threshold_seconds: int
    channels: tuple[Channel, ...]
    runbook_base_url: str

    @classmethod
    def from_config(cls, raw: Mapping[str, Any]) -> MonitoringConfig:
        """Build from the stack's `monitoring` object (camelCase keys, as in the YAML)."""
        return cls(
            goals={str(k): float(v) for k, v in (raw.get("goals") or {}).items()},
            latency_threshold_ms=int(raw.get("latencyThresholdMs", 0)),
            freshness_threshold_seconds=int(raw.get("freshnessThresholdSeconds", 0)),
            channels=tuple(Channel.from_config(c) for c in raw.get("channels") or ()),
            runbook_base_url=str(raw.get("runbookBaseUrl", "")),
        )

    def problems(self, environment: str) -> list[str]:
        """Every rule the values break, each as a message naming the key."""
        errors = []
        missing = [slo for slo in SLO_IDS if slo not in self.goals]
        unknown = sorted(set(self.goals) - set(SLO_IDS))
        if missing:
            errors.append(f"monitoring.goals needs a goal for {', '.join(missing)}")
        if unknown:
            errors.append(f"monitoring.goals names unknown SLOs {', '.join(unknown)} (known: {SLO_IDS})")
        errors += [
            f"monitoring.goals.{slo} must be in (0, {MAX_GOAL}], got {goal}"
            for slo, goal in self.goals.items()
            if not 0 < goal <= MAX_GOAL
        ]
        if not 1 <= self.latency_threshold_ms <= 60_000:
            errors.append("monitoring.latencyThresholdMs must be between 1 and 60000 (Cloud Run's timeout)")
        if not 60 <= self.freshness_threshold_seconds <= 7 * 24 * 3600:
            errors.append("monitoring.freshnessThresholdSeconds must be between 60 and 604800")
        if not _URL.match(self.runbook_base_url):
            errors.append("monitoring.runbookBaseUrl must be an https URL without a trailing slash")
        names = [c.name for c in self.channels]
        if len(set(names)) != len(names):
            errors.append(f"monitoring.channels names must be unique, got {names}")
        for channel in self.channels:
            errors += channel_problems(channel)
        if environment == "prod" and not self.channels_for(Route.PAGE):
            errors.append("prod must page someone: add a monitoring channel with route page")
        return errors

    def channels_for(self, route: Route) -> tuple[Channel, ...]:
        return tuple(c for c in self.channels if route in c.routes)


def channel_problems(channel: Channel) -> list[str]:
    where = f"monitoring.channels[{channel.name or '?'}]"
    errors = []
    if not _NAME.match(channel.name):
        errors.append(f"{where}: name must be lowercase letters, digits and dashes")
    if not channel.type:
        errors.append(f"{where}: needs a type (email, pagerduty, slack, ...)")
    required = REQUIRED_CHANNEL_LABEL.get(channel.type)
    if required and not channel.labels.get(required):
        errors.append(f"{where}: a {channel.type} channel needs the label {required}")
    secrets = sorted(SECRET_CHANNEL_LABELS & channel.labels.keys())
    if secrets:
        errors.append(f"{where}: {', '.join(secrets)} is a credential; never put it in a stack file")
    if not channel.routes or not set(channel.routes) <= set(Route):
        errors.append(f"{where}: routes must be page, ticket or both, got {list(channel.routes)}")
    return errors
