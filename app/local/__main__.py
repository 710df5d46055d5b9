"""`python -m app.local run`: start the local stack, replay flights, serve until Ctrl-C.

`python -m app.local replay` publishes more flights into a stack that is already running
(it reads `.local/stack.json`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from datetime import date
from pathlib import Path
from types import FrameType

from app.bridge import Bridge
from app.local.processes import StackError
from app.local.replay import FIRST_DAY, ReplayResult, replay_window
from app.local.stack import LocalStack, StackConfig

DEFAULT_DAYS = 3


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start emulators, bridge and API, replay flights, wait for Ctrl-C")
    run.add_argument("--project", default=os.environ.get("LOCAL_PROJECT", "local-project"))
    run.add_argument("--pubsub-port", type=int, default=_env_int("PUBSUB_PORT", 8085))
    run.add_argument("--bigquery-port", type=int, default=_env_int("BIGQUERY_PORT", 9050))
    run.add_argument("--api-port", type=int, default=_env_int("API_PORT", 8000))
    run.add_argument("--no-api", action="store_true", help="do not start the API")
    for sub in (run, commands.add_parser("replay", help="replay more flights into the running stack")):
        sub.add_argument(
            "--state-dir", type=Path, default=StackConfig.state_dir, help="stack.json and logs (.local)"
        )
        sub.add_argument(
            "--start", type=date.fromisoformat, default=FIRST_DAY, help="first flight date (2013-01-01)"
        )
        window = sub.add_mutually_exclusive_group()
        window.add_argument(
            "--days",
            type=int,
            default=_env_int("REPLAY_DAYS", DEFAULT_DAYS),
            help="days to replay (env REPLAY_DAYS, default 3; 0 for none)",
        )
        window.add_argument("--all", action="store_true", help="replay all 336,776 flights of 2013")
    return parser


def _report(result: ReplayResult) -> None:
    print(f"replayed {result.published:,} events in {result.seconds:.1f} s ({result.rate:,.0f} msgs/s)")
    for reason, count in result.invalid.most_common():
        print(f"  skipped {count:,} rows that are not valid events: {reason}")


def _replay(args: argparse.Namespace, pubsub_host: str, topic: str) -> ReplayResult | None:
    if not args.all and args.days <= 0:
        return None
    result = replay_window(pubsub_host, topic, start=args.start, days=None if args.all else args.days)
    _report(result)
    return result


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    # Ctrl-C must stop the stack even where the parent started us with SIGINT ignored
    # (background jobs of a non-interactive shell).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    config = StackConfig(
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
            result = _replay(args, stack.pubsub_host, stack.topic_path)
            if result and stack.bridge:
                _wait_stored(stack, stack.bridge, result.published)
            if config.start_api:
                print(
                    f"API: {stack.api_base_url}/v1/flights  (OpenAPI: {stack.api_base_url}/schema)",
                    flush=True,
                )
            print("Ctrl-C stops everything.", flush=True)
            while True:
                stack.check()
                time.sleep(0.5)
    except KeyboardInterrupt:
        print("stopped")
        return 0
    except StackError as exc:
        print(f"local stack failed: {exc}", file=sys.stderr)
        return 1


def _wait_stored(stack: LocalStack, bridge: Bridge, expected: int, timeout: float = 600.0) -> None:
    """Tell the user when the bridge has written the replayed events (and how fast)."""
    deadline = time.monotonic() + timeout
    while bridge.stats.stored < expected and time.monotonic() < deadline:
        stack.check()
        time.sleep(0.2)
    stats = bridge.stats
    print(
        f"bridge stored {stats.stored:,} rows ({stats.rows_per_second():,.0f} rows/s) into {stack.table_id}",
        flush=True,
    )


def replay_into_running(args: argparse.Namespace) -> int:
    stack_file = args.state_dir / "stack.json"
    try:
        described = json.loads(stack_file.read_text())
    except FileNotFoundError:
        print(
            f"no running stack ({stack_file} missing): start one with `python -m app.local run`",
            file=sys.stderr,
        )
        return 1
    _replay(args, described["pubsub_emulator_host"], described["topic"])
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    return run(args) if args.command == "run" else replay_into_running(args)


if __name__ == "__main__":
    sys.exit(main())
