"""Schemathesis fuzzes the running API from its own OpenAPI document, every phase, every check.

The same tool CI runs after every stack update, here against the local stack;
`schemathesis.toml` at the repository root holds the documented exceptions. The stateful phase
runs on its own with more scenarios, so that it reliably walks every OpenAPI link.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from app.contract.flight_event import encode_event
from tests.factories import flight_event

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = os.environ.get("FUZZ_MAX_EXAMPLES", "25")
STATEFUL_MAX_EXAMPLES = os.environ.get("FUZZ_STATEFUL_MAX_EXAMPLES", "60")
SEEDED = 60

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(local_stack) -> str:
    """The local API, with recent flights so that default windows list several pages to follow."""
    now = datetime.now(UTC)
    events = [flight_event(f"fuzz-seed-{n}", departure=now - timedelta(minutes=n)) for n in range(SEEDED)]
    publisher = local_stack.publisher()
    for future in [publisher.publish(local_stack.topic_path, encode_event(e)) for e in events]:
        future.result(timeout=30)
    yesterday = (now - timedelta(days=1)).date()
    window = {"from": yesterday.isoformat(), "to": now.date().isoformat()}
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=local_stack.api_base_url, timeout=10) as client:
        poll = 0
        while time.monotonic() < deadline:
            # A page size not asked before: the API caches each query's answer for 30 s.
            listed = client.get("/v1/flights", params=window | {"limit": 500 - poll})
            items = listed.json()["items"] if listed.status_code == 200 else []
            if sum(i["event_id"].startswith("fuzz-seed-") for i in items) == SEEDED:
                break
            poll += 1
            time.sleep(0.5)
        else:
            pytest.fail(f"the seeded flights are not visible: {listed.status_code} {listed.text[:300]}")
    return str(local_stack.api_base_url)


def schemathesis(api: str, phases: str, max_examples: str) -> str:
    """Run the CLI with every check; fail with its report unless it found nothing."""
    result = subprocess.run(  # noqa: S603 - fixed argv, local URL
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{api}/schema/openapi.json",
            "--checks",
            "all",
            "--phases",
            phases,
            "--max-examples",
            max_examples,
            "--continue-on-failure",
            "--no-color",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    print(result.stdout[-4000:])
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
    return result.stdout


def test_every_operation_conforms_to_the_openapi_document(api: str) -> None:
    schemathesis(api, "examples,coverage,fuzzing", MAX_EXAMPLES)


def test_stateful_sequences_follow_every_link(api: str) -> None:
    output = schemathesis(api, "stateful", STATEFUL_MAX_EXAMPLES)
    # publish -> get, list -> get, list -> next page: every link was followed at least once.
    links = re.search(r"API Links:\s+(\d+) covered / (\d+) selected / (\d+) total", output)
    assert links, output[-4000:]
    covered, _, total = map(int, links.groups())
    assert covered == total >= 3
