"""The estimate: one line per billed quantity of one resource, each with the inputs of its formula.

Inputs come from the rendered plan (what would be deployed: min instances, CPU and memory, partition
expiry, uptime period, log-based metrics), the stack's declared `Traffic` and `Measured` bytes and
seconds; prices from `prices.json`. A line's amount is (quantity - free allotment) x price, where the
free allotment is the project's own (Cloud Logging, uptime checks). Allotments shared by the billing
account (Cloud Run, BigQuery, Pub/Sub, Monitoring, Artifact Registry) are deducted once, across all
stacks, by `account_total`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from airline_platform.config import MIN_BYTES_BILLED
from airline_platform.cost.prices import PriceTable
from airline_platform.cost.traffic import MONTH_SECONDS, READ_KINDS, Measured, Traffic

# Cloud Run's default: up to 80 requests share an instance at once.
DEFAULT_CONCURRENCY = 80
# Cloud Monitoring runs a check from every checker location unless `selectedRegions` narrows them:
# three in the USA, one each in Europe, South America and Asia Pacific.
DEFAULT_UPTIME_LOCATIONS = 6
# Log-based metric points: one per time series per minute while the series has data (an upper bound);
# a point of a counter is billed as 8 bytes, of a distribution as 80 (cloud.google.com/stackdriver/pricing).
POINTS_PER_SERIES = MONTH_SECONDS // 60
POINT_BYTES = {"DISTRIBUTION": 80}
# The API looks up the newest day behind a default window at most once per 10 s per instance.
NEWEST_DAY_QUERIES_PER_INSTANCE_SECOND = 0.1
LONG_TERM_AFTER_DAYS = 90  # BigQuery: a partition unchanged for 90 days is billed as long-term
GIB = 1024**3
_MEMORY = re.compile(r"^(\d+)(Mi|Gi)$")


@dataclass(frozen=True)
class Line:
    """One billed quantity: `quantity` units at `unit_price` each, less the free allotment applied here."""

    resource: str
    item: str
    inputs: dict[str, Any]
    formula: str
    quantity: float
    unit: str
    price_key: str
    price: float  # per `per` units, as the price table lists it
    per: float
    free: float = 0.0

    @property
    def amount(self) -> float:
        return max(self.quantity - self.free, 0.0) / self.per * self.price

    @property
    def key(self) -> str:
        return f"{self.resource}: {self.item}"


@dataclass(frozen=True)
class Estimate:
    """A stack's monthly estimate at its declared traffic, with the price table's date."""

    stack: str
    traffic: Traffic
    prices_checked: str
    lines: list[Line] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(line.amount for line in self.lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "traffic": asdict(self.traffic),
            "prices_checked": self.prices_checked,
            "total": self.total,
            "lines": [asdict(line) | {"amount": line.amount} for line in self.lines],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Estimate:
        fields = set(Line.__dataclass_fields__)
        return cls(
            data["stack"],
            Traffic(**data["traffic"]),
            data["prices_checked"],
            [Line(**{k: v for k, v in line.items() if k in fields}) for line in data["lines"]],
        )


def _of_type(resources: Iterable[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["type"] == type_]


def _gib(memory: str) -> float:
    match = _MEMORY.match(memory)
    if not match:
        raise ValueError(f"memory {memory!r} is not like 512Mi or 1Gi")
    return int(match.group(1)) / (1024 if match.group(2) == "Mi" else 1)


def _n(value: float) -> str:
    """A figure as a reader writes it: 2,592,000 or 0.35 or 1.2e-06."""
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.4g}" if abs(value) >= 1e-3 else f"{value:.3g}"


class _Builder:
    def __init__(self, prices: PriceTable) -> None:
        self.prices = prices
        self.lines: list[Line] = []

    def add(
        self, resource: str, item: str, price_key: str, inputs: dict[str, Any], formula: str, quantity: float
    ) -> None:
        price = self.prices.price(price_key)
        free = price.free if price.free_scope == "project" else 0.0
        self.lines.append(
            Line(
                resource, item, inputs, formula, quantity, price.unit, price_key, price.price, price.per, free
            )
        )


def estimate(
    stack: str,
    resources: list[dict[str, Any]],
    traffic: Traffic,
    prices: PriceTable,
    measured: Measured | None = None,
) -> Estimate:
    """Price one stack's rendered resources at its traffic."""
    m = measured or Measured()
    out = _Builder(prices)
    requests = traffic.requests_per_second * MONTH_SECONDS
    reads = {kind: requests * traffic.mix[kind] for kind in READ_KINDS}
    misses = {kind: count * (1 - traffic.cache_hit_ratio) for kind, count in reads.items()}
    publishes = requests * traffic.mix["publish"]
    events = traffic.events_per_second * MONTH_SECONDS
    min_instances = _cloud_run(out, resources, traffic, m, requests, reads, misses, publishes)
    queries = _bigquery(out, resources, traffic, m, reads, misses, events, min_instances)
    _pubsub(out, resources, m, events)
    _logging(out, traffic, m, requests, queries, max(min_instances, 1))
    _monitoring(out, resources, m)
    _state(out, stack, resources, traffic, m)
    return Estimate(stack, traffic, prices.checked, out.lines)


