"""`python -m bench` (`make bench`): measure the service against ceilings taken in the same run.

Starts its own local stack on free ports, serves the API from a venv built exactly as the image's
(bench/runtime_env.py), and measures, in this order: start-up, ingest (which also seeds the
data), reads, memory, cost. Prints a table and writes bench/results/latest.json. Bounded: 3-5
minutes with the defaults on a 2-core machine (more rounds while the ceiling moves); docs/performance.md
explains every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from bench import mix
from bench.cost import query_shapes, read_bytes
from bench.figures import (
    MB,
    MIB,
    ON_DEMAND_USD_PER_TIB,
    Figure,
    QueryShape,
    Target,
    at_least,
    at_most,
    dollars_per_thousand,
    growth,
    query_dollars,
)
from bench.ingest import IngestConfig, IngestResults, measure_ingest
from bench.load import STABLE_SPREAD, require_wrk
from bench.processes import serve
from bench.reads import ReadConfig, ReadResults, fetch, measure_reads
from bench.report import commit, figures_table, machine, now, targets_table, write_json
from bench.runtime_env import REPO_ROOT, build_runtime_venv
from bench.startup import measure_image, measure_startup

WORK_DIR = REPO_ROOT / ".bench"
RESULTS = REPO_ROOT / "bench" / "results" / "latest.json"
# wrk is one client address: the API's per-client rate limit (0 turns it off) would answer it 429.
LOAD_TEST_ENV = {"APP_RATE_LIMIT_PER_MINUTE": "0"}
CACHED_TARGET, INGEST_TARGET, STARTUP_TARGET_S, IMAGE_TARGET_MB = 0.5, 0.8, 1.5, 200.0
COST_TARGET_USD, FLAT_GROWTH = 0.01, 0.20


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--replay-days",
        type=int,
        default=int(_env("BENCH_REPLAY_DAYS", "30")),
        help="days of 2013 flights replayed through the pipeline (env BENCH_REPLAY_DAYS; 365 = full year)",
    )
    parser.add_argument(
        "--rounds", type=int, default=int(_env("BENCH_ROUNDS", "3")), help="side-by-side rounds"
    )
    parser.add_argument(
        "--seconds", type=float, default=float(_env("BENCH_SECONDS", "5")), help="seconds per round"
    )
    parser.add_argument("--connections", type=int, default=int(_env("BENCH_CONNECTIONS", "16")))
    parser.add_argument(
        "--price-per-tib", type=float, default=float(_env("BENCH_PRICE_PER_TIB", str(ON_DEMAND_USD_PER_TIB)))
    )
    parser.add_argument(
        "--image",
        action="store_true",
        default=_env("BENCH_IMAGE", "") == "1",
        help="also build the image with docker/podman and report its size (env BENCH_IMAGE=1)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser


def log(message: str) -> None:
    print(message, flush=True)


def _mix_data(api_url: str, first: date, days: int) -> mix.MixData:
    """Days of the replay, and ids of flights listed on them (the mix looks up flights it has seen)."""
    day_list = [date.fromordinal(first.toordinal() + n) for n in range(days)]
    ids: list[tuple[str, date]] = []
    for day in day_list[:7]:
        status, _, body = fetch(f"{api_url}/v1/flights?from={day}&to={day}&limit=100")
        if status == 200:
            ids += [(item["event_id"], day) for item in json.loads(body)["items"]]
    if not ids:
        raise RuntimeError("the API lists no flights after the replay: nothing to read")
    return mix.MixData(days=day_list, event_ids=ids)


def _flat(name: str, samples: list[tuple[float, float]], label: str) -> Target:
    value = growth(samples)
    if math.isnan(value):
        return Target(name, f"<= +{FLAT_GROWTH:.0%}", None, f"{label}: too few samples")
    met = value <= FLAT_GROWTH
    points = ", ".join(f"{rss:.0f}" for _, rss in samples)
    return Target(
        name,
        f"<= +{FLAT_GROWTH:.0%}",
        met,
        f"{label} {value:+.0%} from the first sample under load to the last (MiB: {points})",
    )


def _startup_and_image(
    runtime_python: Path, venv: Path, build_image: bool
) -> tuple[list[Figure], list[Target]]:
    """Start-up of the runtime next to the bare server's; the installed runtime and, if built, the image."""
    log("start-up: python -m app.api to the first 200 on /health, 5 times, next to the bare ceiling")
    startup = measure_startup(runtime_python, WORK_DIR / "logs")
    figures = [
        Figure(
            "start-up to first /health 200",
            startup.api_median,
            "s",
            ceiling=startup.ceiling_median,
            ceiling_name="bare ASGI start-up, same server",
            note=f"runs (s): {', '.join(f'{s:.2f}' for s in startup.api_seconds)}",
        )
    ]
    targets = [at_most("start-up", startup.api_median, STARTUP_TARGET_S, "median start-up", " s")]
    image = measure_image(venv, build_image)
    figures.append(Figure("runtime installed size", image.installed_mb, "MB", note=image.how))
    if image.image_mb is None:
        reason = f"no image built here ({image.how}); the runtime installs {image.installed_mb:.1f} MB"
        targets.append(
            Target("image size", f"<= {IMAGE_TARGET_MB:g} MB", None, reason + " on top of the base")
        )
    else:
        figures.append(Figure("image size", image.image_mb, "MB", note=image.how))
        targets.append(at_most("image size", image.image_mb, IMAGE_TARGET_MB, "the image", " MB"))
    return figures, targets


