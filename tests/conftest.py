"""Session-wide fixtures shared by the test suites, and the order `make test` hands them to workers.

`make test` runs pytest on several pytest-xdist workers, one test file at a time per worker
(`--dist loadfile`): most of the suite's time is spent waiting for emulators, bridges and runners,
not on the CPU, and a file's module fixtures are then set up once. A worker keeps its
`local_stack` for every file it runs. The files that start processes are handed out first, the
slowest first, so that they do not end the run alone while the other workers idle.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from app.local import LocalStack

# Slowest first: the notebook's own stack and replay, the runner's six stacks, then the other tests
# that start processes; everything else after them, in collection order.
FIRST = (
    "tests/notebooks/",
    "tests/integration/test_runner_process.py",
    "tests/fuzz/",
    "tests/integration/",
    "tests/e2e/",
)
SUMMARY = "summary"


def _rank(item: pytest.Item) -> int:
    return next((n for n, prefix in enumerate(FIRST) if item.nodeid.startswith(prefix)), len(FIRST))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: each file keeps its own order


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what tests recorded with `record_property("summary", line)`, pass or fail.

    Reports carry their properties from xdist's workers, where a test's own output is lost.
    """
    lines = [
        value
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        for name, value in getattr(report, "user_properties", [])
        if name == SUMMARY and report.when == "call"
    ]
    if lines:
        terminalreporter.section("summaries")
        for line in lines:
            terminalreporter.write_line(str(line))


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The whole local stack on free ports, owned by this test session (one per xdist worker).

    Pub/Sub emulator, bqemulator, the bridge process (supervised: restarted if it dies) and the
    API (`python -m app.api`), provisioned as `make run` does: `PIPELINE.on_local_emulator()`,
    the cloud's settings without a retry policy (the emulator's stalls), so a message that does
    not fit reaches the dead-letter topic within seconds, after its `LOCAL_MAX_DELIVERY_ATTEMPTS`.
    Use `.api_base_url`, `.api_env`, `.publisher()`, `.subscriber()`, `.bigquery()`, `.topic_path`,
    `.table_id`, `.view_id`, `.settings`; the stack is stopped at the end of the session.
    """
    from app.local import LocalStack, LocalStackConfig

    config = LocalStackConfig.on_free_ports(state_dir=tmp_path_factory.mktemp("local-stack"))
    with LocalStack.start(config) as stack:
        yield stack
