"""Load scenario for a deployed stack: the realistic mix of bench/mix.py, authenticated with an ID token.

Run it from the repository root, in Locust's own environment (docs/performance.md#load-test-a-deployed-stack):

    make locust-env
    LOAD_ID_TOKEN="$(gcloud auth print-identity-token --audiences=https://flight-api-xxxx.run.app)" \
    .venv-locust/bin/locust -f bench/locustfile.py --host https://flight-api-xxxx.run.app \
        --headless --users 20 --spawn-rate 5 --run-time 5m --csv .bench/locust

Environment:
- LOAD_ID_TOKEN: sent as `Authorization: Bearer <token>` (Cloud Run IAM and the API's POST check);
  LOAD_ID_TOKEN_COMMAND, a command printing a fresh one, is rerun every 45 minutes for long runs.
- LOAD_PUBLISH_WEIGHT: the publish share in percent (default 10); 0 for a read-only run against a
  stack whose table must not receive load-test events (those use carrier `ZZ`).
"""

from __future__ import annotations

import os
import random
import shlex
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from locust import HttpUser, between, events, task

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import mix  # after the path: Locust puts only bench/ on it

TOKEN_LIFETIME_S = 45 * 60
PUBLISH_WEIGHT = int(os.environ.get("LOAD_PUBLISH_WEIGHT", round(100 * mix.SHARES["publish"])))


class _Token:
    """The ID token every user sends; refreshed from LOAD_ID_TOKEN_COMMAND before it expires."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = os.environ.get("LOAD_ID_TOKEN", "")
        self._fetched = time.monotonic()

    def header(self) -> dict[str, str]:
        command = os.environ.get("LOAD_ID_TOKEN_COMMAND")
        with self._lock:
            if command and (not self._value or time.monotonic() - self._fetched > TOKEN_LIFETIME_S):
                self._value = subprocess.run(  # noqa: S603 - the operator's own command
                    shlex.split(command), capture_output=True, text=True, check=True
                ).stdout.strip()
                self._fetched = time.monotonic()
            return {"Authorization": f"Bearer {self._value}"} if self._value else {}


class _Seen:
    """Flights and days the users have seen in list answers: what the mix draws ids and days from."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ids: list[tuple[str, date]] = []
        self.days: set[date] = set()

    def add(self, items: list[dict[str, Any]]) -> None:
        with self.lock:
            for item in items:
                day = datetime.fromisoformat(item["event_time"].replace("Z", "+00:00")).date()
                self.days.add(day)
                if len(self.ids) < 2_000:
                    self.ids.append((item["event_id"], day))

    def data(self) -> mix.MixData:
        with self.lock:
            days = sorted(self.days) or [
                datetime.now(UTC).date() - timedelta(days=n) for n in range(6, -1, -1)
            ]
            return mix.MixData(days=days, event_ids=list(self.ids))


TOKEN, SEEN = _Token(), _Seen()
CACHE = {"hit": 0, "miss": 0, "unmarked": 0}


@events.request.add_listener
def _count_cache_status(request_type: str, response: Any = None, **_: Any) -> None:
    """Count reads by their RFC 9211 Cache-Status: the hit ratio drives the cost per 1,000 requests."""
    if request_type != "GET" or response is None or response.status_code != 200:
        return
    status = response.headers.get("Cache-Status")
    key = "unmarked" if status is None else ("hit" if "hit" in status and "fwd=" not in status else "miss")
    CACHE[key] += 1


@events.test_stop.add_listener
def _report_cache(**_: Any) -> None:
    marked = CACHE["hit"] + CACHE["miss"]
    ratio = f"{CACHE['hit'] / marked:.1%}" if marked else "n/a"
    counts = f"{CACHE['hit']} hits, {CACHE['miss']} misses, {CACHE['unmarked']} unmarked"
    print(f"cache: {counts}; hit ratio {ratio}")


class AnalyticsClient(HttpUser):
    """One analytics tool: browses lists, opens flights it saw, sometimes publishes a status update."""

    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        self.rng = random.Random()  # noqa: S311 - load shape, not security
        self.list_default()

    def _get(self, path: str, name: str) -> None:
        with self.client.get(path, headers=TOKEN.header(), name=name, catch_response=True) as response:
            if response.status_code == 200 and path.startswith("/v1/flights?"):
                SEEN.add(response.json().get("items", []))
            elif response.status_code == 404 and name == "/v1/flights/{id}":
                response.success()  # a listed flight can expire with its partition; not an API failure

    @task(round(100 * mix.SHARES["list_default"]))
    def list_default(self) -> None:
        self._get(f"/v1/flights?limit={mix.PAGE}", "/v1/flights (default week)")

    @task(round(100 * mix.SHARES["list_filtered"]))
    def list_filtered(self) -> None:
        self._get(mix.list_filtered_path(self.rng, SEEN.data()), "/v1/flights (day, filters)")

    @task(round(100 * mix.SHARES["get"]))
    def get(self) -> None:
        data = SEEN.data()
        if data.event_ids:
            self._get(mix.get_path(self.rng, data), "/v1/flights/{id}")

    @task(PUBLISH_WEIGHT)
    def publish(self) -> None:
        self.client.post("/v1/events", json=mix.load_test_event(), headers=TOKEN.header(), name="/v1/events")
