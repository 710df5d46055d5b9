"""The runtime environment the image ships, built on this machine from the same inputs.

The API's speed, start-up and memory depend on which libraries are installed (uvicorn picks
uvloop and httptools when present, and the development environment has both, the image does
not), so the harness measures the service in a venv made exactly as the Dockerfile's builder
stage makes /opt/venv: requirements/runtime.txt, hash-checked, no resolver, bytecode compiled,
then requirements/prune-runtime.sh.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RUNTIME_REQUIREMENTS = REPO_ROOT / "requirements" / "runtime.txt"
PRUNE_SCRIPT = REPO_ROOT / "requirements" / "prune-runtime.sh"


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in (RUNTIME_REQUIREMENTS, PRUNE_SCRIPT):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _uv() -> str:
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.exists() else shutil.which("uv")
    if not found:
        raise RuntimeError("uv is not installed: run `make install` first")
    return found


def build_runtime_venv(venv: Path) -> Path:
    """Create (or reuse, when its inputs are unchanged) the runtime venv; its python executable."""
    python = venv / "bin" / "python"
    marker = venv / ".runtime-fingerprint"
    fingerprint = _fingerprint()
    if python.exists() and marker.exists() and marker.read_text() == fingerprint:
        return python
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)  # noqa: S603
    subprocess.run(  # noqa: S603 - fixed argv
        [
            _uv(),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            "--require-hashes",
            "--no-deps",
            "--compile-bytecode",
            "-r",
            str(RUNTIME_REQUIREMENTS),
        ],
        check=True,
    )
    subprocess.run(["sh", str(PRUNE_SCRIPT), str(venv)], check=True)  # noqa: S603, S607
    marker.write_text(fingerprint)
    return python


def installed_bytes(venv: Path) -> int:
    """Bytes on disk of everything the runtime installed (site-packages, bytecode included)."""
    return sum(p.stat().st_size for p in venv.glob("lib/python3*/site-packages/**/*") if p.is_file())
