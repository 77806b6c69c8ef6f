"""Long training steps report progress with the time left, from the rate so far."""

from __future__ import annotations

import logging

from trending.modelling.progress import Progress, duration


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_time_left_follows_the_rate_so_far_and_lines_are_throttled(caplog):
    clock = Clock()
    progress = Progress("bert", 100, every_seconds=30, clock=clock)
    with caplog.at_level(logging.INFO, logger="trending.progress"):
        for _ in range(25):
            clock.now += 2.0  # 2 s per step: 25 steps in 50 s
            progress.advance(stage="epoch 1/4")
        progress.report("epoch 1/4 done", **{"valid loss": 0.21})
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2  # one throttled line (at 30 s) and the epoch line
    assert lines[-1] == (
        "bert: epoch 1/4 done, step 25/100 (25%), 50s elapsed, ~2m30s left (valid loss 0.21)"
    )


def test_durations_read_like_a_person_writes_them():
    assert [duration(s) for s in (42, 372, 3720, -1)] == ["42s", "6m12s", "1h02m", "0s"]
    assert "time left unknown" in Progress("x", 10, clock=Clock()).line()
