"""Start-up (process start to the first 200 on /health) and the size of what the image installs."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from app.local.processes import free_port
from bench.ceiling import save_response
from bench.figures import MB, median
from bench.processes import serve
from bench.runtime_env import REPO_ROOT, installed_bytes

IMAGE_TAG = "airline-data-platform:bench"


@dataclass
class Startup:
    api_seconds: list[float]
    ceiling_seconds: list[float]
    api_idle_rss_mib: float

    @property
    def api_median(self) -> float:
        return median(self.api_seconds)

    @property
    def ceiling_median(self) -> float:
        return median(self.ceiling_seconds)


def measure_startup(runtime_python: Path, work_dir: Path, repeats: int = 5) -> Startup:
    """`python -m app.api` from the runtime venv, as the image's CMD, next to the bare ceiling's start.

    The API needs no backend to answer /health (its clients are created on first use), which is
    what Cloud Run's start-up probe asks of a new instance.
    """
    responses = work_dir / "startup-ceiling"
    save_response(responses, "health", 200, {"content-type": "application/json"}, b'{"status":"ok"}')
    api_seconds, ceiling_seconds, rss = [], [], []
    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO_ROOT)}
    for _ in range(repeats):
        port = free_port()
        env = base_env | {"APP_PROJECT_ID": "bench-startup", "HOST": "127.0.0.1", "PORT": str(port)}
        with serve("startup-api", [str(runtime_python), "-m", "app.api"], port, env, work_dir) as api:
            api_seconds.append(api.ready_seconds)
            rss.append(api.rss_mib())
        port = free_port()
        argv = [str(runtime_python), "-m", "bench.ceiling", "127.0.0.1", str(port)]
        env = base_env | {"BENCH_CEILING_RESPONSES": str(responses)}
        with serve("startup-ceiling", argv, port, env, work_dir, ready_path="/health") as ceiling:
            ceiling_seconds.append(ceiling.ready_seconds)
    return Startup(api_seconds, ceiling_seconds, median(rss))


@dataclass
class ImageSize:
    installed_mb: float
    image_mb: float | None
    how: str


def measure_image(venv: Path, build: bool) -> ImageSize:
    """The runtime's installed size; with `build`, also the image built by docker or podman."""
    installed = installed_bytes(venv) / MB
    if not build:
        return ImageSize(
            installed, None, "installed size of requirements/runtime.txt (set BENCH_IMAGE=1 to build)"
        )
    tool = shutil.which("docker") or shutil.which("podman")
    if not tool:
        return ImageSize(installed, None, "BENCH_IMAGE=1 but neither docker nor podman is installed")
    build_args = [f"--build-arg={arg}" for arg in os.environ.get("BENCH_IMAGE_BUILD_ARGS", "").split() if arg]
    try:
        subprocess.run(  # noqa: S603 - fixed argv
            [tool, "build", "-q", "-t", IMAGE_TAG, *build_args, str(REPO_ROOT)],
            check=True,
            capture_output=True,
            timeout=900,
        )
        size = subprocess.run(  # noqa: S603
            [tool, "image", "inspect", "--format", "{{.Size}}", IMAGE_TAG],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        return ImageSize(installed, None, f"image build with {Path(tool).name} failed: {exc}")
    return ImageSize(installed, int(size.strip()) / MB, f"image built with {Path(tool).name}")