def _ingest_targets(ingest: IngestResults, bridge_label: str) -> list[Target]:
    rate = at_least(
        "ingest vs emulator ceiling",
        ingest.figures[0].ratio,
        INGEST_TARGET,
        "publish-to-visible rate / lower emulator ceiling",
        "x",
    )
    loaded = [s for s in ingest.bridge_rss if s[0] > 0]
    return [rate, _flat("bridge memory flat", loaded, bridge_label)]


def _cached_target(figure: Figure) -> Target:
    """At least CACHED_TARGET of the ceiling, judged only where the ceiling held still."""
    extra = figure.extra
    target = at_least(f"{figure.name} vs ceiling", figure.ratio, CACHED_TARGET, "API / bare ASGI", "x")
    spread = f"per round {min(extra['ratios']):.2f}-{max(extra['ratios']):.2f}"
    if not extra["stable"]:
        target.met = None
        target.reason = (
            f"disturbed run: the ceiling moved {extra['ceiling_spread']:.0%} over its last rounds "
            f"(> {STABLE_SPREAD:.0%} after {extra['rounds']} rounds); "
            f"ratio {figure.ratio:.2f} ({spread}) is no verdict"
        )
    else:
        target.reason += f" ({spread}, ceiling within {extra['ceiling_spread']:.0%})"
    return target


def _read_targets(reads: ReadResults) -> list[Target]:
    targets = [_cached_target(f) for f in reads.figures if f.extra.get("cached")]
    targets.append(_flat("API memory flat", reads.cached_rss, "API RSS over the cached rounds"))
    return targets


@dataclass
class Cost:
    """BigQuery dollars per 1,000 requests of the mix, at the measured hit ratio and at others."""

    shapes: dict[str, QueryShape]
    hit_ratio: float
    query_ratio: float
    price_per_tib: float

    def per_thousand(self, miss_ratio: float) -> float:
        return dollars_per_thousand(mix.SHARES, self.shapes, miss_ratio, self.price_per_tib)

    @property
    def measured(self) -> float:
        return self.per_thousand(self.query_ratio)

    @property
    def at_hit_ratios(self) -> dict[str, float]:
        return {f"{h:.0%}": self.per_thousand(1 - h) for h in (0.0, 0.5, 0.9, 0.99)}

    @property
    def break_even(self) -> float:
        """The hit ratio at which the mix costs COST_TARGET_USD."""
        uncached = self.per_thousand(1.0)
        return 1 - COST_TARGET_USD / uncached if uncached else 0.0

    def figure(self) -> Figure:
        at = ", ".join(f"{k} hits: ${v:.4f}" for k, v in self.at_hit_ratios.items())
        note = f"measured: {self.hit_ratio:.0%} hits, {self.query_ratio:.0%} of requests queried; {at}"
        return Figure("BigQuery $ per 1,000 mixed requests", self.measured, "$", note=note)

    def target(self) -> Target:
        what = (
            f"${self.measured:.4f} at {self.hit_ratio:.0%} cache hits (needs >= {self.break_even:.0%} hits)"
        )
        return at_most("cost per 1,000 requests", self.measured, COST_TARGET_USD, what, " $")

    def as_json(self) -> dict[str, Any]:
        return {
            "price_per_tib_usd": self.price_per_tib,
            "mix_shares": mix.SHARES,
            "hit_ratio": self.hit_ratio,
            "query_ratio": self.query_ratio,
            "break_even_hit_ratio": self.break_even,
            "shapes": {
                k: {
                    "name": s.name,
                    "days_scanned": s.days_scanned,
                    "scanned_bytes": s.scanned_bytes,
                    "billed_bytes": s.billed_bytes,
                    "usd_per_query": query_dollars(s.billed_bytes, self.price_per_tib),
                    "note": s.note,
                }
                for k, s in self.shapes.items()
            },
            "per_thousand_at_hit_ratio": self.at_hit_ratios,
        }


def _memory_figures(
    api_rss_start: float, peak_api: float, reads: ReadResults, ingest: IngestResults, bridge_label: str
) -> list[Figure]:
    by_requests = ", ".join(f"{served / 1000:.0f}k {rss:.0f}" for served, rss in reads.rss)
    api = Figure(
        "API peak RSS under load",
        peak_api,
        "MiB",
        note=f"{api_rss_start:.0f} MiB at start; by requests served: {by_requests}"
        " (after the cached rounds, growth is distinct answers entering the bounded result cache)",
    )
    bridge_peak = max((rss for _, rss in ingest.bridge_rss), default=math.nan)
    return [api, Figure("bridge peak RSS during replay", bridge_peak, "MiB", note=bridge_label)]


