"""A local stack's `.local/stack.json`, and the atomic JSON write every state file of the stack uses.

The runner writes `stack.json` (`app/local/stack.py`, `LocalStack.describe()`) so that the tools
that attach to a running stack, the bridge by hand, the dead-letter command, another replay,
read where everything runs from one place. A file that is replaced while another process reads
it (stack.json after a restart, the bridge's status each second, a replay's checkpoint) is
written next to itself and renamed over the old one: readers never see half a document.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from app.contract.service_env import ConfigError

STACK_FILE = Path(".local/stack.json")


def read_stack_file(path: Path) -> dict[str, Any]:
    """What a running local stack wrote about itself; ConfigError, saying how to start one, if none runs."""
    try:
        described = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"no local stack runs ({path} not found): start one with `make run`") from None
    except ValueError as exc:
        raise ConfigError(f"{path} is not a stack description: {exc}") from None
    if not isinstance(described, dict):
        raise ConfigError(f"{path} is not a stack description")
    return described


def write_json_atomically(path: Path, document: object, *, indent: int | None = 2) -> None:
    """Replace `path` with `document` as JSON in one rename (same directory, so the same filesystem)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(document, indent=indent) + "\n")
    tmp.replace(path)
