"""What an SLO and an alert are, independent of which service they watch.

`SloSpec` and `AlertSpec` are plain declarations; the `Monitoring` component turns each into
resources, so an SLO or alert added later (for example on a log-based metric) is one more
entry in the catalog, not new plumbing. Burn-rate policies are derived from every SLO with
the SRE workbook's window pairs (`BURN_RATE_WINDOWS`). A pair whose threshold even a total
outage cannot reach at the SLO's goal is left out, with the reason (`burn_rate_policies`):
a policy that can never fire would only look like cover.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from airline_platform.monitoring.config import Route

# The workbook's thresholds assume this compliance period; Cloud Monitoring allows at most 30 days.
SLO_PERIOD_DAYS = 30
SEVERITY = {Route.PAGE: "CRITICAL", Route.TICKET: "WARNING"}


@dataclass(frozen=True)
class BurnRateWindow:
    """One multiwindow burn-rate alert: both windows must burn faster than `burn_rate`."""

    key: str
    long_seconds: int
    short_seconds: int
    burn_rate: float
    route: Route

    @property
    def budget_spent_at_detection(self) -> float:
        """Share of the period's error budget gone when a steady burn at the threshold fires."""
        return self.burn_rate * self.long_seconds / (SLO_PERIOD_DAYS * 86_400)

    @property
    def title(self) -> str:
        spent = percent(self.budget_spent_at_detection)
        return f"{self.key.replace('-', ' ')} ({spent} of the budget in {human_duration(self.long_seconds)})"


# SRE workbook, "Alerting on SLOs", recommended parameters for a 30-day 99.9% SLO (short window
# = 1/12 of the long one). The same windows for every goal, where they can fire (see below).
BURN_RATE_WINDOWS = (
    BurnRateWindow("fast-burn", 3_600, 300, 14.4, Route.PAGE),
    BurnRateWindow("slow-burn", 21_600, 1_800, 6.0, Route.PAGE),
    BurnRateWindow("budget-burn", 259_200, 21_600, 1.0, Route.TICKET),
)


@dataclass(frozen=True)
class BurnRatePolicy:
    """One window pair on one SLO's goal: created if a total outage can reach its threshold.

    The burn rate is the error ratio over the error budget (1 - goal), so it can never exceed
    1 / (1 - goal): at a 90% goal a total outage burns at 10x, and a 14.4x threshold never fires.
    """

    slo: str
    goal: float
    window: BurnRateWindow

    @property
    def highest_burn_rate(self) -> float:
        """The burn rate of a total outage (every event bad)."""
        return 1 / (1 - self.goal)

    @property
    def errors_needed(self) -> float:
        """The error ratio above which the policy fires."""
        return self.window.burn_rate * (1 - self.goal)

    @property
    def can_fire(self) -> bool:
        # COMPARISON_GT: the burn rate must exceed the threshold; the margin absorbs float noise.
        return self.errors_needed < 1 - 1e-9

    @property
    def left_out_because(self) -> str | None:
        if self.can_fire:
            return None
        return (
            f"{self.window.burn_rate:g}x of a {percent(self.goal)} goal needs more than "
            f"{percent(self.errors_needed)} errors: even a total outage burns at only "
            f"{self.highest_burn_rate:.3g}x"
        )


def burn_rate_policies(goals: Mapping[str, float]) -> list[BurnRatePolicy]:
    """Every SLO's window pairs at the stack's goals, created or left out (for `make plan`)."""
    return [BurnRatePolicy(slo, goal, window) for slo, goal in goals.items() for window in BURN_RATE_WINDOWS]


@dataclass(frozen=True)
class SloSpec:
    """A service level objective on one of the monitoring services ("api" or "ingest")."""

    key: str
    service: str
    display_name: str
    goal: float
    # What the SLI counts and why; every burn-rate alert on it repeats this to the responder.
    reason: str
    request_based_sli: gcp.monitoring.SloRequestBasedSliArgs | None = None
    windows_based_sli: gcp.monitoring.SloWindowsBasedSliArgs | None = None


@dataclass(frozen=True)
class AlertSpec:
    """An alert policy: its conditions, who it interrupts and the runbook section that handles it."""

    key: str
    display_name: str
    route: Route
    # What it means for users; the first line of every notification.
    summary: str
    conditions: Sequence[gcp.monitoring.AlertPolicyConditionArgs]
    runbook: str
    # A heading in the runbook (its GitHub anchor), when one runbook serves several alerts.
    runbook_section: str | None = None
    combiner: str = "OR"
    auto_close_seconds: int = 1_800

    @property
    def severity(self) -> str:
        return SEVERITY[self.route]


def seconds(value: int) -> str:
    return f"{value}s"


def percent(fraction: float) -> str:
    """0.999 -> '99.9%', 0.95 -> '95%'."""
    return f"{round(fraction * 100, 3):g}%"


def burn_rate_filter(slo_name: pulumi.Input[str], lookback_seconds: int) -> pulumi.Output[str]:
    return pulumi.Output.format('select_slo_burn_rate("{0}", "{1}")', slo_name, seconds(lookback_seconds))


def burn_rate_alerts(slo: SloSpec, slo_name: pulumi.Input[str]) -> list[AlertSpec]:
    """One policy per window pair that can fire: long AND short window above the threshold (SLO
    conditions accept only filter, comparison, threshold and duration)."""

    def condition(
        window: BurnRateWindow, lookback: int, label: str
    ) -> gcp.monitoring.AlertPolicyConditionArgs:
        return gcp.monitoring.AlertPolicyConditionArgs(
            display_name=f"{slo.display_name}: burn rate over {label} above {window.burn_rate:g}x",
            condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
                filter=burn_rate_filter(slo_name, lookback),
                comparison="COMPARISON_GT",
                threshold_value=window.burn_rate,
                duration="0s",
            ),
        )

    return [
        AlertSpec(
            key=f"{slo.key}-{window.key}",
            display_name=f"{slo.display_name}: {window.title}",
            route=window.route,
            summary=(
                f"{slo.display_name} is spending its error budget {window.burn_rate:g}x faster than the "
                f"{percent(slo.goal)} goal allows, over both the last "
                f"{human_duration(window.long_seconds)} and the last {human_duration(window.short_seconds)}. "
                f"The SLI: {slo.reason}"
            ),
            conditions=[
                condition(window, window.long_seconds, human_duration(window.long_seconds)),
                condition(window, window.short_seconds, human_duration(window.short_seconds)),
            ],
            combiner="AND",
            runbook=slo.key,
            runbook_section=window.key,
            # If the SLI stops reporting, close once the long window could no longer be burning.
            auto_close_seconds=min(max(window.long_seconds, 1_800), 7 * 86_400),
        )
        for window in (p.window for p in burn_rate_policies({slo.key: slo.goal}) if p.can_fire)
    ]


def human_duration(value: int) -> str:
    """3600 -> '1 h', 259200 -> '3 d', 90 -> '90 s'."""
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if value and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} s"
