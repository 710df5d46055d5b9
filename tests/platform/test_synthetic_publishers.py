"""Who may mark events synthetic: each stack's deploy pipeline, and never a principal that is no publisher."""

from __future__ import annotations

import json

import pytest
from airline_platform.config import ConfigError
from airline_platform.plan import STACKS, render, stack_config

KEY = "airline-data-platform:"


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_stacks_deployer_may_mark_events_synthetic(stack: str) -> None:
    config = stack_config(stack)
    synthetic = json.loads(config[KEY + "syntheticPublishers"])
    assert synthetic == [f"serviceAccount:deployer-{stack}@airline-delivery.iam.gserviceaccount.com"]
    assert set(synthetic) <= set(json.loads(config[KEY + "publishers"]))


def test_a_synthetic_publisher_must_be_a_publisher() -> None:
    stray = "serviceAccount:someone@airline-data-dev.iam.gserviceaccount.com"
    with pytest.raises(ConfigError, match=f"syntheticPublishers must also be publishers: {stray}"):
        render("dev", {KEY + "syntheticPublishers": json.dumps([stray])})
    with pytest.raises(ConfigError, match="syntheticPublishers must be a list"):
        render("dev", {KEY + "syntheticPublishers": json.dumps({"a": 1})})
