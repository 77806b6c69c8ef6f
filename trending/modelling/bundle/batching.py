"""Dynamic batching: concurrent requests share one model call.

A ``MicroBatcher`` collects the items of concurrent ``submit`` calls until it holds
``max_batch_size`` items or the oldest has waited ``max_wait_ms``, then runs one ``process`` call
(in a worker thread, so the event loop keeps accepting requests) and hands each caller its slice
of the results. A request's items always stay in one batch; a request larger than
``max_batch_size`` is processed on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Pending(Generic[Item]):
    items: Sequence[Item]
    future: asyncio.Future[list[Any]] = field(repr=False)


class MicroBatcher(Generic[Item, Result]):
    """Batch concurrent ``submit`` calls into single calls of ``process``.

    Args:
        process: Maps a list of items to a sequence of results of the same length.
        max_batch_size: Most items in one ``process`` call (1 turns batching off).
        max_wait_ms: Longest time the first item of a batch waits for company.
        executor: Where ``process`` runs; None means the loop's default thread pool.
        on_batch: Called with each batch's item count (e.g. to record a metric).
    """

    def __init__(
        self,
        process: Callable[[list[Item]], Sequence[Result]],
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        executor: Executor | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must not be negative, got {max_wait_ms}")
        self.process = process
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.executor = executor
        self.on_batch = on_batch
        self._queue: deque[_Pending[Item]] = deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, items: Sequence[Item]) -> list[Result]:
        """Queue ``items`` and wait for their results (in the same order).

        Raises:
            Exception: Whatever ``process`` raised for the batch these items were in.
        """
        if not items:
            return []
        loop = asyncio.get_running_loop()
        self._ensure_worker()
        pending = _Pending(items, loop.create_future())
        self._queue.append(pending)
        assert self._wakeup is not None
        self._wakeup.set()
        return await pending.future

    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._wakeup = asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._run())

    def _take_batch(self) -> list[_Pending[Item]]:
        batch = [self._queue.popleft()]
        size = len(batch[0].items)
        while self._queue and size + len(self._queue[0].items) <= self.max_batch_size:
            size += len(self._queue[0].items)
            batch.append(self._queue.popleft())
        return batch

    def _queued_items(self) -> int:
        return sum(len(p.items) for p in self._queue)

    async def _run(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            deadline = loop.time() + self.max_wait
            while self._queued_items() < self.max_batch_size:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
            batch = self._take_batch()
            await self._process(loop, batch)

    async def _process(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending[Item]]) -> None:
        items = [item for pending in batch for item in pending.items]
        if self.on_batch is not None:
            self.on_batch(len(items))
        try:
            results = await loop.run_in_executor(self.executor, self.process, items)
            if len(results) != len(items):
                raise RuntimeError(
                    f"the batch function returned {len(results)} results for {len(items)} items"
                )
        except Exception as exc:  # every caller in the batch gets the error
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        start = 0
        for pending in batch:
            end = start + len(pending.items)
            if not pending.future.done():  # the caller may have been cancelled
                pending.future.set_result(list(results[start:end]))
            start = end

    async def close(self) -> None:
        """Stop the worker; requests still queued get a RuntimeError."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        while self._queue:
            pending = self._queue.popleft()
            if not pending.future.done():
                pending.future.set_exception(RuntimeError("the batcher was closed"))
