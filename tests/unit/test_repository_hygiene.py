"""What the repository must never hold: secrets, or unpinned / index-bound requirements."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# A notebook's stored plot: a whole line of base64 PNG, high in entropy and never a secret. Only such
# lines are skipped; every other line of a notebook, its text outputs included, is still scanned.
NOTEBOOK_PNG_LINE = r'^\s*"image/png": "[A-Za-z0-9+/]+={0,2}(\\n)?",?$'


def tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z"],  # noqa: S607 - git from PATH
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return [name for name in out.decode().split("\0") if name and (REPO_ROOT / name).is_file()]


def test_no_secrets_in_tracked_files() -> None:
    scanner = Path(sys.executable).with_name("detect-secrets")
    result = subprocess.run(  # noqa: S603 - fixed argv over our own files
        [str(scanner), "scan", "--exclude-lines", NOTEBOOK_PNG_LINE, *tracked_files()],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    findings = json.loads(result.stdout)["results"]
    assert findings == {}, json.dumps(findings, indent=2)


def test_requirement_exports_are_hash_pinned_without_index_urls() -> None:
    exports = sorted((REPO_ROOT / "requirements").glob("*.txt"))
    assert {p.name for p in exports} >= {"bootstrap.txt", "dev.txt", "policy.txt", "runtime.txt"}
    for path in exports:
        text = path.read_text()
        assert not re.search(r"^\s*--(extra-)?index-url|^\s*--find-links", text, re.MULTILINE), path
        pins = re.findall(
            r"^([A-Za-z0-9._-]+)==\S+ \\\n(?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+", text, re.M
        )
        requirements = re.findall(r"^[A-Za-z0-9._-]+", text, re.MULTILINE)
        assert requirements, path
        assert len(pins) == len(requirements), f"{path}: every requirement needs == and hashes"
