"""Servers the harness starts (the API, the bare-ASGI ceiling) and what it reads from /proc about them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.runtime_env import REPO_ROOT


@dataclass
class Server:
    """A server process started by the harness, and how long it took to answer its first 200."""

    name: str
    process: subprocess.Popen[bytes]
    base_url: str
    ready_seconds: float
    log_path: Path  # its stdout and stderr

    def log_bytes(self) -> int:
        return self.log_path.stat().st_size

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mib(self) -> float:
        return rss_mib(self.pid)

    def peak_rss_mib(self) -> float:
        return peak_rss_mib(self.pid)


def _status_kib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return float(line.split()[1])
    return float("nan")


def rss_mib(pid: int) -> float:
    """Resident set size now (Linux /proc), MiB."""
    return _status_kib(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    """Peak resident set size of the process so far (VmHWM), MiB."""
    return _status_kib(pid, "VmHWM") / 1024


def http_status(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback URL built here
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


@contextlib.contextmanager
def serve(
    name: str,
    argv: list[str],
    port: int,
    env: Mapping[str, str],
    log_dir: Path,
    ready_path: str = "/health",
    timeout: float = 60.0,
) -> Iterator[Server]:
    """Start a server, wait for its first 200 on `ready_path` (polled every 5 ms), stop it on exit."""
    base_url = f"http://127.0.0.1:{port}"
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - argv built by the harness
            argv, cwd=REPO_ROOT, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        while http_status(base_url + ready_path, timeout=0.5) != 200:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {log_path}")
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"{name} did not answer {ready_path} within {timeout:.0f} s")
            time.sleep(0.005)
        yield Server(name, process, base_url, time.monotonic() - started, log_path)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
