"""The transformer's online reads: concurrent requests' title ids share one read of the store."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from serving.transformer.model import FeastTransformer


class GatedStore:
    """An online store whose first read waits for a gate; it records every read's ids."""

    def __init__(self) -> None:
        self.reads: list[list[str]] = []
        self.gate = threading.Event()

    def online(self, title_ids: list[str]) -> list[dict[str, Any] | None]:
        self.reads.append(list(title_ids))
        if len(self.reads) == 1:
            self.gate.wait(10)
        return [
            None
            if t.startswith("unknown")
            else {"title_id": t, "plot": f"plot of {t}", "reviews": []}
            for t in title_ids
        ]


def test_requests_that_arrive_during_a_read_share_the_next_read() -> None:
    store = GatedStore()
    model = FeastTransformer("genres", open_store=lambda: store, lookup_batch_size=8)
    model.load()

    async def scenario() -> list[dict[str, Any]]:
        first = asyncio.create_task(model.preprocess({"instances": [{"title_id": "t0"}]}))
        while not store.reads:  # the first read has started and waits at the gate
            await asyncio.sleep(0.001)
        rest = [
            asyncio.create_task(model.preprocess({"instances": [{"title_id": f"t{i}"}]}))
            for i in range(1, 5)
        ]
        await asyncio.sleep(0.05)  # the four requests queue behind the running read
        store.gate.set()
        return await asyncio.gather(first, *rest)

    answers = asyncio.run(scenario())
    assert store.reads == [["t0"], ["t1", "t2", "t3", "t4"]]
    assert [a["instances"][0]["title_id"] for a in answers] == ["t0", "t1", "t2", "t3", "t4"]
    assert answers[3]["instances"][0]["plot"] == "plot of t3"


def test_an_unknown_id_fails_only_its_own_request() -> None:
    store = GatedStore()
    store.gate.set()
    model = FeastTransformer("genres", open_store=lambda: store)
    model.load()

    async def both() -> list[Any]:
        return await asyncio.gather(
            model.preprocess({"instances": [{"title_id": "unknown:1"}]}),
            model.preprocess({"instances": [{"title_id": "t9"}]}),
            return_exceptions=True,
        )

    unknown, known = asyncio.run(both())
    assert getattr(unknown, "status", None) == 404
    assert known["instances"][0]["title_id"] == "t9"
