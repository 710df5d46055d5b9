"""Session-wide fixtures shared by the test suites."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from app.local import LocalStack


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The whole local stack on free ports, owned by this test session.

    Pub/Sub emulator, bqemulator, the bridge process (supervised: restarted if it dies) and the
    API (`python -m app.api`), provisioned as `make run` does: `PIPELINE.on_local_emulator()`,
    the cloud's settings without a retry policy (the emulator's stalls), so a message that does
    not fit reaches the dead-letter topic within seconds, after its `LOCAL_MAX_DELIVERY_ATTEMPTS`.
    Use `.api_base_url`, `.api_env`, `.publisher()`, `.subscriber()`, `.bigquery()`, `.topic_path`,
    `.table_id`, `.view_id`, `.settings`; the stack is stopped at the end of the session.
    """
    from app.local import LocalStack, LocalStackConfig

    config = LocalStackConfig.on_free_ports(state_dir=tmp_path_factory.mktemp("local-stack"))
    with LocalStack.start(config) as stack:
        yield stack