def _cloud_run(
    out: _Builder,
    resources: list[dict[str, Any]],
    traffic: Traffic,
    m: Measured,
    requests: float,
    reads: dict[str, float],
    misses: dict[str, float],
    publishes: float,
) -> int:
    """Idle minimum instances all month, plus instance time while requests are served (no overlap
    between concurrent requests is assumed: an upper bound at low rates, where requests rarely meet)."""
    min_instances = 0
    for service in _of_type(resources, "gcp:cloudrunv2/service:Service"):
        template = service["inputs"]["template"]
        limits = template["containers"][0]["resources"]["limits"]
        cpu, memory = float(limits["cpu"]), _gib(limits["memory"])
        min_instances = int(template["scaling"].get("minInstanceCount") or 0)
        name = f"{service['name']} (Cloud Run)"
        concurrency = int(template.get("maxInstanceRequestConcurrency") or DEFAULT_CONCURRENCY)
        hits = sum(reads.values()) - sum(misses.values())
        request_seconds = (
            hits * m.cached_request_seconds
            + sum(misses.values()) * m.uncached_request_seconds
            + publishes * m.publish_request_seconds
        )
        # Requests in flight at once share an instance: it is billed for wall time, at most all month.
        instances = max(math.ceil(request_seconds / MONTH_SECONDS / concurrency), 1)
        busy = min(request_seconds, instances * MONTH_SECONDS)
        idle_seconds = max(min_instances * MONTH_SECONDS - busy, 0.0)
        idle = {"minInstances": min_instances, "cpu": cpu, "memoryGiB": memory, "idleSeconds": idle_seconds}
        idle_formula = f"max({min_instances} x {_n(MONTH_SECONDS)} s - {_n(busy)} s serving, 0)"
        out.add(
            name,
            "min instances, idle CPU",
            "run.cpu_idle",
            idle,
            f"{idle_formula} x {_n(cpu)} vCPU",
            idle_seconds * cpu,
        )
        out.add(
            name,
            "min instances, idle memory",
            "run.memory_idle",
            idle,
            f"{idle_formula} x {_n(memory)} GiB",
            idle_seconds * memory,
        )
        served = {
            "cachedReads": hits,
            "cachedSeconds": m.cached_request_seconds,
            "uncachedReads": sum(misses.values()),
            "uncachedSeconds": m.uncached_request_seconds,
            "publishes": publishes,
            "publishSeconds": m.publish_request_seconds,
            "instances": instances,
        }
        busy_formula = (
            f"min({_n(hits)} cached x {_n(m.cached_request_seconds)} s"
            f" + {_n(sum(misses.values()))} uncached x {_n(m.uncached_request_seconds)} s"
            f" + {_n(publishes)} publishes x {_n(m.publish_request_seconds)} s,"
            f" {instances} instance(s) x {_n(MONTH_SECONDS)} s)"
        )
        out.add(
            name,
            "CPU while serving",
            "run.cpu_request",
            served | {"cpu": cpu},
            f"{busy_formula} x {_n(cpu)} vCPU",
            busy * cpu,
        )
        out.add(
            name,
            "memory while serving",
            "run.memory_request",
            served | {"memoryGiB": memory},
            f"{busy_formula} x {_n(memory)} GiB",
            busy * memory,
        )
        out.add(
            name,
            "requests",
            "run.requests",
            {"requestsPerSecond": traffic.requests_per_second, "seconds": MONTH_SECONDS},
            f"{_n(traffic.requests_per_second)}/s x {_n(MONTH_SECONDS)} s",
            requests,
        )
    return min_instances


