"""The result cache (TTL, single flight, stale on error, byte bound) and the circuit breaker."""

from __future__ import annotations

import asyncio

import pytest
from google.api_core.exceptions import BadRequest, ServiceUnavailable

from app.api.breaker import BreakerOpen, CircuitBreaker
from app.api.cache import ResultCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """Counts its calls; answers `body` with `status`, or raises `error`, after an optional pause."""

    def __init__(self, body: bytes = b"page", status: int = 200) -> None:
        self.calls = 0
        self.body, self.status = body, status
        self.error: Exception | None = None
        self.pause = 0.0

    async def __call__(self) -> tuple[bytes, int]:
        self.calls += 1
        await asyncio.sleep(self.pause)
        if self.error is not None:
            raise self.error
        return self.body, self.status


def cache_of(max_bytes: int = 10_000, clock: Clock | None = None) -> ResultCache:
    """Answers fresh for 30 s, a not-found for 5 s (the service's defaults)."""
    kwargs = {"clock": clock} if clock else {}
    return ResultCache(
        max_bytes=max_bytes, stale_seconds=600, ttl_seconds=30, not_found_ttl_seconds=5, **kwargs
    )


def run(coroutine):
    return asyncio.run(coroutine)


def test_a_fresh_entry_is_served_without_a_query_then_expires() -> None:
    clock, load = Clock(), Loader()
    cache = cache_of(10_000, clock)

    async def scenario() -> list[str]:
        results = [(await cache.get("k", load)).result for _ in range(3)]
        clock.now += 31
        results.append((await cache.get("k", load)).result)
        return results

    assert run(scenario()) == ["miss", "hit", "hit", "miss"]
    assert load.calls == 2


def test_concurrent_misses_send_one_query() -> None:
    load = Loader()
    load.pause = 0.05
    cache = cache_of(10_000)

    async def scenario() -> list[str]:
        lookups = await asyncio.gather(*(cache.get(("list", 1), load) for _ in range(20)))
        assert len({lookup.entry.etag for lookup in lookups}) == 1
        return sorted(lookup.result for lookup in lookups)

    assert run(scenario()) == ["collapsed"] * 19 + ["miss"]
    assert load.calls == 1


def test_an_expired_entry_is_served_stale_while_the_warehouse_is_unavailable() -> None:
    clock, load = Clock(), Loader()
    cache = cache_of(10_000, clock)

    async def scenario() -> None:
        fresh = await cache.get("k", load)
        clock.now += 120
        load.error = ServiceUnavailable("down")
        stale = await cache.get("k", load)
        assert stale.result == "stale"
        assert stale.entry.body == fresh.entry.body
        assert "fwd=stale" in stale.cache_status
        assert "fwd-status=503" in stale.cache_status
        assert "ttl=-90" in stale.cache_status
        # An open breaker is "unavailable" too.
        load.error = BreakerOpen("BigQuery", 5)
        assert (await cache.get("k", load)).result == "stale"
        # Too old to serve: the error reaches the caller.
        clock.now += 600
        load.error = ServiceUnavailable("still down")
        with pytest.raises(ServiceUnavailable):
            await cache.get("k", load)

    run(scenario())


def test_our_own_faults_are_never_hidden_behind_stale_answers() -> None:
    clock, load = Clock(), Loader()
    cache = cache_of(10_000, clock)

    async def scenario() -> None:
        await cache.get("k", load)
        clock.now += 31
        load.error = BadRequest("Syntax error")
        with pytest.raises(BadRequest):
            await cache.get("k", load)

    run(scenario())


