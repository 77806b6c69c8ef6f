"""Continuous training: why a run is wanted, one run per cooldown, launch it, log its bookends.

Whatever asks for a retraining run (a drift alert through Alertmanager, the schedule, new data)
goes through :class:`RetrainCoordinator.request`, which allows one run per model per cooldown:

1. an in-process lock serialises concurrent requests of one process;
2. an index object per model, ``models/<name>/retrain-index/<model>.json``, says when the last
   run started (one read, however long the event log is);
3. claiming that entry by compare-and-swap decides between replicas that read the same entry.

The winner writes ``retrain_requested`` (reason, data window, evidence), launches the run through a
:class:`RunLauncher`, and writes ``retrain_started`` with the run id. A failed launch is recorded as
``retrain_failed`` and releases the claim so the next alert can try again.

Modules: ``request`` (the reasons, the default window per reason, requests and decisions),
``launchers`` (local subprocess, KFP API), ``coordinator`` (de-duplication and cooldown) and
``run_events`` (the run's own ``retrain_started`` / ``retrain_finished`` events).
"""

from trending.rollout.retrain.coordinator import RetrainCoordinator
from trending.rollout.retrain.launchers import (
    CONTINUOUS_TRAINING_COMMAND,
    KfpApiLauncher,
    LocalCommandLauncher,
    RunLauncher,
)
from trending.rollout.retrain.request import (
    DEFAULT_WINDOW,
    RETRAIN_REASONS,
    RetrainDecision,
    RetrainError,
    RetrainReason,
    RetrainRequest,
    describe,
    scheduled_requests,
)
from trending.rollout.retrain.run_events import finish_retraining, start_retraining

__all__ = [
    "CONTINUOUS_TRAINING_COMMAND",
    "DEFAULT_WINDOW",
    "RETRAIN_REASONS",
    "KfpApiLauncher",
    "LocalCommandLauncher",
    "RetrainCoordinator",
    "RetrainDecision",
    "RetrainError",
    "RetrainReason",
    "RetrainRequest",
    "RunLauncher",
    "describe",
    "finish_retraining",
    "scheduled_requests",
    "start_retraining",
]
