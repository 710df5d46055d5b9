"""`python -m app.local run` leaves no emulator, Java or API process behind, however it ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.local.processes import free_port

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict, Path]]:
    """A runner with a one-day replay on free ports; yields it once stack.json is written."""
    state = tmp_path / "state"
    ports = [str(free_port()) for _ in range(3)]
    argv = [sys.executable, "-m", "app.local", "run", "--days", "1", "--state-dir", str(state)]
    argv += ["--pubsub-port", ports[0], "--bigquery-port", ports[1], "--api-port", ports[2]]
    with (tmp_path / "runner.log").open("wb") as log:
        # Started as a shell starts a background job: with SIGINT ignored, which Ctrl-C must override.
        process = subprocess.Popen(  # noqa: S603
            argv,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
    stack_file = state / "stack.json"
    try:
        assert wait_for(stack_file.exists, 60), (tmp_path / "runner.log").read_text()
        described = json.loads(stack_file.read_text())
        yield process, described, stack_file
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def children(described: dict) -> dict[str, int]:
    pids = {name: pid for name, pid in described["pids"].items() if name != "runner"}
    assert set(pids) == {"pubsub-emulator", "bqemulator", "api"}
    assert all(alive(pid) for pid in pids.values())
    return pids


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_stop_signal_stops_every_child(runner, stop):
    process, described, stack_file = runner
    pids = children(described)
    process.send_signal(stop)
    process.wait(timeout=30)
    assert not [name for name, pid in pids.items() if alive(pid)]
    assert not stack_file.exists()


def test_a_crashed_child_takes_the_stack_down(runner):
    process, described, stack_file = runner
    pids = children(described)
    os.kill(pids["bqemulator"], signal.SIGKILL)
    assert process.wait(timeout=30) == 1
    assert not [name for name, pid in pids.items() if alive(pid)]
    assert not stack_file.exists()


def test_children_die_with_a_killed_runner(runner):
    """SIGKILL gives the runner no chance to clean up: PR_SET_PDEATHSIG does it."""
    process, described, _ = runner
    pids = children(described)
    process.kill()
    process.wait(timeout=10)
    assert wait_for(lambda: not any(alive(pid) for pid in pids.values()), 10)
