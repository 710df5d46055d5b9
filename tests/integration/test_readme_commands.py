"""Every command in the README's shell blocks that needs no cloud runs as written, against a local stack.

A newcomer pastes them after `make run`; here they run against this session's stack instead: its
URL stands in for http://127.0.0.1:8000, and STATE_DIR (which the Makefile's local-stack targets
read) points at its stack.json. Left out: `make run` (what the stack stands in for), `make test`
and `make check` (the lanes that run this test), and every command that needs a cloud project
(gcloud, pulumi, an https:// URL).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
LOCAL_URL = "http://127.0.0.1:8000"
BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)
NOT_HERE = re.compile(r"^make (run|test|check)\b")
NEEDS_CLOUD = re.compile(r"\bgcloud\b|\bpulumi\b|https://")


def commands(markdown: str) -> list[str]:
    """The commands of the bash blocks, continuation lines joined."""
    found = []
    for block in BASH_BLOCK.findall(markdown):
        for command in block.replace("\\\n", " ").splitlines():
            if command.strip() and not command.lstrip().startswith("#"):
                found.append(command.strip())
    return found


def runnable(markdown: str) -> list[str]:
    return [c for c in commands(markdown) if not NOT_HERE.match(c) and not NEEDS_CLOUD.search(c)]


def test_the_commands_are_found_and_the_cloud_ones_left_out() -> None:
    sample = "```bash\nmake run   # x\ncurl -s a \\\n  b\n# note\ngcloud x\n```\n```python\nx\n```\n"
    assert commands(sample) == ["make run   # x", "curl -s a    b", "gcloud x"]
    assert runnable(sample) == ["curl -s a    b"]


def _problem(output: str) -> bool:
    """True for an RFC 9457 problem document: the API refused the request."""
    try:
        document = json.loads(output)
    except ValueError:
        return False
    return (
        isinstance(document, dict) and isinstance(document.get("status"), int) and document["status"] >= 400
    )


@pytest.mark.parametrize("command", runnable(README.read_text()))
def test_readme_command_runs_as_written(local_stack, command: str) -> None:
    # Not the outer make's jobserver or flags: the command runs as it would from a shell.
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    env["STATE_DIR"] = str(local_stack.stack_file.parent)
    result = subprocess.run(  # noqa: S603 - the README's own commands
        ["/bin/bash", "-euo", "pipefail", "-c", command.replace(LOCAL_URL, local_stack.api_base_url)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    assert result.stdout.strip(), f"{command} printed nothing"
    assert not _problem(result.stdout), f"{command} was refused: {result.stdout}"
    if command.startswith("make docs"):
        with urllib.request.urlopen(result.stdout.strip(), timeout=10) as page:  # noqa: S310 - the stack's URL
            assert page.status == 200
