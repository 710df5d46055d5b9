"""Typed stack configuration, validated when the program starts.

Environments differ only through `stacks/Pulumi.<env>.yaml`; everything the program varies
per environment is a field here, so a bad value fails before any resource is planned, with
every problem listed at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from airline_platform.monitoring.config import MonitoringConfig
from app.contract.pipeline import PIPELINE
from app.contract.service_env import ConfigError

ENVIRONMENTS = ("dev", "staging", "prod")
INGRESS_VALUES = (
    "INGRESS_TRAFFIC_ALL",
    "INGRESS_TRAFFIC_INTERNAL_ONLY",
    "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
)
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{1,63}$")
_MEMBER = re.compile(r"^(user|group|serviceAccount|domain|principal|principalSet):\S+$")
_MEMORY = re.compile(r"^([1-9][0-9]*)(Mi|Gi)$")
# Memory (MiB) Cloud Run accepts per CPU count, from the tables in
# https://cloud.google.com/run/docs/configuring/services/cpu (4 CPU need at least 2 GiB, 6 and 8 at
# least 4 GiB) and https://cloud.google.com/run/docs/configuring/services/memory-limits (more than
# 4 GiB needs 2 CPU, more than 8 GiB 4, more than 16 GiB 6, more than 24 GiB 8; at most 32 GiB;
# at least 512 MiB in the second generation execution environment).
CPU_MEMORY_MIB = {
    "1": (512, 4 * 1024),
    "2": (512, 8 * 1024),
    "4": (2 * 1024, 16 * 1024),
    "6": (4 * 1024, 24 * 1024),
    "8": (4 * 1024, 32 * 1024),
}
# Publishers are checked against the email of a verified ID token, which names no groups.
_PUBLISHER = re.compile(r"^(user|serviceAccount):[^@\s]+@[^@\s]+\.[^@\s]+$")
# BigQuery bills at least 10 MB per query, so a lower cap would refuse every query.
MIN_BYTES_BILLED = 10 * 1024**2
MAX_BYTES_BILLED = 1024**4
# An Artifact Registry image by digest: <region>-docker.pkg.dev/<project>/<repo>/<image>@sha256:<hex>.
_IMAGE_BY_DIGEST = re.compile(
    r"^[a-z0-9]+(-[a-z0-9]+)*-docker\.pkg\.dev/[a-z][a-z0-9-]{4,28}[a-z0-9]/[a-z0-9][a-z0-9._-]*"
    r"/[a-z0-9][a-z0-9._/-]*@sha256:[0-9a-f]{64}$"
)


@dataclass(frozen=True)
class StackConfig:
    """Everything that differs between dev, staging and prod."""

    project: str
    region: str
    environment: str
    owner: str
    bigquery_location: str
    min_instances: int
    max_instances: int
    cpu: str
    memory: str
    partition_expiration_days: int | None
    deletion_protection: bool
    allow_public_invoker: bool
    invoker_members: tuple[str, ...]
    ingress: str
    ack_deadline_seconds: int
    max_delivery_attempts: int
    retry_minimum_backoff_seconds: int
    retry_maximum_backoff_seconds: int
    monitoring: MonitoringConfig
    # Who may POST events (verified Google ID tokens), the per-query cost cap, the per-client rate.
    publishers: tuple[str, ...]
    max_bytes_billed: int
    rate_limit_per_minute: int
    # Set at deploy time (`pulumi up -c image=...`) to the digest CI built once and promotes.
    image: str
    # Publishers that may mark events synthetic (the deploy pipeline's canary and fuzzer): a subset of
    # `publishers`, so no other producer's events can be hidden from analysts (app/contract/synthetic.py).
    synthetic_publishers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if errors := self.problems():
            raise ConfigError("invalid stack configuration:\n  - " + "\n  - ".join(errors))

    def problems(self) -> list[str]:
        """Every rule the values break; the environment-specific ones encode DESIGN §5."""
        errors = []
        if self.environment not in ENVIRONMENTS:
            errors.append(f"environment must be one of {ENVIRONMENTS}, got {self.environment!r}")
        if not _LABEL_VALUE.match(self.owner):
            errors.append(f"owner must be a label value (lowercase, digits, - or _), got {self.owner!r}")
        if not 0 <= self.min_instances <= self.max_instances or self.max_instances < 1:
            errors.append(
                f"need 0 <= minInstances <= maxInstances and maxInstances >= 1, "
                f"got {self.min_instances}..{self.max_instances}"
            )
        errors += self._cpu_memory_problems()
        if self.partition_expiration_days is not None and self.partition_expiration_days < 1:
            errors.append("partitionExpirationDays must be a positive number of days")
        if self.environment == "prod" and self.partition_expiration_days is not None:
            errors.append("prod keeps its data: remove partitionExpirationDays")
        if self.environment == "prod" and not self.deletion_protection:
            errors.append("prod requires deletionProtection: true")
        if self.allow_public_invoker and self.environment != "dev":
            errors.append("allowPublicInvoker is only allowed in dev")
        for member in self.invoker_members:
            if member in PUBLIC_MEMBERS:
                errors.append(f"{member} is not an invoker member; use allowPublicInvoker (dev only)")
            elif not _MEMBER.match(member):
                errors.append(
                    f"invokerMembers entry {member!r} is not an IAM member like group:team@example.com"
                )
        if self.ingress not in INGRESS_VALUES:
            errors.append(f"ingress must be one of {INGRESS_VALUES}, got {self.ingress!r}")
        if not 10 <= self.ack_deadline_seconds <= 600:
            errors.append("ackDeadlineSeconds must be between 10 and 600 (Pub/Sub limits)")
        if not 5 <= self.max_delivery_attempts <= 100:
            errors.append("maxDeliveryAttempts must be between 5 and 100 (Pub/Sub limits)")
        if not 0 <= self.retry_minimum_backoff_seconds <= self.retry_maximum_backoff_seconds <= 600:
            errors.append("need 0 <= retryMinimumBackoffSeconds <= retryMaximumBackoffSeconds <= 600")
        if not self.image:
            errors.append(
                "image is required: the deploy workflow sets it to the digest it built "
                "(pulumi up -c image=<registry>/<repository>/<image>@sha256:<digest>; see docs/delivery.md)"
            )
        elif not _IMAGE_BY_DIGEST.match(self.image):
            errors.append(
                "image must be an Artifact Registry image by digest, "
                f"<region>-docker.pkg.dev/<project>/<repository>/<image>@sha256:<64 hex>, got {self.image!r}"
            )
        for publisher in self.publishers:
            if not _PUBLISHER.match(publisher):
                errors.append(
                    f"publishers entry {publisher!r} must be serviceAccount:<email> or user:<email> "
                    "(an ID token names its own email, never a group)"
                )
        if stray := sorted(set(self.synthetic_publishers) - set(self.publishers)):
            errors.append(f"syntheticPublishers must also be publishers: {', '.join(stray)}")
        if not MIN_BYTES_BILLED <= self.max_bytes_billed <= MAX_BYTES_BILLED:
            errors.append(
                f"maxBytesBilled must be between {MIN_BYTES_BILLED} (BigQuery bills at least 10 MB a query) "
                f"and {MAX_BYTES_BILLED}, got {self.max_bytes_billed}"
            )
        if self.rate_limit_per_minute < 1:
            errors.append("rateLimitPerMinute must be at least 1 (only the local stack runs without a limit)")
        return errors + self.monitoring.problems(self.environment)

    def _cpu_memory_problems(self) -> list[str]:
        """CPU and memory as a pair Cloud Run accepts (`CPU_MEMORY_MIB`)."""
        memory = _MEMORY.match(self.memory)
        if self.cpu not in CPU_MEMORY_MIB:
            return [f"cpu must be one of {', '.join(CPU_MEMORY_MIB)}, got {self.cpu!r}"]
        if not memory:
            return [f"memory must look like 512Mi or 2Gi, got {self.memory!r}"]
        mib = int(memory[1]) * (1024 if memory[2] == "Gi" else 1)
        low, high = CPU_MEMORY_MIB[self.cpu]
        if not low <= mib <= high:
            return [
                f"Cloud Run runs {self.cpu} CPU with {_size(low)} to {_size(high)} of memory, got "
                f"{self.memory} (https://cloud.google.com/run/docs/configuring/services/cpu)"
            ]
        return []

    def labels(self, service: str) -> dict[str, str]:
        """The labels every labellable resource carries (cost and ownership reports group by them)."""
        return {"environment": self.environment, "service": service, "owner": self.owner}


def _size(mib: int) -> str:
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def runbook_base_url(source_repository: str | None, environ: Mapping[str, str]) -> str:
    """The `docs/runbooks` folder, on its default branch (`blob/HEAD`), of the repository being deployed.

    GitHub Actions names that repository in every step (`GITHUB_SERVER_URL`, `GITHUB_REPOSITORY`), so
    a deploy links the repository it runs from; by hand, pass `-c sourceRepository=https://github.com/<owner>/<repo>`.
    The default branch rather than the deployed commit: a responder reads the newest procedure, and
    the links do not change (and show in every preview) with each commit.
    """
    if environ.get("GITHUB_REPOSITORY"):
        server = environ.get("GITHUB_SERVER_URL", "https://github.com")
        source_repository = f"{server}/{environ['GITHUB_REPOSITORY']}"
    if not source_repository:
        raise ConfigError(
            "cannot tell which repository this stack is deployed from, so alerts could not link their "
            "runbooks: run from GitHub Actions, or pass -c sourceRepository=https://github.com/<owner>/<repo>"
        )
    return f"{source_repository.rstrip('/')}/blob/HEAD/docs/runbooks"


def load_config(environ: Mapping[str, str] = os.environ) -> StackConfig:
    """Read the current stack's configuration; raises ConfigError listing every problem."""
    gcp = pulumi.Config("gcp")
    app = pulumi.Config()
    region = gcp.require("region")
    members = app.get_object("invokerMembers") or []
    if not isinstance(members, list):
        raise ConfigError("invokerMembers must be a list of IAM members")
    publishers = app.get_object("publishers") or []
    if not isinstance(publishers, list):
        raise ConfigError("publishers must be a list of IAM members (serviceAccount:... or user:...)")
    synthetic = app.get_object("syntheticPublishers") or []
    if not isinstance(synthetic, list):
        raise ConfigError("syntheticPublishers must be a list of publishers (serviceAccount:...)")
    monitoring = app.require_object("monitoring")
    if not isinstance(monitoring, dict):
        raise ConfigError("monitoring must be an object (goals, thresholds, channels)")
    monitoring = monitoring | {"runbookBaseUrl": runbook_base_url(app.get("sourceRepository"), environ)}
    return StackConfig(
        project=gcp.require("project"),
        region=region,
        environment=app.require("environment"),
        owner=app.require("owner"),
        bigquery_location=app.get("bigqueryLocation") or region,
        min_instances=app.require_int("minInstances"),
        max_instances=app.require_int("maxInstances"),
        cpu=app.get("cpu") or "1",
        memory=app.get("memory") or "512Mi",
        partition_expiration_days=app.get_int("partitionExpirationDays"),
        deletion_protection=app.require_bool("deletionProtection"),
        allow_public_invoker=app.get_bool("allowPublicInvoker") or False,
        invoker_members=tuple(str(m) for m in members),
        ingress=app.get("ingress") or "INGRESS_TRAFFIC_ALL",
        ack_deadline_seconds=_int_or(app, "ackDeadlineSeconds", PIPELINE.ack_deadline_seconds),
        max_delivery_attempts=_int_or(app, "maxDeliveryAttempts", PIPELINE.max_delivery_attempts),
        retry_minimum_backoff_seconds=_int_or(
            app, "retryMinimumBackoffSeconds", PIPELINE.retry_minimum_backoff_seconds
        ),
        retry_maximum_backoff_seconds=_int_or(
            app, "retryMaximumBackoffSeconds", PIPELINE.retry_maximum_backoff_seconds
        ),
        monitoring=MonitoringConfig.from_config(monitoring),
        publishers=tuple(str(p) for p in publishers),
        max_bytes_billed=app.require_int("maxBytesBilled"),
        rate_limit_per_minute=app.require_int("rateLimitPerMinute"),
        image=app.get("image") or "",
        synthetic_publishers=tuple(str(p) for p in synthetic),
    )


def _int_or(config: pulumi.Config, key: str, default: int) -> int:
    value = config.get_int(key)
    return default if value is None else value
