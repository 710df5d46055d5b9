"""Render the three stacks and the delivery bootstrap once per session, with `make plan`'s harness."""

from __future__ import annotations

import pytest
from airline_platform.plan import REPO_ROOT, STACKS, Plan, Program, render

BOOTSTRAP = Program(
    entry=REPO_ROOT / "platform" / "bootstrap" / "__main__.py",
    project="airline-delivery-bootstrap",
    stacks_dir=REPO_ROOT / "platform" / "bootstrap",
    deploy_time_config={},
)


@pytest.fixture(scope="session")
def plans() -> dict[str, Plan]:
    return {stack: render(stack) for stack in STACKS}


@pytest.fixture(scope="session")
def bootstrap() -> Plan:
    return render("delivery", program=BOOTSTRAP)
