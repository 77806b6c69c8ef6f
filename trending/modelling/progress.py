"""Progress of long training steps (BERT epochs, XGBoost folds and rounds) with the time left.

A training step on 2 CPU cores runs for many minutes; ``Progress`` logs where it is and how long
it will take at the rate so far, at most every ``every_seconds`` and at each stage end, e.g.::

    bert: epoch 2/5, step 300/750 (40 %), 6m12s elapsed, ~9m18s left (train loss 0.214)

Lines go to the ``trending.progress`` logger at INFO; when nothing configured logging (a KFP
step, a script), a stderr handler is added on first use so the lines reach the step's log.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

logger = logging.getLogger("trending.progress")


def _ensure_visible() -> None:
    """Give the logger a stderr handler when neither it nor the root logger has one."""
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def duration(seconds: float) -> str:
    """Seconds as ``1h02m``, ``6m12s`` or ``42s``."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """Counts units of work (steps, folds, rounds) and logs progress with an estimate of time left.

    Args:
        name: What is running, e.g. ``"bert"``.
        total: Units expected in all (an upper bound is fine: early stopping ends sooner).
        unit: What a unit is, e.g. ``"step"``.
        every_seconds: Least time between two lines from ``advance``.
        clock: Monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        name: str,
        total: int,
        *,
        unit: str = "step",
        every_seconds: float = 30.0,
        clock: Any = time.monotonic,
    ) -> None:
        self.name, self.total, self.unit = name, max(int(total), 1), unit
        self.every_seconds, self.clock = every_seconds, clock
        self.done = 0
        self.started = clock()
        self._last_line = self.started
        _ensure_visible()

    def line(self, stage: str = "", **facts: float) -> str:
        """The progress sentence for the work done so far."""
        elapsed = self.clock() - self.started
        share = min(self.done / self.total, 1.0)
        left = elapsed / share - elapsed if share > 0 else None
        parts = [f"{self.name}:"]
        if stage:
            parts.append(f"{stage},")
        parts.append(f"{self.unit} {self.done}/{self.total} ({share:.0%}),")
        parts.append(f"{duration(elapsed)} elapsed,")
        parts.append(f"~{duration(left)} left" if left is not None else "time left unknown")
        if facts:
            parts.append("(" + ", ".join(f"{k} {v:.4g}" for k, v in facts.items()) + ")")
        return " ".join(parts)

    def advance(self, units: int = 1, stage: str = "", **facts: float) -> None:
        """Count ``units`` more; log a line when ``every_seconds`` passed since the last one."""
        self.done += units
        now = self.clock()
        if now - self._last_line >= self.every_seconds:
            self._last_line = now
            logger.info(self.line(stage, **facts))

    def report(self, stage: str = "", **facts: float) -> None:
        """Log a line now (the end of an epoch or a fold)."""
        self._last_line = self.clock()
        logger.info(self.line(stage, **facts))

    def finish(self, what: str = "done") -> None:
        """Log the total time."""
        logger.info(f"{self.name}: {what} in {duration(self.clock() - self.started)}")


def xgboost_rounds_callback(progress: Progress) -> Any:
    """An XGBoost training callback that advances ``progress`` by one unit per boosting round."""
    from xgboost.callback import TrainingCallback

    class RoundProgress(TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            progress.advance(stage=f"boosting round {epoch + 1}")
            return False  # never stop training

    return RoundProgress()
