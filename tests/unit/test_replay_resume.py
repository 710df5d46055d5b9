"""A replay checkpoints the prefix Pub/Sub confirmed and resumes there; the bridge's config round-trips."""

from __future__ import annotations

from concurrent.futures import Future
from datetime import date

import pytest

from app.bridge.config import BridgeConfig
from app.contract.service_env import ConfigError
from app.local.replay import Checkpoint, read_flights, replay


class FakePublisher:
    """Confirms publishes, except that the `fail_at`-th one fails (a broken emulator)."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.published: list[bytes] = []
        self.fail_at = fail_at

    def publish(self, topic: str, data: bytes, **attributes: str) -> Future[str]:
        future: Future[str] = Future()
        if self.fail_at is not None and len(self.published) == self.fail_at:
            future.set_exception(RuntimeError("emulator went away"))
        else:
            future.set_result(str(len(self.published)))
        self.published.append(data)
        return future


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    return list(read_flights(date(2013, 1, 1), days=1))


def test_an_interrupted_replay_resumes_after_the_confirmed_prefix(rows, tmp_path, monkeypatch):
    monkeypatch.setattr("app.local.replay.CHECKPOINT_INTERVAL_SECONDS", 0.0)  # save after every row
    path = tmp_path / "replay.json"
    checkpoint = Checkpoint(path, "2013-01-01", 1, total=len(rows))
    with pytest.raises(RuntimeError, match="went away"):
        replay(FakePublisher(fail_at=500), "t", rows, progress=False, checkpoint=checkpoint)
    saved = Checkpoint.load(path, date(2013, 1, 1), 1)
    assert 400 < saved.done <= 500, "saved as it went, never past the first publish that failed"
    assert not saved.finished
    resumed_at = saved.done

    publisher = FakePublisher()
    result = replay(publisher, "t", rows, progress=False, checkpoint=saved)
    assert result.skipped == resumed_at
    assert result.published + sum(result.invalid.values()) == len(rows) - resumed_at
    assert Checkpoint.load(path, date(2013, 1, 1), 1).finished


def test_a_checkpoint_of_another_selection_starts_over(tmp_path):
    path = tmp_path / "replay.json"
    Checkpoint(path, "2013-01-01", 1, done=700, total=842).save()
    assert Checkpoint.load(path, date(2013, 1, 1), 1).done == 700
    assert Checkpoint.load(path, date(2013, 1, 1), 2).done == 0
    assert Checkpoint.load(path, date(2013, 2, 1), 1).done == 0


def test_bridge_config_round_trips_through_the_environment(tmp_path):
    config = BridgeConfig(
        subscription="projects/p/subscriptions/s",
        table="p.d.t",
        pubsub_emulator_host="127.0.0.1:1",
        bigquery_api_endpoint="http://127.0.0.1:2",
        status_file=tmp_path / "status.json",
        pullers=2,
        drain_seconds=3,
    )
    assert BridgeConfig.load(tmp_path / "absent.json", config.env()) == config
    assert config.project == "p"


def test_bridge_config_reads_a_local_stack_file_or_says_what_is_missing(tmp_path):
    stack = tmp_path / "stack.json"
    stack.write_text(
        '{"subscription": "projects/p/subscriptions/s", "table": "p.d.t", '
        '"pubsub_emulator_host": "h:1", "bigquery_api_endpoint": "http://h:2"}'
    )
    assert BridgeConfig.load(stack, {}).pubsub_emulator_host == "h:1"
    with pytest.raises(ConfigError, match="not found"):
        BridgeConfig.load(tmp_path / "absent.json", {})
    with pytest.raises(ConfigError, match="BRIDGE_TABLE"):
        BridgeConfig.from_env({"BRIDGE_SUBSCRIPTION": "projects/p/subscriptions/s"})
