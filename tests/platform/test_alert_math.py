"""The burn-rate policies, as planned, against synthetic incidents: who fires, when, and when it resets.

The windows, thresholds, durations and goals are parsed from the rendered plan (the alert
policies' `select_slo_burn_rate` filters and the SLOs' goals), not copied from the code. Traffic
is constant; an incident is a bad-event ratio over time. At time t a condition holds when
`bad ratio over (t - lookback, t] / (1 - goal)` exceeds its threshold for its `duration`; a
policy fires while all its conditions hold (`AND`).

The reference is the SRE workbook ("Alerting on SLOs"): time to detect =
`(1 - SLO) / error ratio x window x burn rate` for each window of the pair, the later of the two
counting; a multiwindow alert resets about one short window after the errors stop. The numbers
below are that formula worked out for the workbook's own case, a 99.9% SLO (prod's availability
goal); every other SLO of every stack is checked against the same formula with its own goal.
Cloud Monitoring adds its ingestion delay (up to about 3-4 minutes for these metrics) on top.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pytest
from airline_platform.monitoring.alerting import BURN_RATE_WINDOWS
from airline_platform.plan import Plan

DAY = 86_400
HISTORY = 3 * DAY  # longest window: every window starts on healthy traffic
SLO = "gcp:monitoring/slo:Slo"
BURN = re.compile(r'^select_slo_burn_rate\("(?P<slo>[^"]+)", "(?P<seconds>\d+)s"\)$')


@dataclass(frozen=True)
class Condition:
    lookback: int
    threshold: float
    duration: int


@dataclass(frozen=True)
class Policy:
    key: str
    severity: str
    goal: float
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Incident:
    name: str
    ratio: float
    seconds: int

    def bad(self, horizon: int) -> np.ndarray:
        """Bad-event ratio per second from -HISTORY to `horizon` after the incident's start."""
        ratios = np.zeros(HISTORY + horizon)
        ratios[HISTORY : HISTORY + self.seconds] = self.ratio
        return ratios


OUTAGE = Incident("all requests failing for 10 minutes", 1.0, 600)
DEGRADED = Incident("10% failing for an hour", 0.10, 3_600)
LEAK = Incident("1% failing for three days", 0.01, 3 * DAY)
SPIKE = Incident("all requests failing for 30 seconds", 1.0, 30)
INCIDENTS = (OUTAGE, DEGRADED, LEAK, SPIKE)
# Long enough for the slowest window pair at the lowest goal: every policy must fire on it.
TOTAL_OUTAGE = Incident("all requests failing for three days", 1.0, 3 * DAY)


def burn_rate_policies(plan: Plan) -> dict[str, list[Policy]]:
    """SLO id -> its burn-rate policies, from the plan's alert policies and SLOs."""
    goals = {
        name: next(r["inputs"]["goal"] for r in plan.resources if r["inputs"].get("sloId") == slo_id)
        for slo_id, name in plan.outputs["slos"].items()
    }
    by_slo: dict[str, list[Policy]] = {}
    for r in plan.resources:
        if r["type"] != "gcp:monitoring/alertPolicy:AlertPolicy":
            continue
        thresholds = [c.get("conditionThreshold", {}) for c in r["inputs"]["conditions"]]
        matches = [BURN.match(t.get("filter", "")) for t in thresholds]
        if not all(matches):
            continue  # a symptom or absence alert
        assert r["inputs"]["combiner"] == "AND"
        (slo,) = {m["slo"] for m in matches if m}
        conditions = tuple(
            Condition(int(m["seconds"]), t["thresholdValue"], int(t["duration"].removesuffix("s")))
            for m, t in zip(matches, thresholds, strict=True)
            if m
        )
        slo_id = slo.rsplit("/", 1)[-1]
        policy = Policy(
            r["name"].removeprefix(f"monitoring-alert-{slo_id}-"),
            r["inputs"]["severity"],
            goals[slo],
            conditions,
        )
        by_slo.setdefault(slo_id, []).append(policy)
    return by_slo


