"""Failure injection: a paused warehouse or Pub/Sub emulator gives 503s at the API's deadline, then recovery.

SIGSTOP freezes an emulator the way a hung backend behaves: connections are accepted and
nothing answers, so only the API's own deadlines can bound the wait. The stack here is this
module's own, so pausing it cannot disturb the other tests.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest

from app.api.settings import Settings
from app.contract.flight_event import encode_event
from tests.factories import flight_event

pytestmark = pytest.mark.integration
# The API's own deadlines end the wait (1.5 s), not the frozen backend (the client here waits 30 s).
# The 1.5 s margin is for scheduling: `make test` runs three workers on two shared cores.
BOUND_SECONDS = max(Settings.read_deadline_seconds, Settings.publish_deadline_seconds) + 1.5


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from app.local import LocalStack, LocalStackConfig

    config = LocalStackConfig.on_free_ports(state_dir=tmp_path_factory.mktemp("failures-stack"))
    with LocalStack.start(config) as running:
        yield running


@contextmanager
def paused(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def timed(request: httpx.Request) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    with httpx.Client(timeout=30) as client:
        response = client.send(request)
    return response, time.monotonic() - started


def assert_unavailable_in_time(response: httpx.Response, seconds: float) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) > 0
    assert seconds < BOUND_SECONDS, f"answered after {seconds:.2f} s"


def test_reads_answer_503_in_time_while_the_warehouse_hangs_then_recover(stack) -> None:
    base = stack.api_base_url
    reads = [
        httpx.Request("GET", f"{base}/v1/flights", params={"from": "2013-01-01"}),
        httpx.Request("GET", f"{base}/v1/flights"),
        httpx.Request("GET", f"{base}/v1/flights/some-id"),
        httpx.Request("GET", f"{base}/v1/flights/some-id", params={"on": "2013-01-01"}),
        httpx.Request("GET", f"{base}/ready"),
    ]
    api_pid = stack.children["api"].pid
    with paused(stack.children["bqemulator"].pid):
        for request in reads:
            assert_unavailable_in_time(*timed(request))
        with ThreadPoolExecutor(12) as pool:  # more at once than the API's 8 warehouse threads
            for response, seconds in pool.map(timed, reads * 3):
                assert_unavailable_in_time(response, seconds)
    # The same process serves again as soon as the warehouse answers: no restart.
    deadline = time.monotonic() + 30
    while timed(reads[0])[0].status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    for request in reads[:4]:
        assert timed(request)[0].status_code in (200, 404)
    assert timed(reads[4])[0].status_code == 200
    assert stack.children["api"].pid == api_pid
    assert stack.children["api"].exited() is None


def test_publishing_answers_503_in_time_while_pubsub_hangs_then_recovers(stack) -> None:
    body = encode_event(flight_event("failure-publish"))
    publish = httpx.Request(
        "POST", f"{stack.api_base_url}/v1/events", content=body, headers={"content-type": "application/json"}
    )
    with paused(stack.children["pubsub-emulator"].pid):
        assert_unavailable_in_time(*timed(publish))
        with ThreadPoolExecutor(8) as pool:
            for response, seconds in pool.map(timed, [publish] * 8):
                assert_unavailable_in_time(response, seconds)
    deadline = time.monotonic() + 30
    while (response := timed(publish)[0]).status_code != 202 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert response.status_code == 202, response.text
