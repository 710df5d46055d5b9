"""The table `make bench` prints and the JSON it writes (bench/results/latest.json)."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.figures import Figure, Target
from bench.runtime_env import REPO_ROOT


def machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    memory_kib = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        memory_kib = int(meminfo.read_text().split()[1])
    return {
        "hostname": platform.node(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_kib / 2**20, 1),
        "load_average": list(os.getloadavg()),
    }


def commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(  # noqa: S603 - fixed argv
            ["git", *args],  # noqa: S607 - git from PATH, as the developer runs it
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()

    return {
        "sha": git("rev-parse", "HEAD"),
        "subject": git("log", "-1", "--format=%s"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def _num(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def figures_table(figures: Sequence[Figure]) -> str:
    header = ("figure", "value", "p50 ms", "p99 ms", "ceiling", "ceil p50", "ceil p99", "ratio")
    rows = [header]
    for f in figures:
        digits = 2 if f.unit in ("s", "MB", "MiB", "$") else 0
        rows.append(
            (
                f.name,
                f"{_num(f.value, digits)} {f.unit}",
                _num(f.p50_ms, 1),
                _num(f.p99_ms, 1),
                _num(f.ceiling, digits),
                _num(f.ceiling_p50_ms, 1),
                _num(f.ceiling_p99_ms, 1),
                _num(f.ratio, 2),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [
        f"  {f.name}: {f.note}" + (f" (vs {f.ceiling_name})" if f.ceiling_name else "")
        for f in figures
        if f.note
    ]
    return "\n".join([*lines, "", "notes:", *notes])


def targets_table(targets: Sequence[Target]) -> str:
    width = max(len(t.name) for t in targets)
    return "\n".join(f"{t.name.ljust(width)}  {t.goal:>10}  {t.verdict:>12}  {t.reason}" for t in targets)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)

    def clean(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    path.write_text(json.dumps(clean(payload), indent=2) + "\n")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