def _bytes_cap(resources: list[dict[str, Any]]) -> float:
    """The service's `maximum_bytes_billed` (APP_MAX_BYTES_BILLED): BigQuery refuses, unbilled, a
    query above it."""
    for service in _of_type(resources, "gcp:cloudrunv2/service:Service"):
        for env in service["inputs"]["template"]["containers"][0].get("envs") or []:
            if env["name"] == "APP_MAX_BYTES_BILLED":
                return float(env["value"])
    return math.inf


def _billed(scanned: float) -> float:
    """BigQuery bills whole MiB, at least 10 MiB per query."""
    return max(math.ceil(scanned / 2**20) * 2**20, MIN_BYTES_BILLED)


def _bigquery(
    out: _Builder,
    resources: list[dict[str, Any]],
    traffic: Traffic,
    m: Measured,
    reads: dict[str, float],
    misses: dict[str, float],
    events: float,
    min_instances: int,
) -> float:
    """Storage by partition expiry (active, then long-term after 90 days) and queries per read kind
    at the cache hit ratio; returns the number of queries (their log lines cost too)."""
    tables = [t for t in _of_type(resources, "gcp:bigquery/table:Table") if "timePartitioning" in t["inputs"]]
    events_per_day = traffic.events_per_second * 86_400
    cap = _bytes_cap(resources)
    queries = 0.0
    for table in tables:
        name = f"{table['name']} (BigQuery)"
        expiry_ms = table["inputs"]["timePartitioning"].get("expirationMs")
        kept_days = int(expiry_ms) // 86_400_000 if expiry_ms else traffic.data_age_days
        kept_by = "partition expiry" if expiry_ms else "dataAgeDays (no expiry)"
        active_days = min(kept_days, LONG_TERM_AFTER_DAYS)
        per_day = events_per_day * m.stored_bytes_per_event
        storage = {
            "eventsPerSecond": traffic.events_per_second,
            "bytesPerEvent": m.stored_bytes_per_event,
            "keptDays": kept_days,
            "keptBy": kept_by,
        }
        day_formula = f"{_n(traffic.events_per_second)}/s x 86,400 s x {m.stored_bytes_per_event} B"
        out.add(
            name,
            "active storage",
            "bigquery.storage_active",
            storage | {"activeDays": active_days},
            f"{day_formula} x {active_days} days ({kept_by}: {kept_days})",
            per_day * active_days,
        )
        out.add(
            name,
            "long-term storage",
            "bigquery.storage_long_term",
            storage | {"longTermDays": kept_days - active_days},
            f"{day_formula} x {kept_days - active_days} days older than {LONG_TERM_AFTER_DAYS}",
            per_day * (kept_days - active_days),
        )
        for kind in READ_KINDS:
            days = m.scanned_days[kind]
            scanned = events_per_day * days * m.read_bytes_per_event
            billed = _billed(scanned)
            refused = billed > cap
            queries += misses[kind]
            out.add(
                name,
                f"queries, {kind.replace('_', ' ')}",
                "bigquery.query",
                {
                    "reads": reads[kind],
                    "cacheHitRatio": traffic.cache_hit_ratio,
                    "scannedDays": days,
                    "readBytesPerEvent": m.read_bytes_per_event,
                    "bytesBilledPerQuery": billed,
                    "maxBytesBilled": cap,
                },
                f"{_n(reads[kind])} reads x (1 - {_n(traffic.cache_hit_ratio)}) x max(10 MiB, "
                f"{_n(events_per_day)} events/day x {days} days x {m.read_bytes_per_event} B) = "
                f"{_n(billed / 2**20)} MiB"
                + (f", above maxBytesBilled ({_n(cap / 2**20)} MiB): refused, not billed" if refused else ""),
                0.0 if refused else misses[kind] * billed,
            )
        default_misses = misses["list_default"]
        cap = NEWEST_DAY_QUERIES_PER_INSTANCE_SECOND * max(min_instances, 1) * MONTH_SECONDS
        newest = min(default_misses, cap)
        queries += newest
        out.add(
            name,
            "queries, newest day (metadata)",
            "bigquery.query",
            {
                "defaultListMisses": default_misses,
                "capPerMonth": cap,
                "bytesBilledPerQuery": MIN_BYTES_BILLED,
            },
            f"min({_n(default_misses)} default-list misses,"
            f" 1 per 10 s x {max(min_instances, 1)} instance(s)) x 10 MiB",
            newest * MIN_BYTES_BILLED,
        )
    return queries


