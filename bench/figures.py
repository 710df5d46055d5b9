"""The arithmetic of the report: medians, ratios, targets met or not, flatness and cost.

Pure functions over numbers, so `tests/unit/test_bench_figures.py` can check them without a stack.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

MB = 1_000_000
MIB = 1 << 20
TIB = 1 << 40
# BigQuery on-demand compute, US/EU multi-region list price (cloud.google.com/bigquery/pricing);
# regional prices differ: pass another with BENCH_PRICE_PER_TIB.
ON_DEMAND_USD_PER_TIB = 6.25
# On-demand bills at least 10 MB per table a query references, and at least 10 MB per query.
MINIMUM_BILLED_BYTES = 10 * MIB


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def ratio(measured: float, ceiling: float) -> float:
    return measured / ceiling if ceiling > 0 else math.nan


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: the smallest value with at least `pct`% of the values at or below it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return float(ordered[rank - 1])


@dataclass
class Target:
    """A target, whether this run met it, and why in one sentence."""

    name: str
    goal: str
    met: bool | None  # None: not measurable in this run (the reason says why)
    reason: str

    @property
    def verdict(self) -> str:
        return {True: "met", False: "NOT met", None: "not measured"}[self.met]


def at_least(name: str, value: float, goal: float, what: str, unit: str = "") -> Target:
    if math.isnan(value):
        return Target(name, f">= {goal:g}{unit}", None, f"{what} could not be measured in this run")
    met = value >= goal
    return Target(
        name,
        f">= {goal:g}{unit}",
        met,
        f"{what} is {value:.2f}{unit}, {'at or above' if met else 'below'} {goal:g}{unit}",
    )


def at_most(name: str, value: float, goal: float, what: str, unit: str = "") -> Target:
    if math.isnan(value):
        return Target(name, f"<= {goal:g}{unit}", None, f"{what} could not be measured in this run")
    met = value <= goal
    return Target(
        name,
        f"<= {goal:g}{unit}",
        met,
        f"{what} is {value:.3g}{unit}, {'within' if met else 'above'} {goal:g}{unit}",
    )


def growth(samples: Sequence[tuple[float, float]]) -> float:
    """Relative growth of the second value between the first and the last sample (0.1 = +10%)."""
    if len(samples) < 2 or samples[0][1] <= 0:
        return math.nan
    return samples[-1][1] / samples[0][1] - 1


@dataclass(frozen=True)
class QueryShape:
    """One query the API issues: how many partitions (days) and which bytes per day it reads."""

    name: str
    days_scanned: float
    bytes_per_day: float
    note: str = ""

    @property
    def scanned_bytes(self) -> float:
        return self.days_scanned * self.bytes_per_day

    @property
    def billed_bytes(self) -> float:
        """On-demand bills whole MiB (rounded up), never under the 10 MB minimum."""
        return max(MINIMUM_BILLED_BYTES, math.ceil(self.scanned_bytes / MIB) * MIB)


def query_dollars(billed_bytes: float, price_per_tib: float = ON_DEMAND_USD_PER_TIB) -> float:
    return billed_bytes / TIB * price_per_tib


def dollars_per_thousand(
    shares: dict[str, float],
    shapes: dict[str, QueryShape],
    miss_ratio: float,
    price_per_tib: float = ON_DEMAND_USD_PER_TIB,
) -> float:
    """Dollars of BigQuery per 1,000 requests of a mix.

    `shares` gives each request kind's share of the mix (they sum to 1); a kind that names a
    query shape costs that query on a cache miss, other kinds (a publish) cost no query.
    """
    per_request = sum(
        share * query_dollars(shapes[kind].billed_bytes, price_per_tib)
        for kind, share in shares.items()
        if kind in shapes
    )
    return 1000 * miss_ratio * per_request


@dataclass
class Figure:
    """One row of the table: a measurement, the ceiling it is compared with, and their ratio."""

    name: str
    value: float
    unit: str
    ceiling: float = math.nan
    ceiling_name: str = ""
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    ceiling_p50_ms: float = math.nan
    ceiling_p99_ms: float = math.nan
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return ratio(self.value, self.ceiling)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in data.items()}
