"""Reads against their ceilings: a cached list page, lookups by id, uncached reads, the realistic mix.

The ceiling of a cached read is the bare ASGI app (bench/ceiling.py) answering the very response
the API gave (status, headers, body), on the same server with the same options. The ceiling of an
uncached read is, in addition, the warehouse emulator answering the same queries straight through
the BigQuery client at the API's warehouse concurrency: what the API could do if it added nothing.
"""

from __future__ import annotations

import math
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bench import mix
from bench.ceiling import save_response
from bench.figures import Figure, median
from bench.load import LoadResult, SideBySide, run_wrk, side_by_side
from bench.processes import Server, serve
from bench.runtime_env import REPO_ROOT


@dataclass(frozen=True)
class ReadConfig:
    rounds: int = 3
    seconds: float = 5.0
    connections: int = 16
    # Uncached reads queue on the warehouse emulator (one process, ~1 s a query under load); more
    # connections only turn waits into deadline 503s.
    uncached_connections: int = 4
    mix_seconds: float = 10.0
    # Few connections for the mix: its misses queue on the warehouse emulator (a few queries a
    # second), and a flood of them opens the circuit breaker, which says nothing about the cache.
    mix_connections: int = 2


@dataclass
class ReadResults:
    figures: list[Figure] = field(default_factory=list)
    hit_ratio: float = math.nan
    # Share of the mix's requests that cost a warehouse query (misses; not hits, collapsed or stale).
    query_ratio: float = math.nan
    # Bytes the API wrote to its stdout and stderr per 1,000 requests of the measured mix.
    log_bytes_per_thousand: float = math.nan
    # (requests served so far, API RSS in MiB) after each load run; the cached phases repeat the
    # same reads, so their samples say whether memory stays flat as the work grows.
    rss: list[tuple[float, float]] = field(default_factory=list)
    cached_rss: list[tuple[float, float]] = field(default_factory=list)
    served: int = 0


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url)  # noqa: S310 - loopback URL built by the harness
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return int(response.status), dict(response.headers.items()), response.read()


def _figure(name: str, runs: SideBySide, note: str, cached: bool) -> Figure:
    summary = runs.summary()
    hit = median([r.hit_ratio for r in runs.measured])
    ok = median([r.ok_ratio for r in runs.measured])
    notes = [note]
    if cached:
        ratios = runs.ratios
        notes.append(
            f"cache hits {hit:.0%}; ratio per round {min(ratios):.2f}-{max(ratios):.2f} over the last "
            f"{len(ratios)} of {len(runs.ceiling)} rounds, ceiling spread {runs.ceiling_spread:.0%}"
            + ("" if runs.stable else " (not stable: a disturbed run)")
        )
    if ok < 0.99:
        notes.append(f"answers: {_statuses(runs.measured)}")
    return Figure(
        name=name,
        value=summary["rps"],
        unit="req/s",
        ceiling=summary["ceiling_rps"],
        ceiling_name="bare ASGI, same server",
        p50_ms=summary["p50_ms"],
        p99_ms=summary["p99_ms"],
        ceiling_p50_ms=summary["ceiling_p50_ms"],
        ceiling_p99_ms=summary["ceiling_p99_ms"],
        note="; ".join(n for n in notes if n),
        extra={
            "ratios": runs.ratios,
            "ratio": summary["ratio"],
            "rounds": len(runs.ceiling),
            "ceiling_rps_by_round": [r.rps for r in runs.ceiling],
            "ceiling_spread": runs.ceiling_spread,
            "stable": runs.stable,
            "hit_ratio": hit,
            "ok_ratio": ok,
            "cached": cached,
        },
    )


def _statuses(runs: list[LoadResult]) -> str:
    total = sum(r.requests for r in runs) or 1
    counts = {key: sum(r.statuses[key] for r in runs) for key in runs[0].statuses}
    return ", ".join(f"{key} {count / total:.0%}" for key, count in counts.items() if count)


