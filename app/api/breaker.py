"""A circuit breaker per backend: stop calling one that keeps failing, try again after a cool-down.

While BigQuery or Pub/Sub is down, every request would otherwise wait out its full deadline
before answering 503 and keep a warehouse thread busy. After `failures` transient failures in
a row the breaker opens: calls fail at once (`BreakerOpen`, a 503 whose `Retry-After` is the
time left) and cached reads are served stale. After the cool-down one trial call goes through
(half open); its success closes the breaker, its failure opens it again. Only transient
failures count: a bad query is our bug, not the backend's health.

Written here rather than taken from a library: pybreaker holds its lock for the whole
protected call (serialising concurrent requests) and purgatory routes every call through a
message bus; this is the state machine and nothing else, for one event loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from app.api.problems import BackendUnavailable, is_transient

T = TypeVar("T")


class BreakerOpen(BackendUnavailable):
    """The backend failed repeatedly; not called until the cool-down has passed."""

    def __init__(self, backend: str, retry_after: float) -> None:
        super().__init__(
            f"{backend} is failing; not calling it for {retry_after:.1f} s", max(1, math.ceil(retry_after))
        )


class CircuitBreaker:
    """Closed -> open after `failures` transient failures in a row -> half open after `cooldown`."""

    def __init__(
        self, backend: str, failures: int, cooldown: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.backend = backend
        self._failures_allowed = failures
        self._cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "open" if self._clock() - self._opened_at < self._cooldown else "half-open"

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        state = self.state
        if state == "open" or (state == "half-open" and self._trial_running):
            assert self._opened_at is not None  # noqa: S101 - open implies a time
            raise BreakerOpen(self.backend, self._cooldown - (self._clock() - self._opened_at))
        trial = state == "half-open"
        self._trial_running = trial
        try:
            result = await operation()
        except Exception as exc:
            if is_transient(exc):
                self._failures += 1
                if trial or self._failures >= self._failures_allowed:
                    self._opened_at = self._clock()
            raise
        finally:
            if trial:
                self._trial_running = False
        self._failures = 0
        self._opened_at = None
        return result
