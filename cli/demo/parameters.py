"""The demo's knobs: training parameters, gate overrides, the drift it injects, canary timing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from trending.data.synthetic import DriftKnobs

# BERT on a 2-core CPU: one epoch capped at a few optimizer steps keeps the demo in minutes (it is
# trained and evaluated for real, but cannot win at this size; the pipeline default is 3 epochs).
DEMO_BERT = {"epochs": 1, "max_length": 64, "max_steps": 8}
# The drift detector the demo fits: Alibi Detect (KS, chi-square, MMD on plot embeddings), as the
# chart does. Alibi Detect is BSL 1.1: free for non-production use; production use needs a licence
# from Seldon. "scipy" selects the Apache-2.0/BSD tests.
DEMO_DRIFT_BACKEND = "alibi"
DRIFT_BACKEND_NOTE = {
    "alibi": "Alibi Detect (BSL 1.1: free for non-production use; production needs Seldon's licence)",
    "scipy": "SciPy tests (Apache-2.0/BSD)",
}
DEMO_PARAMS = {
    "bert_params_json": json.dumps(DEMO_BERT),
    "robustness_cases": "50",
    "drift_backend": DEMO_DRIFT_BACKEND,
}
# The demo's changes to the gate: robustness is measured and reported, not gated, and a candidate
# may trail the linear baseline by up to 0.01 micro-F1. XGBoost fails the directional:horror check
# on most splits of the synthetic data (its trees leave the Horror score unchanged when "haunted
# house" is appended), and on 1,200 synthetic titles (~0.97 micro-F1) XGBoost and the linear
# baseline are within +-0.005 of each other depending on the split; either would stop the story
# at step 3 on some runs. The demo prints every check that the default policy would fail.
DEMO_GATE = {"min_robustness_pass_rate": 0.0, "baseline_margin": -0.01}
# What changes after the drift onset: unseen words, uniform genre priors, longer plots.
DRIFT = DriftKnobs(vocabulary_shift=0.3, genre_prior_shift=1.0, text_length_scale=1.5)
DRIFT_ONSET = datetime(2024, 3, 1, tzinfo=UTC)
# Labelled titles that arrive after the onset (the retraining run's drift_selected window). With
# 500 + 500 the retrained XGBoost loses to production on micro-F1 on some splits (too few rows);
# with 1,000 + 500 it wins on micro- and macro-F1 on every split tried (+0.04 / +0.05).
RECENT_DRIFTED, RECENT_AS_BEFORE = 1000, 500
WINDOW = 300  # drift-service window (requests' titles)
# Canary: production thresholds for errors and model quality; windows and request minimums
# shortened to the demo's time scale, latency not judged (a shared 2-core box says nothing).
CANARY_POLICY: dict[str, Any] = {
    "steps": [25, 50],
    "window_seconds": 10,
    "settle_seconds": 2,
    "min_requests": 20,
    "max_holds": 4,
    "max_p95_latency_ratio": 20,
    "latency_slack_seconds": 5,
}
