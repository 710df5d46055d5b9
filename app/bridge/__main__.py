"""`python -m app.bridge`: drain the warehouse subscription into the table until SIGTERM.

Configured from the environment (what the local runner sets, see `BridgeConfig.env()`), or
from `.local/stack.json` to attach to a running local stack by hand. SIGTERM or Ctrl-C drains
(in-flight batches are written, then the rest is handed back to Pub/Sub) and exits 0. With
BRIDGE_STATUS_FILE set it writes its counters and the table's state there every second.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from app.bridge.config import BridgeConfig
from app.bridge.worker import Bridge
from app.contract.service_env import ConfigError
from app.contract.stack_file import STACK_FILE, write_json_atomically

STATUS_INTERVAL_SECONDS = 1.0


def peak_rss_mib() -> float:
    """This process's peak resident set size so far: how the runner shows memory stays flat."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def write_status(path: Path, bridge: Bridge, *, running: bool) -> None:
    """Atomically replace the status file: readers never see half a document."""
    status = bridge.stats.snapshot() | {"pid": os.getpid(), "running": running, "held": bridge.held()}
    status["peak_rss_mib"] = peak_rss_mib()
    status["updated_at"] = time.time()
    write_json_atomically(path, status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.bridge", description=__doc__)
    parser.add_argument(
        "--stack-file",
        type=Path,
        default=STACK_FILE,
        help="read the subscription and table from this stack.json when BRIDGE_SUBSCRIPTION is unset",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The client libraries log their retries and connection details at INFO; keep ours readable.
    logging.getLogger("google").setLevel(logging.WARNING)
    try:
        config = BridgeConfig.load(args.stack_file)
    except ConfigError as exc:
        print(f"bridge: {exc}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    bridge = config.build()
    print(
        f"bridge pid {os.getpid()}: {config.subscription} -> {config.table} "
        f"({config.pullers} pullers, messages held through warehouse outages, "
        f"drain {config.drain_seconds} s on SIGTERM)",
        flush=True,
    )
    bridge.start()
    while not stop.wait(STATUS_INTERVAL_SECONDS):
        if config.status_file:
            write_status(config.status_file, bridge, running=True)
    logging.getLogger(__name__).info("stopping: draining %d held messages", bridge.held())
    bridge.stop(drain_seconds=config.drain_seconds)
    if config.status_file:
        write_status(config.status_file, bridge, running=False)
    stats = bridge.stats
    print(
        f"bridge stopped: stored {stats.stored:,} rows, "
        f"nacked {stats.not_fitting + stats.refused:,} that do not fit, "
        f"handed back {stats.released:,} unstored",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
