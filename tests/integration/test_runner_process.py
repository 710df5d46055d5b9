"""`python -m app.local run` leaves no emulator, Java, API or bridge process behind, however it ends.

The bridge and the API are restarted when they die (new pid in stack.json, the rest untouched);
an emulator's death stops the stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
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
    # Started as a shell starts a background job: with SIGINT ignored, which Ctrl-C must override.
    # The shell ignores it and execs the runner; a preexec_fn would force a fork() that gRPC's fork
    # handlers sometimes abort in this gRPC-using process (see app/local/processes.py).
    background = ["/bin/sh", "-c", "trap '' INT; exec \"$@\"", "sh", *argv]
    with (tmp_path / "runner.log").open("wb") as log:
        process = subprocess.Popen(background, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
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
    assert set(pids) == {"pubsub-emulator", "bqemulator", "api", "bridge"}
    assert all(alive(pid) for pid in pids.values())
    return pids


def restarted(stack_file: Path, name: str, old_pid: int, timeout: float = 30) -> dict[str, int]:
    """Wait until stack.json names a new, live pid for `name`; return the children then."""

    def new_pid() -> bool:
        try:
            pid = json.loads(stack_file.read_text())["pids"][name]
        except (OSError, ValueError):
            return False
        return pid != old_pid and alive(pid)

    assert wait_for(new_pid, timeout), f"{name} was not restarted"
    return children(json.loads(stack_file.read_text()))


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_stop_signal_stops_every_child(runner, stop):
    process, described, stack_file = runner
    pids = children(described)
    process.send_signal(stop)
    process.wait(timeout=30)
    assert not [name for name, pid in pids.items() if alive(pid)]
    assert not stack_file.exists()


@pytest.mark.parametrize("emulator", ["bqemulator", "pubsub-emulator"])
def test_a_crashed_emulator_takes_the_stack_down(runner, emulator):
    """An emulator holds the data in memory: restarting it would serve an empty stack silently."""
    process, described, stack_file = runner
    pids = children(described)
    os.kill(pids[emulator], signal.SIGKILL)
    assert process.wait(timeout=30) == 1
    assert not [name for name, pid in pids.items() if alive(pid)]
    assert not stack_file.exists()


@pytest.mark.parametrize("name", ["bridge", "api"])
def test_a_crashed_bridge_or_api_is_restarted_and_the_rest_keeps_running(runner, name):
    process, described, stack_file = runner
    before = children(described)
    os.kill(before[name], signal.SIGKILL)
    after = restarted(stack_file, name, before[name])
    assert {k: v for k, v in after.items() if k != name} == {k: v for k, v in before.items() if k != name}
    assert process.poll() is None, "the runner keeps serving"
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=40)
    assert not [pid for pid in {**before, **after}.values() if alive(pid)]
    assert not stack_file.exists()


def test_children_die_with_a_killed_runner(runner):
    """SIGKILL gives the runner no chance to clean up: PR_SET_PDEATHSIG does it, restarted bridge included."""
    process, described, stack_file = runner
    before = children(described)
    os.kill(before["bridge"], signal.SIGKILL)
    pids = restarted(stack_file, "bridge", before["bridge"])
    process.kill()
    process.wait(timeout=10)
    assert wait_for(lambda: not any(alive(pid) for pid in pids.values()), 10)


def test_the_first_read_after_the_ready_line_gets_the_replayed_flights(runner, tmp_path: Path):
    """Issue 20: reads polled while the stack starts (503s, then empty pages) must not be cached as the
    truth: after the runner's ready line, the first read of the suggested URL has the flights."""
    process, described, _ = runner
    log = tmp_path / "runner.log"
    seen: list[int] = []
    with httpx.Client(base_url=described["api_base_url"], timeout=10) as client:
        deadline = time.monotonic() + 240
        while "ready: " not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(httpx.TransportError):
                seen.append(client.get("/v1/flights", params={"limit": 3}).status_code)
            time.sleep(0.5)
        ready = next(line for line in log.read_text().splitlines() if line.startswith("ready: "))
        assert "curl -s '" in ready, ready
        first = client.get("/v1/flights", params={"limit": 3})
    assert seen, "nothing was polled before the ready line"
    assert first.status_code == 200, first.text
    assert len(first.json()["items"]) == 3, first.text
    assert all(item["event_time"].startswith("2013-01-0") for item in first.json()["items"])
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=40)
