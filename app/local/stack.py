"""The local stack: Pub/Sub emulator, bqemulator, the bridge worker and the API, as one unit.

`LocalStack.start(config)` is a context manager used by `python -m app.local run` and by the
test suite's `local_stack` fixture; leaving it stops every child process group.

A supervisor thread watches the children. The bridge and the API hold no state, so when one
dies it is restarted with backoff (1 s doubling to 30 s, reset after a minute of good health)
and `.local/stack.json` is rewritten with its new pid; the emulators keep running meanwhile.
The emulators keep everything in memory: a restarted one would be silently empty, so their
death stops the stack instead (`check()` raises).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.cloud import bigquery, pubsub_v1

from app import gcp_clients
from app.api.settings import Settings
from app.bridge.config import BridgeConfig
from app.contract.pipeline import PIPELINE, PipelineSettings
from app.contract.stack_file import write_json_atomically
from app.local.processes import Child, StackError, free_port, http_ok, port_open, pubsub_emulator_binary
from app.local.provision import provision_bigquery, provision_pubsub

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
# The cloud's pipeline, but a retry backoff the Pub/Sub emulator can keep (printed at start-up).
LOCAL_PIPELINE = PIPELINE.on_local_emulator()
# Children without state of their own: restarted when they die. The others end the stack.
RESTARTABLE = frozenset({"bridge", "api"})
RESTART_BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
HEALTHY_AFTER_SECONDS = 60.0


@dataclass(frozen=True)
class LocalStackConfig:
    """Ports, names and tuning of one local stack."""

    project: str = "local-project"
    pubsub_port: int = 8085
    bigquery_port: int = 9050
    api_port: int = 8000
    start_api: bool = True
    state_dir: Path = REPO_ROOT / ".local"
    settings: PipelineSettings = LOCAL_PIPELINE
    bridge_pullers: int = 4
    bridge_drain_seconds: int = 10
    startup_timeout_seconds: float = 60.0

    @classmethod
    def on_free_ports(cls, **overrides: Any) -> LocalStackConfig:
        """A config whose three ports are free now (tests run their own stack next to `make run`)."""
        ports = {"pubsub_port": free_port(), "bigquery_port": free_port(), "api_port": free_port()}
        return cls(**(ports | overrides))


@dataclass
class LocalStack:
    """A running stack: addresses, resource names, client helpers, and its children."""

    config: LocalStackConfig
    run_dir: Path
    children: dict[str, Child] = field(default_factory=dict)
    startup_seconds: dict[str, float] = field(default_factory=dict)
    wrote_stack_file: bool = False
    restarts: dict[str, int] = field(default_factory=dict)
    failure: str | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _supervisor: threading.Thread | None = None

    @classmethod
    @contextmanager
    def start(cls, config: LocalStackConfig | None = None) -> Iterator[LocalStack]:
        config = config or LocalStackConfig()
        run_dir = config.state_dir / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        run_dir.mkdir(parents=True, exist_ok=True)
        stack = cls(config, run_dir)
        try:
            stack._start()
            yield stack
        finally:
            stack.stop()

    # Addresses and names -------------------------------------------------------------------
    @property
    def project(self) -> str:
        return self.config.project

    @property
    def settings(self) -> PipelineSettings:
        return self.config.settings

    @property
    def pubsub_host(self) -> str:
        return f"{HOST}:{self.config.pubsub_port}"

    @property
    def bigquery_endpoint(self) -> str:
        return f"http://{HOST}:{self.config.bigquery_port}"

    @property
    def api_base_url(self) -> str:
        return f"http://{HOST}:{self.config.api_port}"

    @property
    def topic_path(self) -> str:
        return pubsub_v1.PublisherClient.topic_path(self.project, self.settings.topic)

    @property
    def dead_letter_topic_path(self) -> str:
        return pubsub_v1.PublisherClient.topic_path(self.project, self.settings.dead_letter_topic)

    @property
    def subscription_path(self) -> str:
        return pubsub_v1.SubscriberClient.subscription_path(self.project, self.settings.subscription)

    @property
    def dead_letter_subscription_path(self) -> str:
        return pubsub_v1.SubscriberClient.subscription_path(
            self.project, self.settings.dead_letter_subscription
        )

    @property
    def table_id(self) -> str:
        return f"{self.project}.{self.settings.dataset}.{self.settings.table}"

    @property
    def view_id(self) -> str:
        return f"{self.project}.{self.settings.dataset}.{self.settings.latest_view}"

    @property
    def stack_file(self) -> Path:
        return self.config.state_dir / "stack.json"

    @property
    def bridge_status_file(self) -> Path:
        return self.run_dir / "bridge-status.json"

    @property
    def bridge_config(self) -> BridgeConfig:
        """What the bridge process drains into where (passed to it as environment variables)."""
        return BridgeConfig(
            subscription=self.subscription_path,
            table=self.table_id,
            pubsub_emulator_host=self.pubsub_host,
            bigquery_api_endpoint=self.bigquery_endpoint,
            status_file=self.bridge_status_file,
            pullers=self.config.bridge_pullers,
            drain_seconds=self.config.bridge_drain_seconds,
        )

    def bridge_status(self) -> dict[str, Any]:
        """The bridge's last status report (counters since its start, table state), or {}."""
        try:
            return dict(json.loads(self.bridge_status_file.read_text()))
        except (OSError, ValueError):
            return {}

    @property
    def api_env(self) -> dict[str, str]:
        """The environment the API runs with (what Cloud Run sets in the cloud, pointed at emulators)."""
        api = Settings(
            project_id=self.project,
            topic=self.settings.topic,
            dataset=self.settings.dataset,
            table=self.settings.table,
            bigquery_api_endpoint=self.bigquery_endpoint,
            # No Google identities locally: anyone on this machine may publish, as fast as they like.
            publish_auth="none",
            rate_limit_per_minute=0,
        )
        return api.data_env() | {
            "HOST": HOST,
            "PORT": str(self.config.api_port),
            "GOOGLE_CLOUD_PROJECT": self.project,
            "PUBSUB_EMULATOR_HOST": self.pubsub_host,
        }

    # Clients ------------------------------------------------------------------------------
    def publisher(self, **kwargs: Any) -> pubsub_v1.PublisherClient:
        return gcp_clients.publisher_client(self.pubsub_host, **kwargs)

    def subscriber(self) -> pubsub_v1.SubscriberClient:
        return gcp_clients.subscriber_client(self.pubsub_host)

    def bigquery(self) -> bigquery.Client:
        return gcp_clients.bigquery_client(self.project, self.bigquery_endpoint)

    # Lifecycle ----------------------------------------------------------------------------
    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, stop_timeout: float = 5.0
    ) -> Child:
        child = Child(
            name, argv, self.run_dir / f"{name}.log", env=env, cwd=self.run_dir, stop_timeout=stop_timeout
        )
        self.children[name] = child
        return child

    def _start(self) -> None:
        started = time.monotonic()
        timeout = self.config.startup_timeout_seconds
        ports = [self.config.pubsub_port, self.config.bigquery_port]
        ports += [self.config.api_port] if self.config.start_api else []
        if busy := [port for port in ports if port_open(HOST, port)]:
            raise StackError(
                f"port(s) {busy} already in use on {HOST} (another local stack? see {self.stack_file})"
            )
        # Start every child first: they boot in parallel while we wait for each in turn.
        pubsub = self._spawn(
            "pubsub-emulator",
            [str(pubsub_emulator_binary()), f"--host={HOST}", f"--port={self.config.pubsub_port}"],
        )
        warehouse = self._spawn(
            "bqemulator",
            [
                sys.executable, "-m", "bqemulator", "start",
                "--rest-host", HOST, "--rest-port", str(self.config.bigquery_port),
                "--grpc-host", HOST, "--grpc-port", "0",
                "--project", self.project, "--log-level", "warning",
            ],
            # bqemulator copies the whole table into a time-travel snapshot on every insert and
            # keeps it 7 days: memory grew to 2.9 GB for 150,000 rows. Nothing here time-travels,
            # so keep none (its garbage collector drops them within a minute).
            env=os.environ | {"BQEMU_TIME_TRAVEL_RETENTION_DAYS": "0"},
        )  # fmt: skip
        api = None
        if self.config.start_api:
            api = self._spawn("api", [sys.executable, "-m", "app.api"], env=os.environ | self.api_env)
        self.startup_seconds["pubsub-emulator"] = pubsub.wait_ready(
            lambda: port_open(HOST, self.config.pubsub_port), timeout
        )
        self.startup_seconds["bqemulator"] = warehouse.wait_ready(
            lambda: http_ok(f"{self.bigquery_endpoint}/healthz"), timeout
        )
        publisher, subscriber, warehouse_client = self.publisher(), self.subscriber(), self.bigquery()
        try:
            provision_pubsub(publisher, subscriber, self.project, self.settings)
            provision_bigquery(warehouse_client, self.project, self.settings)
        finally:
            subscriber.close()
        self._spawn(
            "bridge",
            [sys.executable, "-m", "app.bridge"],
            env=os.environ | self.bridge_config.env(),
            # SIGTERM drains; give it that long before SIGKILL.
            stop_timeout=self.config.bridge_drain_seconds + 5.0,
        )
        if api is not None:
            self.startup_seconds["api"] = api.wait_ready(
                lambda: http_ok(f"{self.api_base_url}/health"), timeout
            )
        self.startup_seconds["total"] = time.monotonic() - started
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        self._write_stack_file()
        self.wrote_stack_file = True
        # Children die with the thread that spawned them (PR_SET_PDEATHSIG): the supervisor,
        # which respawns them, lives as long as the stack.
        self._supervisor = threading.Thread(target=self._supervise, name="stack-supervisor", daemon=True)
        self._supervisor.start()

    def _write_stack_file(self) -> None:
        write_json_atomically(self.stack_file, self.describe())

    def _supervise(self) -> None:
        """Restart the bridge and the API when they die; record an emulator's death for check()."""
        restart_at: dict[str, float] = {}
        while not self._stopping.wait(0.2):
            try:
                for name, child in list(self.children.items()):
                    code = child.exited()
                    if code is None:
                        continue
                    if name not in RESTARTABLE:
                        self.failure = self.failure or f"{name} exited with code {code}:\n{child.log_tail()}"
                        continue
                    if name not in restart_at:
                        uptime = time.monotonic() - child.started_at
                        if uptime >= HEALTHY_AFTER_SECONDS:
                            self.restarts[name] = 0
                        step = min(self.restarts.get(name, 0), len(RESTART_BACKOFF_SECONDS) - 1)
                        delay = RESTART_BACKOFF_SECONDS[step]
                        restart_at[name] = time.monotonic() + delay
                        log.warning(
                            "%s (pid %d) exited with code %s after %.1f s; restarting in %.0f s",
                            name, child.pid, code, uptime, delay,
                        )  # fmt: skip
                    elif time.monotonic() >= restart_at[name]:
                        with self._lock:
                            if self._stopping.is_set():
                                return
                            self.children[name] = child.respawn()
                            self.restarts[name] = self.restarts.get(name, 0) + 1
                            if self.wrote_stack_file:
                                self._write_stack_file()
                        del restart_at[name]
                        log.warning("%s restarted as pid %d", name, self.children[name].pid)
            except Exception:  # the supervisor must outlive any surprise: its children die with it
                log.exception("stack supervisor")

    def describe(self) -> dict[str, Any]:
        """What `.local/stack.json` holds: everything a script needs to talk to this stack."""
        return {
            "project_id": self.project,
            "pubsub_emulator_host": self.pubsub_host,
            "bigquery_api_endpoint": self.bigquery_endpoint,
            "topic": self.topic_path,
            "subscription": self.subscription_path,
            "dead_letter_topic": self.dead_letter_topic_path,
            "dead_letter_subscription": self.dead_letter_subscription_path,
            "dataset": f"{self.project}.{self.settings.dataset}",
            "table": self.table_id,
            "view": self.view_id,
            "api_base_url": self.api_base_url if self.config.start_api else None,
            "run_dir": str(self.run_dir),
            "bridge_status_file": str(self.bridge_status_file),
            "delivery": {
                "ack_deadline_seconds": self.settings.ack_deadline_seconds,
                "max_delivery_attempts": self.settings.max_delivery_attempts,
                "retry_backoff_seconds": [
                    self.settings.retry_minimum_backoff_seconds,
                    self.settings.retry_maximum_backoff_seconds,
                ],
            },
            "pids": {"runner": os.getpid()} | {name: child.pid for name, child in self.children.items()},
        }

    def check(self) -> None:
        """Raise StackError if an emulator died (the bridge and the API are restarted instead)."""
        if self.failure:
            raise StackError(self.failure)

    def stop(self) -> None:
        """Stop the supervisor, then every child: bridge (drains) and API first, emulators last."""
        with self._lock:
            self._stopping.set()
            if self.wrote_stack_file:
                self.stack_file.unlink(missing_ok=True)
                self.wrote_stack_file = False
        if self._supervisor is not None:
            self._supervisor.join(timeout=10)
        for name in reversed(list(self.children)):
            self.children.pop(name).stop()
