"""Render the three stacks once per session with the same harness as `make plan`."""

from __future__ import annotations

import pytest
from airline_platform.plan import STACKS, Plan, render


@pytest.fixture(scope="session")
def plans() -> dict[str, Plan]:
    return {stack: render(stack) for stack in STACKS}
