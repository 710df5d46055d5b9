"""`python -m app.local run`: start the local stack, replay flights, serve until Ctrl-C.

`python -m app.local replay` publishes more flights into a stack that is already running
(it reads `.local/stack.json`); `--resume` continues an interrupted replay of the same selection.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from types import FrameType

import requests
from google.api_core.exceptions import GoogleAPIError
from google.cloud import bigquery

from app.contract.pipeline import PIPELINE
from app.contract.service_env import ConfigError, env_int
from app.contract.stack_file import STACK_FILE, read_stack_file
from app.local.processes import StackError
from app.local.replay import FIRST_DAY, Checkpoint, ReplayResult, replay_window
from app.local.stack import LocalStack, LocalStackConfig

DEFAULT_DAYS = 3
POLL_SECONDS = 1.0
REPORT_SECONDS = 5.0
STALL_SECONDS = 120.0
SERVED_SECONDS = 60.0
QUERY_TIMEOUT = 10.0
QUERY_RETRY = bigquery.DEFAULT_RETRY.with_timeout(QUERY_TIMEOUT)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start emulators, bridge and API, replay flights, wait for Ctrl-C")
    run.add_argument("--project", default=os.environ.get("LOCAL_PROJECT", "local-project"))
    run.add_argument("--pubsub-port", type=int, default=env_int(os.environ, "PUBSUB_PORT", 8085))
    run.add_argument("--bigquery-port", type=int, default=env_int(os.environ, "BIGQUERY_PORT", 9050))
    run.add_argument("--api-port", type=int, default=env_int(os.environ, "API_PORT", 8000))
    run.add_argument("--no-api", action="store_true", help="do not start the API")
    for sub in (run, commands.add_parser("replay", help="replay more flights into the running stack")):
        sub.add_argument(
            "--state-dir", type=Path, default=LocalStackConfig.state_dir, help="stack.json and logs (.local)"
        )
        sub.add_argument(
            "--start", type=date.fromisoformat, default=FIRST_DAY, help="first flight date (2013-01-01)"
        )
        window = sub.add_mutually_exclusive_group()
        window.add_argument(
            "--days",
            type=int,
            default=env_int(os.environ, "REPLAY_DAYS", DEFAULT_DAYS),
            help="days to replay (env REPLAY_DAYS, default 3; 0 for none)",
        )
        window.add_argument("--all", action="store_true", help="replay all 336,776 flights of 2013")
        if sub is not run:
            sub.add_argument(
                "--resume", action="store_true", help="continue an interrupted replay of the same selection"
            )
    return parser


def _report(result: ReplayResult) -> None:
    resumed = f" (resumed after {result.skipped:,} rows)" if result.skipped else ""
    print(
        f"replayed {result.published:,} events in {result.seconds:.1f} s "
        f"({result.rate:,.0f} msgs/s){resumed}",
        flush=True,
    )
    for reason, count in result.invalid.most_common():
        print(f"  skipped {count:,} rows that are not valid events: {reason}")


def _checkpoint(args: argparse.Namespace, run_dir: Path) -> Checkpoint | None:
    """This stack's saved progress for the selection, if --resume; a fresh one otherwise."""
    days = None if args.all else args.days
    path = run_dir / f"replay-{args.start.isoformat()}-{'all' if days is None else days}.json"
    saved = Checkpoint.load(path, args.start, days)
    if getattr(args, "resume", False):
        if saved.finished:
            print(f"the replay of this selection already finished ({saved.done:,} rows): nothing to resume")
        return saved
    if saved.done and not saved.finished:
        print(f"an earlier replay of this selection stopped after {saved.done:,} rows: --resume continues it")
    return Checkpoint(path, args.start.isoformat(), days)


def _replay(
    args: argparse.Namespace,
    pubsub_host: str,
    topic: str,
    run_dir: Path,
    check: Callable[[], None] | None = None,
) -> ReplayResult | None:
    if not args.all and args.days <= 0:
        return None
    checkpoint = _checkpoint(args, run_dir)
    if checkpoint is not None and checkpoint.finished:
        return None
    days = None if args.all else args.days
    result = replay_window(
        pubsub_host, topic, start=args.start, days=days, checkpoint=checkpoint, check=check
    )
    _report(result)
    return result