def _pubsub(out: _Builder, resources: list[dict[str, Any]], m: Measured, events: float) -> None:
    """Publishing bills at least 1,000 bytes per request (one event per request assumed); the
    BigQuery subscription bills its throughput."""
    for topic in _of_type(resources, "gcp:pubsub/topic:Topic"):
        if "dead-letter" in topic["inputs"]["name"]:
            continue  # only what fails delivery 5 times; not priced
        publish_bytes = max(m.message_bytes, 1_000)
        out.add(
            f"{topic['name']} (Pub/Sub)",
            "publish throughput",
            "pubsub.throughput",
            {"events": events, "messageBytes": m.message_bytes, "billedBytesPerRequest": publish_bytes},
            f"{_n(events)} events x max({m.message_bytes} B, 1,000 B)",
            events * publish_bytes,
        )
    for subscription in _of_type(resources, "gcp:pubsub/subscription:Subscription"):
        if "bigqueryConfig" in subscription["inputs"]:
            out.add(
                f"{subscription['name']} (Pub/Sub)",
                "BigQuery subscription throughput",
                "pubsub.bigquery_subscription",
                {"events": events, "messageBytes": m.message_bytes},
                f"{_n(events)} events x {m.message_bytes} B",
                events * m.message_bytes,
            )


def _logging(
    out: _Builder, traffic: Traffic, m: Measured, requests: float, queries: float, instances: int
) -> None:
    per_request = m.request_log_bytes + m.app_log_bytes_per_request
    minutes = instances * MONTH_SECONDS / 60
    ingested = requests * per_request + queries * m.app_log_bytes_per_query
    ingested += minutes * m.app_log_bytes_per_instance_minute
    inputs = {
        "requests": requests,
        "requestLogBytes": m.request_log_bytes,
        "appLogBytesPerRequest": m.app_log_bytes_per_request,
        "queries": queries,
        "appLogBytesPerQuery": m.app_log_bytes_per_query,
        "instanceMinutes": minutes,
        "appLogBytesPerInstanceMinute": m.app_log_bytes_per_instance_minute,
    }
    out.add(
        "project logs (Cloud Logging)",
        "ingestion",
        "logging.ingestion",
        inputs,
        f"{_n(requests)} requests x ({m.request_log_bytes} + {m.app_log_bytes_per_request}) B + "
        f"{_n(queries)} queries x {m.app_log_bytes_per_query} B + {_n(minutes)} instance-minutes x "
        f"{m.app_log_bytes_per_instance_minute} B",
        ingested,
    )
    extra_months = max(traffic.log_retention_days - 30, 0) / 30
    out.add(
        "project logs (Cloud Logging)",
        "retention beyond 30 days",
        "logging.retention",
        inputs | {"logRetentionDays": traffic.log_retention_days},
        f"ingested per month x {_n(extra_months)} months kept beyond 30 days",
        ingested * extra_months,
    )


