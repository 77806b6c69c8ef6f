"""Dynamic batching: concurrent submits share model calls, results go back to their callers."""

from __future__ import annotations

import asyncio

import pytest

from trending.modelling.bundle.batching import MicroBatcher


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_share_one_call_and_get_their_own_results():
    calls: list[list[int]] = []

    def double(items: list[int]) -> list[int]:
        calls.append(items)
        return [2 * x for x in items]

    async def scenario():
        batcher = MicroBatcher(double, max_batch_size=8, max_wait_ms=200)
        results = await asyncio.gather(*(batcher.submit([i, 10 + i]) for i in range(3)))
        await batcher.close()
        return results

    assert run(scenario()) == [[0, 20], [2, 22], [4, 24]]
    assert len(calls) == 1 and sorted(calls[0]) == [0, 1, 2, 10, 11, 12]


def test_a_full_batch_does_not_wait_and_requests_are_never_split():
    calls: list[list[int]] = []

    def identity(items: list[int]) -> list[int]:
        calls.append(items)
        return items

    async def scenario():
        # A huge wait: only reaching max_batch_size can release these batches.
        batcher = MicroBatcher(identity, max_batch_size=4, max_wait_ms=60_000)
        results = await asyncio.wait_for(
            asyncio.gather(*(batcher.submit([i, i]) for i in range(4))), timeout=30
        )
        await batcher.close()
        return results

    assert run(scenario()) == [[i, i] for i in range(4)]
    assert [len(c) for c in calls] == [4, 4]


def test_an_error_reaches_every_caller_of_the_batch_and_the_batcher_keeps_working():
    def fail_on_negative(items: list[int]) -> list[int]:
        if any(x < 0 for x in items):
            raise ValueError("negative")
        return items

    async def scenario():
        batcher = MicroBatcher(fail_on_negative, max_batch_size=4, max_wait_ms=100)
        first = await asyncio.gather(
            batcher.submit([-1]), batcher.submit([1]), return_exceptions=True
        )
        second = await batcher.submit([5])
        await batcher.close()
        return first, second

    first, second = run(scenario())
    assert all(isinstance(r, ValueError) for r in first)
    assert second == [5]


def test_wrong_result_count_is_an_error_not_a_misaligned_answer():
    async def scenario():
        batcher = MicroBatcher(lambda items: items[:-1], max_batch_size=2, max_wait_ms=0)
        with pytest.raises(RuntimeError, match="returned 1 results for 2 items"):
            await batcher.submit([1, 2])
        await batcher.close()

    run(scenario())


def test_batch_sizes_are_reported():
    sizes: list[int] = []

    async def scenario():
        batcher = MicroBatcher(lambda x: x, max_batch_size=1, max_wait_ms=0, on_batch=sizes.append)
        await batcher.submit([1])
        await batcher.submit([2, 3])  # larger than max_batch_size: processed alone
        await batcher.close()

    run(scenario())
    assert sizes == [1, 2]


@pytest.mark.parametrize(("size", "wait"), [(0, 1.0), (4, -1.0)])
def test_bad_settings_are_rejected(size, wait):
    with pytest.raises(ValueError, match="must"):
        MicroBatcher(lambda x: x, max_batch_size=size, max_wait_ms=wait)
