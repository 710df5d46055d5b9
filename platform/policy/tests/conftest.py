"""Make the pack's modules importable and render the stacks' plans with the main environment.

The policy environment has no pulumi-gcp, so the plans come from `python -m
airline_platform.plan` run with .venv (the same code as `make plan`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PACK_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = PACK_DIR.parents[1]
sys.path.insert(0, str(PACK_DIR))

STACKS = ("dev", "staging", "prod")


@pytest.fixture(scope="session")
def plans() -> dict[str, list[dict[str, Any]]]:
    subprocess.run(  # noqa: S603 - fixed command, no user input
        [str(REPO_ROOT / ".venv" / "bin" / "python"), "-m", "airline_platform.plan", *STACKS],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": "platform"},
        check=True,
        capture_output=True,
    )
    return {stack: json.loads((REPO_ROOT / "plans" / f"{stack}.json").read_text()) for stack in STACKS}
