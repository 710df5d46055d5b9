"""bench/: the report's arithmetic, the wrk report parser, the request mix and the table's shape.

The benchmark itself is not run here (`make bench` prints timings; tests never assert on them).
"""

from __future__ import annotations

import json
import math
from datetime import date, timedelta

import pytest

from app.contract.flight_event import decode_event
from bench import load, mix
from bench.figures import (
    MIB,
    MINIMUM_BILLED_BYTES,
    TIB,
    Figure,
    QueryShape,
    at_least,
    at_most,
    dollars_per_thousand,
    growth,
    percentile,
    query_dollars,
)
from bench.load import MAX_EXTRA_ROUNDS, SideBySide, parse_wrk_output, side_by_side
from bench.report import figures_table, targets_table


def wrk_line(**overrides: int) -> str:
    data = {"requests": 1000, "duration_us": 2_000_000, "bytes": 5, "p50_us": 1500, "p90_us": 2000,
            "p99_us": 9000, "max_us": 12000, "socket_errors": 0, "s2xx": 990, "s304": 0, "s4xx": 0,
            "s429": 0, "s5xx": 10, "hit": 700, "miss": 200, "collapsed": 80, "stale": 20,
            "none": 0}  # fmt: skip
    return "Running 2s test\nBENCH_JSON " + json.dumps(data | overrides) + "\n"


def test_wrk_report_parses_into_rates_latencies_and_cache_hits() -> None:
    result = parse_wrk_output(wrk_line())
    assert result.rps == 500
    assert (result.p50_ms, result.p99_ms) == (1.5, 9.0)
    assert result.hit_ratio == 0.70
    assert result.query_ratio == 0.20  # collapsed and stale answers cost no query
    assert result.ok_ratio == 0.99
    assert math.isnan(parse_wrk_output(wrk_line(hit=0, miss=0, collapsed=0, stale=0, none=1000)).hit_ratio)
    with pytest.raises(RuntimeError, match="no BENCH_JSON"):
        parse_wrk_output("wrk: connection refused")


def test_side_by_side_ratios_pair_adjacent_rounds() -> None:
    runs = SideBySide()
    for measured, ceiling in ((400, 1000), (300, 500), (900, 1000)):
        runs.measured.append(parse_wrk_output(wrk_line(requests=measured)))
        runs.ceiling.append(parse_wrk_output(wrk_line(requests=ceiling)))
    assert runs.ratios == pytest.approx([0.4, 0.6, 0.9])
    summary = runs.summary()
    assert summary["ratio"] == pytest.approx(0.6)
    assert summary["rps"] == 200  # median of 200, 150, 450 req/s
    assert summary["ceiling_rps"] == 500


def _rounds(monkeypatch: pytest.MonkeyPatch, ceilings: list[int]) -> SideBySide:
    """side_by_side over a ceiling answering `ceilings` requests per round, the API always 400."""
    answers = iter(ceilings)

    def fake_wrk(base_url: str, paths: list[str], **_: object) -> load.LoadResult:
        return parse_wrk_output(wrk_line(requests=next(answers) if base_url == "ceiling" else 400))

    monkeypatch.setattr(load, "run_wrk", fake_wrk)
    return side_by_side(("api", ["/"]), ("ceiling", ["/"]), rounds=3, seconds=1, connections=1)