def test_waiters_of_a_failed_query_get_the_stale_answer_or_the_error() -> None:
    clock, load = Clock(), Loader()
    cache = cache_of(10_000, clock)

    async def scenario() -> None:
        await cache.get("cached", load)
        clock.now += 31
        load.error, load.pause = ServiceUnavailable("down"), 0.05
        lookups = await asyncio.gather(*(cache.get("cached", load) for _ in range(5)))
        assert {lookup.result for lookup in lookups} == {"stale"}
        outcomes = await asyncio.gather(
            *(cache.get("never-cached", load) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(outcome, ServiceUnavailable) for outcome in outcomes)

    run(scenario())


def test_the_cache_holds_at_most_its_byte_budget_dropping_the_least_recently_used() -> None:
    cache = cache_of(3_000)
    loads = {key: Loader(body=b"x" * 900) for key in "abcd"}

    async def scenario() -> None:
        for key in "abc":
            await cache.get(key, loads[key])
        await cache.get("a", loads["a"])  # a is now the most recently used
        await cache.get("d", loads["d"])  # evicts b
        assert (await cache.get("a", loads["a"])).result == "hit"
        assert (await cache.get("b", loads["b"])).result == "miss"

    run(scenario())


def test_the_ttl_depends_on_what_the_answer_says() -> None:
    """Found: 30 s; not found: 5 s; nothing there yet (204): not stored, so it cannot outlive an arrival."""
    clock = Clock()
    cache = cache_of(10_000, clock)
    found, not_found, nothing = Loader(status=200), Loader(status=404), Loader(status=204)

    async def results(key: str, load: Loader) -> list[str]:
        first = (await cache.get(key, load)).result
        clock.now += 4
        second = (await cache.get(key, load)).result
        clock.now += 2
        return [first, second, (await cache.get(key, load)).result]

    assert run(results("found", found)) == ["miss", "hit", "hit"]
    assert run(results("not-found", not_found)) == ["miss", "hit", "miss"]
    assert run(results("nothing", nothing)) == ["miss", "miss", "miss"]


def test_a_refresh_skips_the_stored_answer_and_stores_the_new_one() -> None:
    cache = cache_of(10_000)
    old, new = Loader(body=b"old"), Loader(body=b"new")

    async def scenario() -> None:
        await cache.get("k", old)
        refreshed = await cache.get("k", new, refresh=True)
        assert refreshed.entry.body == b"new"
        assert "fwd=request" in refreshed.cache_status
        after = await cache.get("k", old)
        assert (after.result, after.entry.body) == ("hit", b"new")

    run(scenario())
    assert (old.calls, new.calls) == (1, 1)


def test_a_target_resolved_from_an_entry_is_answered_in_front_only_while_that_entry_stands() -> None:
    clock = Clock()
    cache = cache_of(10_000, clock)

    async def scenario() -> None:
        await cache.get("newest", Loader(body=b"day-1"))
        await cache.get("page", Loader(body=b"rows"))
        cache.remember(b"/v1/flights?", "page", resolved_by="newest")
        assert cache.fresh_for(b"/v1/flights?") is not None
        await cache.get("newest", Loader(body=b"day-2"), refresh=True)  # the basis changed
        assert cache.fresh_for(b"/v1/flights?") is None
        cache.remember(b"/v1/flights?", "page", resolved_by="newest")
        clock.now += 31  # the basis (and the page) expired
        assert cache.fresh_for(b"/v1/flights?") is None

    run(scenario())


async def failing() -> None:
    raise ServiceUnavailable("down")


async def succeeding() -> str:
    return "ok"


def test_the_breaker_opens_after_consecutive_transient_failures_and_fails_fast() -> None:
    clock = Clock()
    breaker = CircuitBreaker("BigQuery", failures=3, cooldown=10, clock=clock)

    async def scenario() -> None:
        for _ in range(3):
            with pytest.raises(ServiceUnavailable):
                await breaker.call(failing)
        assert breaker.state == "open"
        calls = []

        async def tracked() -> str:
            calls.append(1)
            return "ok"

        clock.now += 4
        with pytest.raises(BreakerOpen) as opened:
            await breaker.call(tracked)
        assert opened.value.retry_after_seconds == 6
        assert calls == []  # the backend was not called

    run(scenario())


def test_our_faults_and_successes_do_not_open_the_breaker() -> None:
    breaker = CircuitBreaker("BigQuery", failures=2, cooldown=10)

    async def bad_sql() -> None:
        raise BadRequest("Syntax error")

    async def scenario() -> None:
        for _ in range(5):
            with pytest.raises(BadRequest):
                await breaker.call(bad_sql)
        with pytest.raises(ServiceUnavailable):
            await breaker.call(failing)
        assert await breaker.call(succeeding) == "ok"  # resets the count
        with pytest.raises(ServiceUnavailable):
            await breaker.call(failing)
        assert breaker.state == "closed"

    run(scenario())


def test_after_the_cooldown_one_trial_decides() -> None:
    clock = Clock()
    breaker = CircuitBreaker("BigQuery", failures=1, cooldown=10, clock=clock)

    async def scenario() -> None:
        with pytest.raises(ServiceUnavailable):
            await breaker.call(failing)
        clock.now += 10
        assert breaker.state == "half-open"
        with pytest.raises(ServiceUnavailable):
            await breaker.call(failing)  # the trial fails: open again for a full cooldown
        assert breaker.state == "open"
        clock.now += 10

        async def slow_success() -> str:
            await asyncio.sleep(0.05)
            return "ok"

        trial = asyncio.create_task(breaker.call(slow_success))
        await asyncio.sleep(0)
        with pytest.raises(BreakerOpen):  # only one trial at a time
            await breaker.call(succeeding)
        assert await trial == "ok"
        assert breaker.state == "closed"
        assert await breaker.call(succeeding) == "ok"

    run(scenario())