@dataclass
class Measured:
    """What the stack-bound part of the run measured, taken before the stack stops."""

    ingest: IngestResults
    reads: ReadResults
    shapes: dict[str, QueryShape]
    api_rss_start: float
    peak_api: float
    bridge_label: str


def _on_the_stack(args: argparse.Namespace, runtime_python: Path) -> Measured:
    """Ingest (which seeds the data), reads and the bytes each query shape scans, on one local stack."""
    from app.local import LocalStack, LocalStackConfig
    from app.local.processes import free_port

    config = LocalStackConfig.on_free_ports(start_api=False, state_dir=WORK_DIR / "stack")
    ingest_config = IngestConfig(days=args.replay_days)
    log(f"starting the local stack (Pub/Sub {config.pubsub_port}, BigQuery {config.bigquery_port})")
    with LocalStack.start(config) as stack:
        api_port = free_port()
        api_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO_ROOT)} | stack.api_env
        api_env |= LOAD_TEST_ENV | {"PORT": str(api_port)}
        argv = [str(runtime_python), "-m", "app.api"]
        with serve("api", argv, api_port, api_env, WORK_DIR / "logs") as api:
            api_rss_start = api.rss_mib()
            bridge = stack.children["bridge"]
            bridge_label = f"bridge process (pid {bridge.pid})"
            log(f"ingest: {args.replay_days} days of flights through topic, bridge, warehouse and API")
            ingest = measure_ingest(stack, api.base_url, ingest_config, bridge.pid, log)
            data = _mix_data(api.base_url, ingest_config.start, args.replay_days)
            log("reads: side by side with the bare ASGI ceiling")
            read_config = ReadConfig(rounds=args.rounds, seconds=args.seconds, connections=args.connections)
            reads = measure_reads(api, api_env, runtime_python, data, WORK_DIR, free_port(), read_config, log)
            peak_api = api.peak_rss_mib()
        log("cost: bytes each query shape scans, from the rows the emulator holds")
        shapes = query_shapes(*read_bytes(stack.bigquery(), stack.table_id))
    return Measured(ingest, reads, shapes, api_rss_start, peak_api, bridge_label)


def _print_report(figures: list[Figure], targets: list[Target], cost: Cost) -> None:
    print()
    print(figures_table(figures))
    print()
    print("query shapes (logical bytes scanned per query; billed in whole MiB, at least 10 MiB):")
    for shape in cost.shapes.values():
        print(
            f"  {shape.name:<45} {shape.scanned_bytes / MB:8.2f} MB scanned"
            f"  {shape.billed_bytes / MIB:6.1f} MiB billed"
            f"  ${query_dollars(shape.billed_bytes, cost.price_per_tib):.6f}  {shape.note}"
        )
    print()
    print(targets_table(targets))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    require_wrk()
    began = time.monotonic()
    meta: dict[str, Any] = {
        "started_at": now(),
        "machine": machine(),
        "commit": commit(),
        "config": vars(args) | {"output": str(args.output)},
    }
    log(
        f"bench on {meta['commit']['sha'][:12]} ({meta['machine']['cpus']} CPUs,"
        f" load {meta['machine']['load_average'][0]:.1f})"
    )
    WORK_DIR.mkdir(exist_ok=True)
    venv = WORK_DIR / "runtime-venv"
    log("building the runtime venv (requirements/runtime.txt, as the image's builder stage)")
    runtime_python = build_runtime_venv(venv)
    figures, targets = _startup_and_image(runtime_python, venv, args.image)
    run = _on_the_stack(args, runtime_python)
    figures += run.ingest.figures + run.reads.figures
    targets += _ingest_targets(run.ingest, run.bridge_label) + _read_targets(run.reads)
    cost = Cost(run.shapes, run.reads.hit_ratio, run.reads.query_ratio, args.price_per_tib)
    figures.append(cost.figure())
    targets.append(cost.target())
    figures += _memory_figures(run.api_rss_start, run.peak_api, run.reads, run.ingest, run.bridge_label)

    elapsed = time.monotonic() - began
    write_json(
        args.output,
        meta
        | {
            "finished_at": now(),
            "seconds": round(elapsed, 1),
            "load_average_end": list(os.getloadavg()),
            "figures": [f.as_json() for f in figures],
            "targets": [{"name": t.name, "goal": t.goal, "met": t.met, "reason": t.reason} for t in targets],
            "log_bytes_per_thousand_reads": run.reads.log_bytes_per_thousand,
            "cost": cost.as_json(),
            "memory": {
                "api_rss_mib_by_requests": run.reads.rss,
                "bridge_rss_mib_by_events": run.ingest.bridge_rss,
                "bridge_process": run.bridge_label,
            },
            "ingest_latency_s": sorted(run.ingest.latencies_s),
        },
    )
    _print_report(figures, targets, cost)
    dirty = " + local changes" if meta["commit"]["dirty"] else ""
    print(
        f"\n{len([t for t in targets if t.met])}/{len(targets)} targets met; wrote {args.output} "
        f"({elapsed:.0f} s, load {os.getloadavg()[0]:.1f} at the end, "
        f"commit {meta['commit']['sha'][:12]}{dirty})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