def simulate(policy: Policy, incident: Incident) -> tuple[int, int] | None:
    """(seconds from the incident's start to firing, to resetting), or None if it never fires."""
    horizon = incident.seconds + max(c.lookback for c in policy.conditions) + 3_600
    bad = incident.bad(horizon)
    total = np.concatenate([[0.0], np.cumsum(bad)])
    firing = np.ones(len(bad), dtype=bool)
    for c in policy.conditions:
        t = np.arange(1, len(bad) + 1)
        window = total[t] - total[np.maximum(t - c.lookback, 0)]
        # A burn exactly at the threshold does not fire (the relative margin absorbs float noise).
        holds = window / c.lookback / (1 - policy.goal) > c.threshold * (1 + 1e-9)
        if c.duration:
            misses = np.concatenate([[0], np.cumsum(~holds)])
            holds &= (t >= c.duration) & (misses[t] - misses[np.maximum(t - c.duration, 0)] == 0)
        firing &= holds
    seconds = np.arange(1, len(bad) + 1) - HISTORY  # end of each second, relative to the start
    fired = np.flatnonzero(firing)
    if not len(fired):
        return None
    start = fired[0]
    reset = start + np.argmin(firing[start:]) if not firing[-1] else len(bad)
    assert not firing[reset:].any(), "fires once per incident"
    return int(seconds[start]), int(seconds[reset])


def workbook_detection(policy: Policy, incident: Incident) -> float | None:
    """Time to detect per the workbook, the later window deciding; None if it cannot fire."""
    budget = 1 - policy.goal
    times = [budget / incident.ratio * c.lookback * c.threshold for c in policy.conditions]
    if (
        any(incident.ratio <= budget * c.threshold for c in policy.conditions)
        or max(times) > incident.seconds
    ):
        return None
    return max(times)


def workbook_reset(policy: Policy, incident: Incident) -> float:
    """When the first window forgets enough errors: at the latest one short window after the end."""
    budget = 1 - policy.goal
    return min(
        incident.seconds + c.lookback * (1 - budget * c.threshold / incident.ratio) for c in policy.conditions
    )


# The workbook's case, 99.9% (prod's api-availability): seconds from the start of the incident.
PROD_AVAILABILITY: dict[tuple[str, str], tuple[float, float] | None] = {
    (OUTAGE.name, "fast-burn"): (51.84, 895.68),  # pages in 52 s, resets ~5 min after the outage ends
    (OUTAGE.name, "slow-burn"): (129.6, 2_389.2),
    (OUTAGE.name, "budget-burn"): (259.2, 22_178.4),
    (DEGRADED.name, "fast-burn"): (518.4, 3_856.8),  # 8.6 min
    (DEGRADED.name, "slow-burn"): (1_296.0, 5_292.0),  # 21.6 min
    (DEGRADED.name, "budget-burn"): (2_592.0, 24_984.0),  # 43.2 min
    (LEAK.name, "fast-burn"): None,  # 1% never reaches 14.4 x 0.1%
    (LEAK.name, "slow-burn"): (12_960.0, 3 * DAY + 720.0),  # pages after 3.6 h: the budget would last 3 days
    (LEAK.name, "budget-burn"): (25_920.0, 3 * DAY + 19_440.0),  # ticket after 7.2 h
    (SPIKE.name, "fast-burn"): None,  # 30 s of errors spend less than 2% of the budget: nobody is paged
    (SPIKE.name, "slow-burn"): None,
    (SPIKE.name, "budget-burn"): None,
}


