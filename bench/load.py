"""Load with wrk (a compiled generator, so the client is not what limits the figures).

Every comparison is side by side: the measured server and its ceiling are loaded in alternating
rounds of equal length with the same connections and script, and each ratio is taken between
adjacent rounds, so a neighbour's burst on this shared machine hits both sides of a ratio.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.figures import median, ratio

WRK_SCRIPT = Path(__file__).with_name("wrk") / "report.lua"
INSTALL_WRK = "wrk is not installed: `sudo apt-get install wrk` (Debian/Ubuntu), `brew install wrk` (macOS)"


def require_wrk() -> str:
    found = shutil.which("wrk")
    if not found:
        raise SystemExit(INSTALL_WRK)
    return found


@dataclass
class LoadResult:
    """One wrk run: throughput, latency and what the responses said."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]
    cache: dict[str, int]
    socket_errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def _marked(self) -> int:
        return sum(count for kind, count in self.cache.items() if kind != "none")

    @property
    def hit_ratio(self) -> float:
        """Share of responses whose Cache-Status says hit (nan when no response carried one)."""
        return self.cache["hit"] / self._marked if self._marked else float("nan")

    @property
    def query_ratio(self) -> float:
        """Share of responses that cost a warehouse query: misses, not hits, collapsed or stale answers."""
        return self.cache["miss"] / self._marked if self._marked else float("nan")

    @property
    def ok_ratio(self) -> float:
        good = self.statuses["2xx"] + self.statuses["304"]
        return good / self.requests if self.requests else 0.0


def parse_wrk_output(text: str) -> LoadResult:
    """The JSON line bench/wrk/report.lua prints at the end of a run."""
    line = next((line for line in text.splitlines() if line.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no BENCH_JSON line:\n{text[-2000:]}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        statuses={k: data[f"s{k}"] for k in ("2xx", "304", "4xx", "429", "5xx")},
        cache={k: data[k] for k in ("hit", "miss", "collapsed", "stale", "none")},
        socket_errors=data["socket_errors"],
    )


def run_wrk(
    base_url: str, paths: Sequence[str], *, seconds: float, connections: int, timeout_s: float = 5.0
) -> LoadResult:
    """Load `base_url` for `seconds` with `connections` keep-alive connections cycling over `paths`."""
    with tempfile.NamedTemporaryFile("w", suffix=".paths", delete=False) as listing:
        listing.write("\n".join(paths) + "\n")
    try:
        completed = subprocess.run(  # noqa: S603 - fixed argv
            [
                require_wrk(),
                "-t1",
                f"-c{connections}",
                f"-d{seconds:g}s",
                f"--timeout={timeout_s:g}s",
                "-s",
                str(WRK_SCRIPT),
                base_url,
            ],
            env=os.environ | {"BENCH_PATHS": listing.name},
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        )
    finally:
        os.unlink(listing.name)
    return parse_wrk_output(completed.stdout)


# The ceiling is stable when its last `rounds` rounds lie within this spread of their median; until
# then rounds are added, up to MAX_EXTRA_ROUNDS. A ceiling that never settles marks the run disturbed:
# a neighbour's load moved it, and a ratio against it is no verdict.
STABLE_SPREAD = 0.10
MAX_EXTRA_ROUNDS = 4


def spread(values: Sequence[float]) -> float:
    """(max - min) / median: 0.1 means the values lie within 10% of their median."""
    middle = median(values)
    return (max(values) - min(values)) / middle if values and middle > 0 else math.nan


@dataclass
class SideBySide:
    """Alternating rounds of a measured server and its ceiling; the last `window` rounds count."""

    measured: list[LoadResult] = field(default_factory=list)
    ceiling: list[LoadResult] = field(default_factory=list)
    window: int = 0  # 0: every round

    def _last(self, runs: list[LoadResult]) -> list[LoadResult]:
        return runs[-self.window :] if self.window else runs

    @property
    def ratios(self) -> list[float]:
        pairs = zip(self._last(self.measured), self._last(self.ceiling), strict=True)
        return [ratio(m.rps, c.rps) for m, c in pairs]

    @property
    def ceiling_spread(self) -> float:
        return spread([r.rps for r in self._last(self.ceiling)])

    @property
    def stable(self) -> bool:
        return self.ceiling_spread <= STABLE_SPREAD

    def summary(self) -> dict[str, float]:
        measured, ceiling = self._last(self.measured), self._last(self.ceiling)
        return {
            "rps": median([r.rps for r in measured]),
            "p50_ms": median([r.p50_ms for r in measured]),
            "p99_ms": median([r.p99_ms for r in measured]),
            "ceiling_rps": median([r.rps for r in ceiling]),
            "ceiling_p50_ms": median([r.p50_ms for r in ceiling]),
            "ceiling_p99_ms": median([r.p99_ms for r in ceiling]),
            "ratio": median(self.ratios),
        }


def side_by_side(
    measured: tuple[str, Sequence[str]],
    ceiling: tuple[str, Sequence[str]],
    *,
    rounds: int,
    seconds: float,
    connections: int,
    after_round: Callable[[LoadResult], None] = lambda _: None,
) -> SideBySide:
    """Rounds of (ceiling, then measured), each `seconds` long, until the last `rounds` ceilings are
    stable or MAX_EXTRA_ROUNDS more were run; both arguments are (base_url, paths)."""
    result = SideBySide(window=rounds)
    while len(result.ceiling) < rounds or (
        not result.stable and len(result.ceiling) < rounds + MAX_EXTRA_ROUNDS
    ):
        result.ceiling.append(run_wrk(ceiling[0], ceiling[1], seconds=seconds, connections=connections))
        result.measured.append(run_wrk(measured[0], measured[1], seconds=seconds, connections=connections))
        after_round(result.measured[-1])
    return result
