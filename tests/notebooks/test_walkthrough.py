"""The walkthrough notebook: it runs headless, shows what it says it shows, and leaves nothing running.

The executed test runs the notebook in its fast mode in a fresh kernel, with its own local stack
on free ports (about 40 s), then reads the summary the last cell displays and checks it against
what each step claims. The stored copy is checked too: it must carry a full run's outputs and
plots, and no path that exists only on the machine that ran it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest

from notebooks.execute import WALKTHROUGH, execute

PLOTS = 4  # ingest throughput, request latency, time and memory per call, process memory
MALFORMED = 8  # the kinds of malformed message step 4 publishes
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:home|root|work|tmp|Users|var/folders)/")


def _outputs(notebook: nbformat.NotebookNode) -> Iterator[tuple[nbformat.NotebookNode, dict[str, Any]]]:
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            yield cell, output


def _summary(notebook: nbformat.NotebookNode) -> dict[str, Any]:
    for cell, output in _outputs(notebook):
        if "summary" in cell.metadata.get("tags", []) and "application/json" in output.get("data", {}):
            return dict(output["data"]["application/json"])
    raise AssertionError("no summary output: the last cells did not run")


def _plots(notebook: nbformat.NotebookNode) -> int:
    return sum("image/png" in output.get("data", {}) for _, output in _outputs(notebook))


def _processes_in(directory: Path) -> list[psutil.Process]:
    """Processes whose working directory is under `directory` (the stack runs its children there)."""
    found = []
    for process in psutil.process_iter(["cwd"]):
        cwd = process.info.get("cwd")
        if cwd and Path(cwd).is_relative_to(directory):
            found.append(process)
    return found


@pytest.mark.integration
def test_fast_run_shows_each_step_and_stops_its_stack(tmp_path: Path) -> None:
    env = os.environ | {"WALKTHROUGH_FAST": "1", "WALKTHROUGH_STATE_DIR": str(tmp_path)}
    try:
        notebook = execute(env=env, cell_timeout=240)
    finally:
        leftovers = _processes_in(tmp_path)
        for process in leftovers:
            process.kill()
    assert not leftovers, f"left running: {[p.info for p in leftovers]}"

    summary = _summary(notebook)
    assert summary["mode"] == "fast"
    replay = summary["replay"]
    assert replay["published"] > 500  # one day of January 2013: 842 flights
    assert replay["distinct_events_in_table"] == replay["published"], "every replayed flight is stored once"

    api = summary["api"]
    pagination = api["pagination"]
    assert pagination["pages"] > 1
    assert pagination["events"] == pagination["warehouse_count"] > 0, "the API serves what the table holds"
    assert pagination["ordered_unique"]
    assert api["lookup_status"] == 200
    assert api["problem"] == {
        "status": 400,
        "content_type": "application/problem+json",
        "keys": ["carrier", "limit"],
    }
    assert [c["status"] for c in api["cache"]] == [200, 200, 304]
    assert "fwd=miss" in api["cache"][0]["cache_status"]
    assert "hit" in api["cache"][1]["cache_status"]
    assert api["cache"][2]["body_bytes"] == 0
    assert all(series["requests"] > 0 for series in api["latency_ms"].values())

    dead = summary["dead_letters"]
    assert len(dead["published"]) == MALFORMED
    assert sorted(dead["arrived"]) == dead["published"], (
        "every malformed message reached the dead-letter topic"
    )
    assert all(dead["arrived"].values()), "each with the reason it does not fit"
    assert dead["arrived"]["field without a column"] == "fields without a column: gate"
    assert dead["listed_by_command"] == MALFORMED
    assert dead["contract_breach"]["status"] == 404
    assert "breaks the event contract" in dead["contract_breach"]["detail"]

    plans = summary["plans"]
    assert plans["stacks"] == ["dev", "staging", "prod"]
    assert all(count > 50 for count in plans["resources"].values())
    assert plans["infrastructure_differences"] > 0

    measured = summary["measurements"]
    assert {"decode_event", "RowMapper.to_row", "list_statement", "list_flights (page of 50)"} <= set(
        measured
    )
    assert all(m["best_seconds"] > 0 and m["peak_kib"] > 0 for m in measured.values())
    assert all(rss["peak"] > 0 for rss in summary["rss_mib"].values())
    assert summary["stopped"]["still_running"] == []
    assert _plots(notebook) == PLOTS


def test_stored_copy_carries_a_full_run() -> None:
    notebook = nbformat.read(WALKTHROUGH, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), "run top to bottom once"
    assert not [o for _, o in _outputs(notebook) if o["output_type"] == "error"]
    assert _summary(notebook)["mode"] == "full"
    assert _plots(notebook) == PLOTS
    text = nbformat.writes(notebook)
    assert not MACHINE_PATH.findall(text), "outputs name paths of the machine that ran them"
