"""Drift detection: fit a detector on the training reference, score windows of live traffic.

A detector is stored inside the model bundle, in ``drift/``, so it travels with the model it
describes::

    drift/config.json          backend, p-value, genre order, sizes, code format version
    drift/text_encoder.npz     TF-IDF vocabulary + idf + TruncatedSVD components (no pickle)
    drift/reference.npz        reduced reference texts, reference predictions, skew features
    drift/alibi/{features,predictions}/   Alibi Detect detectors (``save_detector``), alibi only

Three signals are scored per window:

* ``features``: two-sample Kolmogorov-Smirnov test per SVD component of the model input text,
  Bonferroni-corrected (Alibi ``KSDrift`` or ``scipy.stats.ks_2samp``).
* ``predictions``: chi-square test per genre on the rate at which the model predicts it,
  Bonferroni-corrected (Alibi ``ChiSquareDrift`` or ``scipy.stats.chi2_contingency``).
* ``semantic`` (default with the alibi backend): an MMD permutation test on MiniLM sentence
  embeddings of the model input text (``semantic``): a change in what plots are about that keeps
  the word statistics, which the TF-IDF KS test cannot see.
* skew: the KS distance between the training and serving distributions of plain feature values
  (plot length, review count) — training/serving skew, reported, never a drift verdict.

Backends: ``scipy`` (Apache-2.0/BSD dependencies only, the default) and ``alibi`` (Alibi Detect
0.13, BSL 1.1 — see docs/adr/0008-drift-backends.md). ``alibi_detect`` is imported only inside the
alibi backend, so the scipy backend works without it. Both report the same numbers: the
Bonferroni-adjusted p-value (``min(p) * n_tests``, capped at 1), the largest per-test statistic as
the distance, and drift when the adjusted p-value is below the configured ``p_val``.

Modules: ``encoder`` (text representation, skew features), ``backends`` (the two test
libraries), ``semantic`` (sentence encoder, MMD test), ``detector`` (fit, store in the bundle,
load), ``monitor`` (live windows, scoring).
Everything is re-exported here: import from ``trending.monitoring.drift``.
"""

from trending.monitoring.drift.backends import (
    BACKENDS,
    FEATURE_DETECTOR,
    PREDICTION_DETECTOR,
    AlibiDriftBackend,
    DriftBackend,
    DriftBackendName,
    ScipyDriftBackend,
    TestOutcome,
)
from trending.monitoring.drift.detector import (
    DRIFT_DIR,
    DRIFT_FORMAT_VERSION,
    DriftDetector,
    add_drift_detector,
    fit_drift_detector,
    load_drift_detector,
)
from trending.monitoring.drift.encoder import SKEW_FEATURES, TextEncoder, skew_feature_values
from trending.monitoring.drift.errors import DriftError
from trending.monitoring.drift.monitor import DriftMonitor, DriftResult, DriftWindow, score_window
from trending.monitoring.drift.semantic import (
    SEMANTIC_DETECTOR,
    MMDTest,
    SentenceEncoder,
    median_bandwidth,
)

__all__ = [
    "BACKENDS",
    "DRIFT_DIR",
    "DRIFT_FORMAT_VERSION",
    "FEATURE_DETECTOR",
    "PREDICTION_DETECTOR",
    "SEMANTIC_DETECTOR",
    "SKEW_FEATURES",
    "AlibiDriftBackend",
    "DriftBackend",
    "DriftBackendName",
    "DriftDetector",
    "DriftError",
    "DriftMonitor",
    "DriftResult",
    "DriftWindow",
    "MMDTest",
    "ScipyDriftBackend",
    "SentenceEncoder",
    "TestOutcome",
    "TextEncoder",
    "add_drift_detector",
    "fit_drift_detector",
    "load_drift_detector",
    "median_bandwidth",
    "score_window",
    "skew_feature_values",
]