def test_a_ceiling_that_moved_is_measured_again_until_it_holds_still(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = _rounds(monkeypatch, [1000, 500, 1000, 1000, 1000, 9999])
    assert len(runs.ceiling) == 5, "two more rounds, then the last three agree"
    assert runs.stable
    assert runs.ceiling_spread == 0
    assert runs.ratios == pytest.approx([0.4, 0.4, 0.4]), "only the stable rounds count"


def test_a_ceiling_that_never_settles_marks_the_run_disturbed(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = _rounds(monkeypatch, [1000, 500] * 10)
    assert len(runs.ceiling) == 3 + MAX_EXTRA_ROUNDS
    assert not runs.stable
    assert runs.ceiling_spread == pytest.approx(500 / 1000)


def test_a_steady_ceiling_takes_the_rounds_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = _rounds(monkeypatch, [1000, 980, 1020, 1] * 3)
    assert len(runs.ceiling) == 3
    assert runs.stable


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile([3.0], 99) == 3.0
    assert math.isnan(percentile([], 50))


def test_targets_say_met_or_not_with_the_value() -> None:
    assert at_least("cached", 0.62, 0.5, "ratio", "x").met is True
    below = at_least("cached", 0.31, 0.5, "ratio", "x")
    assert (below.met, below.verdict) == (False, "NOT met")
    assert "0.31" in below.reason
    assert at_most("start-up", 1.2, 1.5, "median", " s").met is True
    assert at_most("start-up", 1.7, 1.5, "median", " s").met is False
    assert at_least("x", math.nan, 1, "ratio").verdict == "not measured"


def test_growth_compares_first_and_last_samples() -> None:
    assert growth([(1, 100.0), (2, 105.0), (3, 110.0)]) == pytest.approx(0.10)
    assert math.isnan(growth([(1, 100.0)]))


def test_queries_bill_whole_mib_and_at_least_ten() -> None:
    small = QueryShape("list", days_scanned=11, bytes_per_day=125_000)
    assert small.scanned_bytes == 1_375_000
    assert small.billed_bytes == MINIMUM_BILLED_BYTES == 10 * MIB
    large = QueryShape("scan", days_scanned=365, bytes_per_day=150_000)
    assert large.billed_bytes == 53 * MIB  # 54.75 MB = 52.2 MiB, rounded up
    assert query_dollars(TIB, 6.25) == 6.25


def test_cost_per_thousand_counts_only_cache_misses_of_query_kinds() -> None:
    shapes = {"list": QueryShape("list", 11, 1000), "get": QueryShape("get", 5, 1000)}
    shares = {"list": 0.5, "get": 0.4, "publish": 0.1}
    per_query = query_dollars(10 * MIB)  # both shapes bill the minimum
    assert dollars_per_thousand(shares, shapes, miss_ratio=1.0) == pytest.approx(1000 * 0.9 * per_query)
    assert dollars_per_thousand(shares, shapes, miss_ratio=0.1) == pytest.approx(100 * 0.9 * per_query)
    assert dollars_per_thousand(shares, shapes, miss_ratio=0.0) == 0


def test_tables_show_every_figure_ratio_and_verdict() -> None:
    figure = Figure("list page (cached)", 4000, "req/s", ceiling=8000, ceiling_name="bare ASGI",
                    p50_ms=3.2, p99_ms=9.9, note="cache hits 100%")  # fmt: skip
    table = figures_table([figure, Figure("start-up", 0.9, "s")])
    assert "list page (cached)" in table
    assert "0.50" in table
    assert "cache hits 100%" in table
    verdicts = targets_table([at_least("cached", 0.5, 0.5, "ratio", "x"), at_most("cost", 0.02, 0.01, "$")])
    assert "met" in verdicts.splitlines()[0]
    assert "NOT met" in verdicts.splitlines()[1]


def test_mix_shares_sum_to_one_and_uncached_paths_never_repeat() -> None:
    assert sum(mix.SHARES.values()) == pytest.approx(1.0)
    days = [date(2013, 1, 1) + timedelta(days=n) for n in range(30)]
    paths = mix.uncached_list_paths(mix.MixData(days=days, event_ids=[("x", days[0])]), 4000)
    assert len(set(paths)) == len(paths)


def test_mix_reads_follow_the_shares() -> None:
    days = [date(2013, 1, 1) + timedelta(days=n) for n in range(10)]
    data = mix.MixData(days=days, event_ids=[(f"id-{n}", days[n % 10]) for n in range(100)])
    paths = mix.read_paths(data, 10_000)
    gets = sum(p.startswith("/v1/flights/") for p in paths) / len(paths)
    assert gets == pytest.approx(0.35 / 0.90, abs=0.03)


def test_load_test_events_satisfy_the_contract() -> None:
    event = decode_event(json.dumps(mix.load_test_event()))
    assert event.carrier == mix.LOAD_TEST_CARRIER
