"""The realistic request mix, shared by `make bench` (local, wrk) and bench/locustfile.py (deployed).

What an analytics client of this API does, by share of requests:

| kind | share | request |
|---|---|---|
| list_default | 15% | `GET /v1/flights` (the latest week, first page) |
| list_filtered | 40% | `GET /v1/flights?from=D&to=D&carrier=C&origin=O`: a day of the recent week, |
|  |  | a popular carrier (60%) and/or origin (50%) |
| get | 35% | `GET /v1/flights/{id}?on=D`: a flight seen in a list, popular ones more often |
| publish | 10% | `POST /v1/events`: a status update |

Stdlib only, so Locust's environment can import it without the service's dependencies.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from app.contract.examples import EXAMPLE_EVENT

SHARES: dict[str, float] = {"list_default": 0.15, "list_filtered": 0.40, "get": 0.35, "publish": 0.10}
# The busiest carriers and the three origins of the replayed New York data; a deployment with other
# data can pass its own.
CARRIERS = ("UA", "B6", "EV", "DL", "AA", "MQ", "US", "9E")
ORIGINS = ("EWR", "JFK", "LGA")
PAGE = 50
# Load-test events use a carrier code no airline uses, so they are easy to find and filter out.
LOAD_TEST_CARRIER = "ZZ"


@dataclass(frozen=True)
class MixData:
    """What the mix draws from: the days that hold data (the last one is the newest) and flight ids."""

    days: Sequence[date]
    event_ids: Sequence[tuple[str, date]]
    carriers: Sequence[str] = CARRIERS
    origins: Sequence[str] = ORIGINS


def list_filtered_path(rng: random.Random, data: MixData) -> str:
    day = rng.choice(list(data.days)[-7:])
    params: dict[str, Any] = {"from": day.isoformat(), "to": day.isoformat()}
    if rng.random() < 0.6:
        params["carrier"] = rng.choice(list(data.carriers))
    if rng.random() < 0.5:
        params["origin"] = rng.choice(list(data.origins))
    params["limit"] = PAGE
    return "/v1/flights?" + urlencode(params)


def get_path(rng: random.Random, data: MixData) -> str:
    """A flight by id, popular ones more often (Zipf-like: rank r drawn with weight 1/r)."""
    index = min(int(rng.paretovariate(1.0)) - 1, len(data.event_ids) - 1)
    event_id, day = data.event_ids[index]
    return f"/v1/flights/{event_id}?on={day.isoformat()}"


def read_paths(data: MixData, count: int, seed: int = 11) -> list[str]:
    """`count` read requests of the mix (publishes left out), in a reproducible random order."""
    rng = random.Random(seed)  # noqa: S311 - load shape, not security
    reads = {k: v for k, v in SHARES.items() if k != "publish"}
    kinds = rng.choices(list(reads), weights=list(reads.values()), k=count)
    paths = []
    for kind in kinds:
        if kind == "list_default":
            paths.append(f"/v1/flights?limit={PAGE}")
        elif kind == "list_filtered":
            paths.append(list_filtered_path(rng, data))
        else:
            paths.append(get_path(rng, data))
    return paths


def uncached_list_paths(data: MixData, count: int) -> list[str]:
    """Up to `count` list requests that are all different queries, so none can be answered from a cache."""
    days = list(data.days)
    queries = (
        {"from": first.isoformat(), "to": (first + timedelta(days=span)).isoformat(), "limit": limit}
        for limit in range(PAGE, 0, -1)
        for span in range(5)
        for first in days
        if first + timedelta(days=span) <= days[-1]
    )
    return ["/v1/flights?" + urlencode(query) for _, query in zip(range(count), queries, strict=False)]


def load_test_event(now: datetime | None = None) -> dict[str, Any]:
    """A valid event for the publish share: the example flight, a fresh id, the load-test carrier."""
    moment = (now or datetime.now(UTC)).replace(microsecond=0)
    stamp = moment.isoformat().replace("+00:00", "Z")
    later = (moment + timedelta(hours=3)).isoformat().replace("+00:00", "Z")
    return EXAMPLE_EVENT | {
        "event_id": str(uuid.uuid4()),
        "event_time": stamp,
        "carrier": LOAD_TEST_CARRIER,
        "scheduled_departure": stamp,
        "actual_departure": stamp,
        "scheduled_arrival": later,
        "actual_arrival": later,
        "departure_delay_minutes": 0,
        "arrival_delay_minutes": 0,
    }
