"""Session-wide fixtures shared by the test suites."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from app.local import LocalStack


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The whole local stack on free ports, owned by this test session.

    Pub/Sub emulator, bqemulator, the bridge worker and the API (`python -m app.api`), provisioned
    from `PIPELINE` except the retry backoff (1-2 s instead of 10-600 s), so a message that does
    not fit reaches the dead-letter topic after its 5 delivery attempts in about 8 s.
    Use `.api_base_url`, `.api_env`, `.publisher()`, `.subscriber()`, `.bigquery()`, `.topic_path`,
    `.table_id`, `.view_id`, `.settings`; the stack is stopped at the end of the session.
    """
    from app.contract.pipeline import PIPELINE
    from app.local import LocalStack, StackConfig

    settings = replace(PIPELINE, retry_minimum_backoff_seconds=1, retry_maximum_backoff_seconds=2)
    config = StackConfig.on_free_ports(state_dir=tmp_path_factory.mktemp("local-stack"), settings=settings)
    with LocalStack.start(config) as stack:
        yield stack
