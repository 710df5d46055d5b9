"""Where the bridge process reads from and writes to: the environment, or a local stack's stack.json.

The runner starts `python -m app.bridge` with the variables `BridgeConfig.env()` names; by hand,
`python -m app.bridge` with none of them set attaches to the local stack described by
`.local/stack.json`. Without PUBSUB_EMULATOR_HOST / BIGQUERY_API_ENDPOINT the clients use
Application Default Credentials against the real services.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from google.cloud import pubsub_v1

from app import gcp_clients
from app.bridge.warehouse import Table
from app.bridge.worker import Bridge
from app.contract.service_env import ConfigError, env_int
from app.contract.stack_file import read_stack_file


@dataclass(frozen=True)
class BridgeConfig:
    """One subscription into one table, and the few knobs worth turning."""

    subscription: str  # projects/<p>/subscriptions/<s>
    table: str  # <project>.<dataset>.<table>
    pubsub_emulator_host: str | None = None
    bigquery_api_endpoint: str | None = None
    status_file: Path | None = None
    pullers: int = 4
    drain_seconds: int = 10

    @property
    def project(self) -> str:
        return self.table.split(".", 1)[0]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BridgeConfig:
        missing = [name for name in ("BRIDGE_SUBSCRIPTION", "BRIDGE_TABLE") if not env.get(name)]
        if missing:
            raise ConfigError(f"set {' and '.join(missing)}")
        return cls(
            subscription=env["BRIDGE_SUBSCRIPTION"],
            table=env["BRIDGE_TABLE"],
            pubsub_emulator_host=env.get("PUBSUB_EMULATOR_HOST") or None,
            bigquery_api_endpoint=env.get("BIGQUERY_API_ENDPOINT") or None,
            status_file=Path(env["BRIDGE_STATUS_FILE"]) if env.get("BRIDGE_STATUS_FILE") else None,
            pullers=env_int(env, "BRIDGE_PULLERS", cls.pullers),
            drain_seconds=env_int(env, "BRIDGE_DRAIN_SECONDS", cls.drain_seconds),
        )

    @classmethod
    def from_stack_file(cls, path: Path) -> BridgeConfig:
        try:
            described = read_stack_file(path)
        except ConfigError as exc:
            raise ConfigError(f"{exc}, or set BRIDGE_SUBSCRIPTION") from None
        return cls(
            subscription=described["subscription"],
            table=described["table"],
            pubsub_emulator_host=described["pubsub_emulator_host"],
            bigquery_api_endpoint=described["bigquery_api_endpoint"],
        )

    @classmethod
    def load(cls, stack_file: Path, env: Mapping[str, str] | None = None) -> BridgeConfig:
        """The environment if it names a subscription, else the local stack's stack.json."""
        env = os.environ if env is None else env
        return cls.from_env(env) if env.get("BRIDGE_SUBSCRIPTION") else cls.from_stack_file(stack_file)

    def env(self) -> dict[str, str]:
        """The variables `from_env` reads: what the runner starts the bridge process with."""
        env = {
            "BRIDGE_SUBSCRIPTION": self.subscription,
            "BRIDGE_TABLE": self.table,
            "BRIDGE_PULLERS": str(self.pullers),
            "BRIDGE_DRAIN_SECONDS": str(self.drain_seconds),
        }
        optional = {
            "PUBSUB_EMULATOR_HOST": self.pubsub_emulator_host,
            "BIGQUERY_API_ENDPOINT": self.bigquery_api_endpoint,
            "BRIDGE_STATUS_FILE": str(self.status_file) if self.status_file else None,
        }
        return env | {name: value for name, value in optional.items() if value}

    def subscriber(self) -> pubsub_v1.SubscriberClient:
        return gcp_clients.subscriber_client(self.pubsub_emulator_host)

    def build(self) -> Bridge:
        client = gcp_clients.bigquery_client(self.project, self.bigquery_api_endpoint)
        return Bridge(
            subscriber_factory=self.subscriber,
            table=Table(client, self.table),
            subscription_path=self.subscription,
            pullers=self.pullers,
        )