_STOP_REQUESTED = threading.Event()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Stop on SIGINT/SIGTERM. The flag survives where the exception does not: raised while the
    interpreter runs a finalizer (a gRPC channel's __del__), KeyboardInterrupt is only printed."""
    _STOP_REQUESTED.set()
    raise KeyboardInterrupt


def _check(stack: LocalStack) -> None:
    """Raise if a stop was requested or an emulator died."""
    if _STOP_REQUESTED.is_set():
        raise KeyboardInterrupt
    stack.check()


def _delivery_policy(stack: LocalStack) -> str:
    local, cloud = stack.settings, PIPELINE
    cloud_backoff = f"{cloud.retry_minimum_backoff_seconds}-{cloud.retry_maximum_backoff_seconds} s"
    backoff = (
        f"{local.retry_minimum_backoff_seconds}-{local.retry_maximum_backoff_seconds} s"
        if local.has_retry_policy
        else f"none, redelivery at once (the cloud backs off {cloud_backoff}; the emulator's retry policy "
        "stalls redeliveries for minutes, see docs/ingest.md)"
    )
    return (
        f"delivery: ack deadline {local.ack_deadline_seconds} s (the cloud's {cloud.ack_deadline_seconds} s: "
        f"the bridge's lease), retry backoff {backoff}; dead letter after {local.max_delivery_attempts} "
        f"delivery attempts (the cloud's {cloud.max_delivery_attempts})"
    )


def run(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    # Ctrl-C must stop the stack even where the parent started us with SIGINT ignored
    # (background jobs of a non-interactive shell).
    signal.signal(signal.SIGINT, _interrupt)
    config = LocalStackConfig(
        project=args.project,
        pubsub_port=args.pubsub_port,
        bigquery_port=args.bigquery_port,
        api_port=args.api_port,
        start_api=not args.no_api,
        state_dir=args.state_dir.resolve(),
    )
    try:
        with LocalStack.start(config) as stack:
            timings = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in stack.startup_seconds.items())
            print(
                f"local stack up ({timings}); logs in {stack.run_dir}; details in {stack.stack_file}",
                flush=True,
            )
            print(_delivery_policy(stack), flush=True)
            result = _replay(args, stack.pubsub_host, stack.topic_path, stack.run_dir, lambda: _check(stack))
            if result:  # the emulators start empty, so the replay is all the table will hold
                _wait_stored(stack, stack.bigquery(), result.published)
            if config.start_api:
                print(
                    f"API: {stack.api_base_url}/v1/flights  (OpenAPI: {stack.api_base_url}/schema)",
                    flush=True,
                )
                if result and _wait_served(stack):
                    print(
                        f"ready: the API serves the replayed flights; try first: "
                        f"curl -s '{stack.api_base_url}/v1/flights?limit=3'",
                        flush=True,
                    )
            print("Ctrl-C stops everything.", flush=True)
            while True:
                _check(stack)
                time.sleep(0.5)
    except KeyboardInterrupt:
        print("stopped")
        return 0
    except StackError as exc:
        print(f"local stack failed: {exc}", file=sys.stderr)
        return 1


def _distinct_events(warehouse: bigquery.Client, table_id: str) -> int | None:
    """Distinct event ids in the table, or None if the warehouse does not answer in time."""
    sql = f"SELECT COUNT(DISTINCT event_id) AS n FROM `{table_id}`"  # noqa: S608 - id from settings
    try:
        job = warehouse.query(sql, timeout=QUERY_TIMEOUT, retry=QUERY_RETRY, job_retry=None)
        # result() polls with its own 600 s default retry unless told otherwise.
        rows = job.result(timeout=QUERY_TIMEOUT, retry=QUERY_RETRY, job_retry=None)
        return int(next(iter(rows))["n"])
    except (GoogleAPIError, requests.RequestException, TimeoutError) as exc:
        print(f"  warehouse not answering ({type(exc).__name__})", flush=True)
        return None


def _wait_stored(stack: LocalStack, warehouse: bigquery.Client, expected: int) -> None:
    """Report the warehouse catching up with the replay: distinct events stored, rate, bridge state."""
    started = last_change = last_report = time.monotonic()
    stored = reported = 0
    while stored < expected:
        _check(stack)
        time.sleep(POLL_SECONDS)
        now_stored = _distinct_events(warehouse, stack.table_id)
        if now_stored is None:
            continue
        now = time.monotonic()
        if now_stored != stored:
            stored, last_change = now_stored, now
        if now - last_change > STALL_SECONDS:
            print(f"no progress for {STALL_SECONDS:.0f} s; stopped waiting (see {stack.run_dir}/bridge.log)")
            return
        if now - last_report >= REPORT_SECONDS and stored < expected:
            status = stack.bridge_status()
            print(
                f"  warehouse holds {stored:,} of {expected:,} distinct events "
                f"({(stored - reported) / (now - last_report):,.0f}/s); "
                f"bridge {status.get('state', 'starting')}, holding {status.get('held', 0):,} messages, "
                f"peak RSS {status.get('peak_rss_mib', 0):.0f} MiB",
                flush=True,
            )
            reported, last_report = stored, now
    elapsed = time.monotonic() - started
    peak = stack.bridge_status().get("peak_rss_mib", 0)
    print(
        f"warehouse caught up: {stored:,} distinct events {elapsed:.1f} s after the replay; "
        f"bridge peak RSS {peak:.0f} MiB",
        flush=True,
    )


def _wait_served(stack: LocalStack) -> bool:
    """Wait until the API's default page holds the replayed flights (False: not within SERVED_SECONDS).

    Asked with `Cache-Control: no-cache`, so the answer is the warehouse's, and the API stores it
    (and the newest-day lookup behind it) for every later reader: the first read after the ready
    line gets the real data, never an empty page cached while the stack was starting.
    """
    deadline = time.monotonic() + SERVED_SECONDS
    while time.monotonic() < deadline:
        _check(stack)
        try:
            answer = requests.get(
                f"{stack.api_base_url}/v1/flights",
                params={"limit": 1},
                headers={"Cache-Control": "no-cache"},
                timeout=QUERY_TIMEOUT,
            )
            if answer.status_code == 200 and answer.json()["items"]:
                return True
        except (requests.RequestException, ValueError):
            pass
        time.sleep(POLL_SECONDS)
    print(f"the API served no replayed flight in {SERVED_SECONDS:.0f} s; see {stack.run_dir}/api.log")
    return False


def replay_into_running(args: argparse.Namespace) -> int:
    try:
        described = read_stack_file(args.state_dir / STACK_FILE.name)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    _replay(args, described["pubsub_emulator_host"], described["topic"], Path(described["run_dir"]))
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        args = _parser().parse_args(argv)
    except ConfigError as exc:  # a malformed PUBSUB_PORT, API_PORT, REPLAY_DAYS...
        print(f"python -m app.local: {exc}", file=sys.stderr)
        return 2
    return run(args) if args.command == "run" else replay_into_running(args)


if __name__ == "__main__":
    sys.exit(main())
