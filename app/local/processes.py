"""Child processes of the local stack: started in their own process group, stopped as a group.

Each child gets its own session (so a terminal's Ctrl-C reaches only the runner, which then
stops the children in order) and, on Linux, PR_SET_PDEATHSIG=SIGKILL so the kernel kills it
if the runner dies without cleaning up (e.g. SIGKILL). The Pub/Sub emulator's launcher script
`exec`s Java, so the death signal and the process group carry over to the JVM. The kernel
sends the death signal when the *thread* that spawned the child exits, so children are spawned
from long-lived threads only (the main thread and the stack's supervisor).

The death signal is set by a tiny launcher that then `exec`s the real command (same pid), not
by a `preexec_fn`: a `preexec_fn` forces a plain fork(), and in a process that has used gRPC,
gRPC's fork handlers aborted about 1 in 20 such forks (SIGABRT, "epoll_wait error: Bad file
descriptor"; measured). Without one, subprocess uses vfork and no fork handler runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_EMULATOR_RELATIVE = Path("platform/pubsub-emulator/bin/cloud-pubsub-emulator")
# argv: <runner pid> <command...>. Exits at once if the runner is already gone (the signal
# would never come), else asks for SIGKILL on the runner's death and becomes the command.
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    f"ctypes.CDLL(None, use_errno=True).prctl({_PR_SET_PDEATHSIG}, signal.SIGKILL)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(1)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


class StackError(RuntimeError):
    """A component of the local stack could not be started or died."""


def _dying_with_parent(argv: Sequence[str]) -> list[str]:
    """argv wrapped so that the process gets SIGKILL when its parent dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return list(argv)
    return [sys.executable, "-I", "-S", "-c", _DIE_WITH_PARENT, str(os.getpid()), *argv]


class Child:
    """One child process with its log file; `stop()` takes down its whole process group."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stop_timeout: float = 5.0,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self.stop_timeout = stop_timeout
        self._spawn_args = (list(argv), dict(env) if env is not None else None, cwd)
        self.started_at = time.monotonic()
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - argv built by the runner, no shell
                _dying_with_parent(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def respawn(self) -> Child:
        """A new process with the same command, environment and log file (appended)."""
        argv, env, cwd = self._spawn_args
        return Child(self.name, argv, self.log_path, env=env, cwd=cwd, stop_timeout=self.stop_timeout)

    def exited(self) -> int | None:
        """The exit code if the child has ended, else None."""
        return self.process.poll()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM the process group, then SIGKILL it if it is still there after `timeout`."""
        timeout = self.stop_timeout if timeout is None else timeout
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=timeout)
                # The leader is gone; make sure nothing else of its group lingers.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                return
            except subprocess.TimeoutExpired:
                continue
        self.process.wait(timeout=timeout)

    def wait_ready(self, probe: Callable[[], bool], timeout: float) -> float:
        """Poll `probe` until it is true; fail with the log tail if the child dies or time runs out."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            code = self.exited()
            if code is not None:
                raise StackError(f"{self.name} exited with code {code} during start-up:\n{self.log_tail()}")
            if probe():
                return time.monotonic() - started
            time.sleep(0.05)
        raise StackError(f"{self.name} was not ready after {timeout:.0f} s:\n{self.log_tail()}")


def pubsub_emulator_binary() -> Path:
    """Google's Pub/Sub emulator launcher: $PUBSUB_EMULATOR_BIN, the gcloud SDK, or known paths."""
    candidates: list[Path] = []
    if explicit := os.environ.get("PUBSUB_EMULATOR_BIN"):
        candidates.append(Path(explicit))
    roots = [
        Path("/usr/lib/google-cloud-sdk"),
        Path("/usr/share/google-cloud-sdk"),
        Path.home() / "google-cloud-sdk",
    ]
    if gcloud := shutil.which("gcloud"):
        roots.insert(0, Path(gcloud).resolve().parent.parent)
    candidates += [root / _EMULATOR_RELATIVE for root in roots]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise StackError(
        "Google's Pub/Sub emulator was not found (looked at: "
        + ", ".join(str(c) for c in candidates)
        + "). Install it with `gcloud components install pubsub-emulator` or the "
        "`google-cloud-cli-pubsub-emulator` package, or set PUBSUB_EMULATOR_BIN. It needs Java 11+."
    )


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - local http URL built by the runner
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def free_port() -> int:
    """A port the OS reports free right now (good enough for test runs)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