def _monitoring(out: _Builder, resources: list[dict[str, Any]], m: Measured) -> None:
    for check in _of_type(resources, "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig"):
        period = int(str(check["inputs"]["period"]).rstrip("s"))
        locations = len(check["inputs"].get("selectedRegions") or []) or DEFAULT_UPTIME_LOCATIONS
        out.add(
            f"{check['name']} (Cloud Monitoring)",
            "uptime check executions",
            "monitoring.uptime",
            {"periodSeconds": period, "locations": locations},
            f"{_n(MONTH_SECONDS)} s / {period} s x {locations} locations",
            MONTH_SECONDS / period * locations,
        )
    metrics = _of_type(resources, "gcp:logging/metric:Metric")
    series_bytes = []
    for metric in metrics:
        labels = list(metric["inputs"].get("labelExtractors") or {})
        unknown = [label for label in labels if label not in m.label_values]
        if unknown:
            raise ValueError(
                f"{metric['inputs']['name']}: how many values do {unknown} take? (Measured.label_values)"
            )
        series = math.prod(m.label_values[label] for label in labels)
        point = POINT_BYTES.get(metric["inputs"]["metricDescriptor"]["valueType"], 8)
        series_bytes.append((metric["inputs"]["name"], series, point))
    if metrics:
        out.add(
            "log-based metrics (Cloud Monitoring)",
            "metric data ingested",
            "monitoring.ingestion",
            {name: {"series": series, "pointBytes": point} for name, series, point in series_bytes},
            " + ".join(f"{series} x {point} B" for _, series, point in series_bytes)
            + f" x {_n(POINTS_PER_SERIES)} points",
            sum(series * point for _, series, point in series_bytes) * POINTS_PER_SERIES,
        )


def _state(out: _Builder, stack: str, resources: list[dict[str, Any]], traffic: Traffic, m: Measured) -> None:
    """The stack's state bucket in the delivery project: versions kept 90 days after they are replaced."""
    versions = traffic.deploys_per_month * 3
    out.add(
        f"state bucket pulumi-{stack} (Cloud Storage)",
        "storage (versions of 90 days)",
        "storage.standard",
        {"stateBytes": m.state_bytes, "deploysPerMonth": traffic.deploys_per_month},
        f"{m.state_bytes} B x (1 + {traffic.deploys_per_month} deploys x 3 months)",
        m.state_bytes * (1 + versions),
    )
    out.add(
        f"state bucket pulumi-{stack} (Cloud Storage)",
        "writes",
        "storage.class_a",
        {"deploysPerMonth": traffic.deploys_per_month, "resources": len(resources)},
        f"{traffic.deploys_per_month} deploys x {len(resources)} resources (a checkpoint per step)",
        traffic.deploys_per_month * len(resources),
    )


def registry(traffic: Traffic, prices: PriceTable, measured: Measured | None = None) -> Line:
    """The shared image repository: one image, plus a code layer per push, kept a year (no cleanup)."""
    m = measured or Measured()
    price = prices.price("artifactregistry.storage")
    pushes = traffic.deploys_per_month * 12
    return Line(
        "images (Artifact Registry, shared)",
        "storage",
        {
            "imageBytes": m.image_bytes,
            "pushesKept": pushes,
            "layerBytesPerPush": m.image_layer_bytes_per_push,
        },
        f"{_n(m.image_bytes)} B + {pushes} pushes a year x {_n(m.image_layer_bytes_per_push)} B",
        m.image_bytes + pushes * m.image_layer_bytes_per_push,
        price.unit,
        "artifactregistry.storage",
        price.price,
        price.per,
    )


def account_total(estimates: list[Estimate], shared: list[Line], prices: PriceTable) -> tuple[float, float]:
    """(sum of the stacks and shared lines, the same less the billing account's free allotments)."""
    lines = [line for e in estimates for line in e.lines] + shared
    gross = sum(line.amount for line in lines)
    saved = 0.0
    for key in {line.price_key for line in lines}:
        price = prices.price(key)
        if price.free_scope == "billing account" and price.free:
            used = sum(line.quantity for line in lines if line.price_key == key)
            saved += min(used, price.free) * price.unit_price
    return gross, gross - saved


def dumps(estimate: Estimate) -> str:
    return json.dumps(estimate.to_json(), indent=2, sort_keys=True) + "\n"