class _Tracker:
    """Counts what the API served and samples its RSS after each run."""

    def __init__(self, api: Server, results: ReadResults) -> None:
        self.api, self.results = api, results

    def add(self, *runs: LoadResult) -> None:
        self.results.served += sum(r.requests for r in runs)
        self.results.rss.append((self.results.served, self.api.rss_mib()))

    def add_cached(self, run: LoadResult) -> None:
        self.add(run)
        self.results.cached_rss.append(self.results.rss[-1])


def _direct_warehouse(env: dict[str, str], paths: list[str], seconds: float, threads: int) -> LoadResult:
    """The uncached ceiling: the API's own warehouse queries, called straight, `threads` at a time."""
    from app.api.settings import Settings
    from app.api.warehouse import FlightQuery, FlightWarehouse, day_window
    from app.gcp_clients import bigquery_client

    settings = Settings(
        project_id=env["APP_PROJECT_ID"],
        bigquery_api_endpoint=env["BIGQUERY_API_ENDPOINT"],
        read_deadline_seconds=30,
    )
    warehouse = FlightWarehouse(
        bigquery_client(settings.project_id, settings.bigquery_api_endpoint), settings
    )
    queries = []
    for path in paths:
        params = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
        start, end = day_window(date.fromisoformat(params["from"]), date.fromisoformat(params["to"]))
        queries.append(FlightQuery(start=start, end=end, limit=int(params.get("limit", 50))))
    latencies: list[float] = []
    lock = threading.Lock()
    cursor = iter(queries)
    deadline = time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                query = next(cursor)
            began = time.monotonic()
            warehouse.list_flights(query)
            with lock:
                latencies.append(time.monotonic() - began)

    began = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(worker) for _ in range(threads)]:
            future.result()
    elapsed = time.monotonic() - began
    warehouse.close()
    ordered = sorted(latencies)
    return LoadResult(
        requests=len(ordered),
        seconds=elapsed,
        p50_ms=1000 * ordered[len(ordered) // 2] if ordered else math.nan,
        p99_ms=1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else math.nan,
        statuses={"2xx": len(ordered), "304": 0, "4xx": 0, "429": 0, "5xx": 0},
        cache={"hit": 0, "miss": 0, "collapsed": 0, "stale": 0, "none": len(ordered)},
        socket_errors=0,
    )


def measure_reads(
    api: Server,
    api_env: dict[str, str],
    runtime_python: Path,
    data: mix.MixData,
    work_dir: Path,
    ceiling_port: int,
    config: ReadConfig,
    log: Any = print,
) -> ReadResults:
    results = ReadResults()
    track = _Tracker(api, results)
    first, last = data.days[0], data.days[min(6, len(data.days) - 1)]
    list_path = f"/v1/flights?from={first}&to={last}&limit={mix.PAGE}"
    get_paths = [f"/v1/flights/{event_id}?on={day}" for event_id, day in data.event_ids[:20]]
    uncached = mix.uncached_list_paths(data, 4000)
    responses = work_dir / "ceiling"
    # Warm the cache and capture the exact responses the ceiling will answer.
    for path in [list_path, list_path, *get_paths, *get_paths]:
        fetch(api.base_url + path)
    save_response(responses, "list", *fetch(api.base_url + list_path))
    save_response(responses, "get", *fetch(api.base_url + get_paths[0]))
    save_response(responses, "uncached", *fetch(api.base_url + uncached.pop()))
    track.add()
    ceiling_env = {
        "PATH": "/usr/bin:/bin",
        "BENCH_CEILING_RESPONSES": str(responses),
        "PYTHONPATH": str(REPO_ROOT),
    }
    argv = [str(runtime_python), "-m", "bench.ceiling", "127.0.0.1", str(ceiling_port)]
    with serve("ceiling", argv, ceiling_port, ceiling_env, work_dir, ready_path="/list") as ceiling:
        log(f"  reads: cached list page vs ceiling ({config.rounds} x {config.seconds:g} s each side)")
        runs = side_by_side(
            (api.base_url, [list_path]),
            (ceiling.base_url, ["/list"]),
            rounds=config.rounds,
            seconds=config.seconds,
            connections=config.connections,
            after_round=track.add_cached,
        )
        results.figures.append(_figure("list page (cached)", runs, list_path, cached=True))
        log("  reads: lookups by id vs ceiling")
        runs = side_by_side(
            (api.base_url, get_paths),
            (ceiling.base_url, ["/get"]),
            rounds=config.rounds,
            seconds=config.seconds,
            connections=config.connections,
            after_round=track.add_cached,
        )
        results.figures.append(
            _figure("get by id (cached)", runs, f"{len(get_paths)} ids with ?on=", cached=True)
        )
        log(f"  reads: realistic mix ({config.mix_seconds:g} s to warm the cache, then measured)")
        paths = mix.read_paths(data, 20_000)
        warming = run_wrk(api.base_url, paths, seconds=config.mix_seconds, connections=config.mix_connections)
        logged = api.log_bytes()
        mixed = run_wrk(api.base_url, paths, seconds=config.mix_seconds, connections=config.mix_connections)
        results.log_bytes_per_thousand = 1000 * (api.log_bytes() - logged) / max(mixed.requests, 1)
        track.add(warming, mixed)
        results.hit_ratio, results.query_ratio = mixed.hit_ratio, mixed.query_ratio
        results.figures.append(
            Figure(
                name="realistic read mix",
                value=mixed.rps,
                unit="req/s",
                p50_ms=mixed.p50_ms,
                p99_ms=mixed.p99_ms,
                note=f"steady state after a warm-up window (hits {warming.hit_ratio:.0%} while warming); "
                + f"{mix.__name__}: "
                + ", ".join(f"{k} {v:.0%}" for k, v in mix.SHARES.items() if k != "publish")
                + f"; cache hits {mixed.hit_ratio:.0%}"
                + f"; API log {results.log_bytes_per_thousand / 1000:,.0f} kB per 1,000 requests"
                + (f"; answers: {_statuses([mixed])}" if mixed.ok_ratio < 0.99 else ""),
                extra={
                    "hit_ratio": mixed.hit_ratio,
                    "query_ratio": mixed.query_ratio,
                    "cache_status": mixed.cache,
                    "connections": config.mix_connections,
                    "ok_ratio": mixed.ok_ratio,
                    "statuses": mixed.statuses,
                    "warming_hit_ratio": warming.hit_ratio,
                    "warming_statuses": warming.statuses,
                    "log_bytes_per_thousand": results.log_bytes_per_thousand,
                },
            )
        )
        log("  reads: uncached list queries vs ceiling and vs the warehouse emulator queried directly")
        uncached_runs = SideBySide()
        direct_runs: list[LoadResult] = []
        per_round = len(uncached) // config.rounds
        for n in range(config.rounds):
            paths = uncached[n * per_round : (n + 1) * per_round]
            uncached_runs.ceiling.append(
                run_wrk(
                    ceiling.base_url, ["/uncached"], seconds=config.seconds, connections=config.connections
                )
            )
            direct_runs.append(
                _direct_warehouse(
                    api_env, paths[per_round // 2 :], config.seconds, config.uncached_connections
                )
            )
            uncached_runs.measured.append(
                run_wrk(
                    api.base_url,
                    paths[: per_round // 2],
                    seconds=config.seconds,
                    connections=config.uncached_connections,
                )
            )
        track.add(*uncached_runs.measured)
        figure = _figure(
            "list, uncached (2xx/s)", uncached_runs, "every request a different query", cached=False
        )
        # Requests the warehouse could not answer in time end as fast 503s; count only the answers.
        figure.extra["all_answers_rps"] = figure.value
        figure.value = median([r.statuses["2xx"] / r.seconds for r in uncached_runs.measured])
        direct_rps = median([r.rps for r in direct_runs])
        figure.extra |= {
            "warehouse_direct_rps": direct_rps,
            "warehouse_direct_p50_ms": median([r.p50_ms for r in direct_runs]),
            "warehouse_direct_p99_ms": median([r.p99_ms for r in direct_runs]),
            "ratio_to_warehouse_direct": median(
                [
                    m.statuses["2xx"] / m.seconds / d.rps
                    for m, d in zip(uncached_runs.measured, direct_runs, strict=True)
                    if d.rps
                ]
            ),
        }
        results.figures.append(figure)
    return results
