"""The local stack: Pub/Sub emulator, bqemulator, the bridge worker and the API, as one unit.

`LocalStack.start(config)` is a context manager used by `python -m app.local run` and by the
test suite's `local_stack` fixture; leaving it stops every child process group.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.cloud import bigquery, pubsub_v1

from app import gcp_clients
from app.api.settings import Settings
from app.bridge import Bridge
from app.contract.pipeline import PIPELINE, PipelineSettings
from app.local.processes import Child, StackError, free_port, http_ok, port_open, pubsub_emulator_binary
from app.local.provision import provision_bigquery, provision_pubsub

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


@dataclass(frozen=True)
class StackConfig:
    """Ports, names and tuning of one local stack."""

    project: str = "local-project"
    pubsub_port: int = 8085
    bigquery_port: int = 9050
    api_port: int = 8000
    start_api: bool = True
    state_dir: Path = REPO_ROOT / ".local"
    settings: PipelineSettings = PIPELINE
    bridge_streams: int = 4
    startup_timeout_seconds: float = 60.0

    @classmethod
    def on_free_ports(cls, **overrides: Any) -> StackConfig:
        """A config whose three ports are free now (tests run their own stack next to `make run`)."""
        ports = {"pubsub_port": free_port(), "bigquery_port": free_port(), "api_port": free_port()}
        return cls(**(ports | overrides))


@dataclass
class LocalStack:
    """A running stack: addresses, resource names, client helpers, and its children."""

    config: StackConfig
    run_dir: Path
    children: dict[str, Child] = field(default_factory=dict)
    bridge: Bridge | None = None
    startup_seconds: dict[str, float] = field(default_factory=dict)
    wrote_stack_file: bool = False

    @classmethod
    @contextmanager
    def start(cls, config: StackConfig | None = None) -> Iterator[LocalStack]:
        config = config or StackConfig()
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
        return f"projects/{self.project}/topics/{self.settings.topic}"

    @property
    def dead_letter_topic_path(self) -> str:
        return f"projects/{self.project}/topics/{self.settings.dead_letter_topic}"

    @property
    def subscription_path(self) -> str:
        return f"projects/{self.project}/subscriptions/{self.settings.subscription}"

    @property
    def dead_letter_subscription_path(self) -> str:
        return f"projects/{self.project}/subscriptions/{self.settings.dead_letter_subscription}"

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
    def api_env(self) -> dict[str, str]:
        """The environment the API runs with (what Cloud Run sets in the cloud, pointed at emulators)."""
        api = Settings(
            project_id=self.project,
            topic=self.settings.topic,
            dataset=self.settings.dataset,
            table=self.settings.table,
            view=self.settings.latest_view,
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
    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        child = Child(name, argv, self.run_dir / f"{name}.log", env=env, cwd=self.run_dir)
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
        self.bridge = Bridge(
            subscriber_factory=self.subscriber,
            bigquery_client=warehouse_client,
            subscription_path=self.subscription_path,
            table_id=self.table_id,
            streams=self.config.bridge_streams,
        )
        self.bridge.start()
        if api is not None:
            self.startup_seconds["api"] = api.wait_ready(
                lambda: http_ok(f"{self.api_base_url}/healthz"), timeout
            )
        self.startup_seconds["total"] = time.monotonic() - started
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        self.stack_file.write_text(json.dumps(self.describe(), indent=2) + "\n")
        self.wrote_stack_file = True

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
            "pids": {"runner": os.getpid()} | {name: child.pid for name, child in self.children.items()},
        }

    def check(self) -> None:
        """Raise StackError if a child died or the bridge lost its streams."""
        for name, child in self.children.items():
            code = child.exited()
            if code is not None:
                raise StackError(f"{name} exited with code {code}:\n{child.log_tail()}")
        if self.bridge is not None:
            try:
                self.bridge.check()
            except RuntimeError as exc:
                raise StackError(str(exc)) from exc

    def stop(self) -> None:
        """Stop the bridge, then every child (API first, emulators last); remove stack.json."""
        if self.wrote_stack_file:
            self.stack_file.unlink(missing_ok=True)
            self.wrote_stack_file = False
        if self.bridge is not None:
            bridge, self.bridge = self.bridge, None
            try:
                bridge.stop(timeout=10.0)
            except Exception:
                log.exception("bridge did not stop cleanly")
        for name in reversed(list(self.children)):
            self.children.pop(name).stop()