@pytest.mark.parametrize(
    ("incident", "window"), list(PROD_AVAILABILITY), ids=lambda v: str(v).replace(" ", "-")
)
def test_prod_availability_matches_the_workbook(plans: dict[str, Plan], incident: str, window: str) -> None:
    (policy,) = [p for p in burn_rate_policies(plans["prod"])["api-availability"] if p.key == window]
    assert policy.goal == 0.999
    shape = next(i for i in INCIDENTS if i.name == incident)
    expected = PROD_AVAILABILITY[(incident, window)]
    got = simulate(policy, shape)
    if expected is None:
        assert got is None
        return
    assert got is not None, f"{window} stays silent for {incident}"
    # Sampled each second: within one second of the closed form.
    assert got[0] == pytest.approx(expected[0], abs=1), "fires"
    assert got[1] == pytest.approx(expected[1], abs=1), "resets"
    severity, short = policy.severity, min(c.lookback for c in policy.conditions)
    assert severity == ("WARNING" if window == "budget-burn" else "CRITICAL")
    assert got[1] - shape.seconds <= short, "resets within one short window after the errors stop"


def test_who_is_woken_for_each_incident(plans: dict[str, Plan]) -> None:
    policies = burn_rate_policies(plans["prod"])["api-availability"]

    def first(incident: Incident, severity: str) -> int | None:
        times = [r[0] for p in policies if p.severity == severity and (r := simulate(p, incident))]
        return min(times) if times else None

    def about(seconds: int | None, expected: float) -> bool:
        return seconds is not None and abs(seconds - expected) <= 1

    assert about(first(OUTAGE, "CRITICAL"), 52)  # paged within a minute
    assert about(first(DEGRADED, "CRITICAL"), 518.4)
    assert about(first(LEAK, "CRITICAL"), 12_960)  # the slow burn pages after 3.6 h; the fast one never
    assert about(first(LEAK, "WARNING"), 25_920)
    assert first(SPIKE, "CRITICAL") is None
    assert first(SPIKE, "WARNING") is None


def slo_goals(plan: Plan) -> dict[str, float]:
    return {r["inputs"]["sloId"]: r["inputs"]["goal"] for r in plan.resources if r["type"] == SLO}


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_a_policy_exists_exactly_where_a_total_outage_can_fire_it(plans: dict[str, Plan], stack: str) -> None:
    """At goal G a burn rate cannot exceed 1 / (1 - G): threshold T can fire only if T x (1 - G) < 1."""
    by_slo = burn_rate_policies(plans[stack])
    for slo_id, goal in slo_goals(plans[stack]).items():
        planned = {p.key: p for p in by_slo.get(slo_id, [])}
        for window in BURN_RATE_WINDOWS:
            reachable = window.burn_rate * (1 - goal) < 1
            assert (window.key in planned) == reachable, (stack, slo_id, window.key, goal)
            if reachable:
                fired = simulate(planned[window.key], TOTAL_OUTAGE)
                assert fired is not None, f"{stack} {slo_id} {window.key} stays silent in a total outage"
                assert fired[0] <= window.long_seconds, "within its long window"
    if stack == "dev":  # a 90% goal: a total outage burns at 10x, the 14.4x fast burn is left out
        assert "fast-burn" not in {p.key for p in by_slo["api-latency"]}


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_slo_follows_the_workbook_formula(plans: dict[str, Plan], stack: str) -> None:
    by_slo = burn_rate_policies(plans[stack])
    assert sorted(by_slo) == sorted(plans[stack].outputs["slos"])
    for slo_id, policies in by_slo.items():
        assert policies, slo_id
        for policy in policies:
            for incident in INCIDENTS:
                got, detection = simulate(policy, incident), workbook_detection(policy, incident)
                assert (got is None) == (detection is None), (stack, slo_id, policy.key, incident.name)
                assert workbook_detection(policy, TOTAL_OUTAGE) is not None, "the formula says it can fire"
                if got is not None and detection is not None:
                    assert abs(got[0] - detection) <= 1, (stack, slo_id, policy.key, incident.name)
                    assert abs(got[1] - workbook_reset(policy, incident)) <= 1
