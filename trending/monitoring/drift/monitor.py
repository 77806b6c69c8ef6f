"""Live traffic: bounded windows of requests and responses per version, scored by their detector."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from trending.monitoring.drift.backends import FEATURE_DETECTOR, PREDICTION_DETECTOR, TestOutcome
from trending.monitoring.drift.detector import DriftDetector
from trending.monitoring.drift.encoder import SKEW_FEATURES, skew_feature_values
from trending.monitoring.drift.errors import DriftError
from trending.monitoring.drift.semantic import SEMANTIC_DETECTOR


class DriftWindow:
    """The last ``size`` requests and responses of one model version, in bounded deques.

    Memory bound: each request keeps ``n_components`` float32 values plus one float64 per skew
    feature, each response one int8 per genre, plus Python object overhead (~200 bytes per entry).
    With the defaults (32 components, 19 genres, size 1,000) that is well under 1 MB per version.
    """

    def __init__(self, size: int = 1000) -> None:
        if size < 1:
            raise DriftError(f"window size must be at least 1, got {size}")
        self.size = size
        self.features: deque[np.ndarray] = deque(maxlen=size)
        self.skew: deque[np.ndarray] = deque(maxlen=size)
        self.predictions: deque[np.ndarray] = deque(maxlen=size)
        self.embeddings: deque[np.ndarray] = deque(maxlen=size)  # semantic detector only
        self.seen_since_score = 0
        self._lock = threading.Lock()

    def add_requests(
        self, encoded: np.ndarray, skew_rows: np.ndarray, embeddings: np.ndarray | None = None
    ) -> None:
        """Append encoded request rows, their skew feature rows and (if any) their embeddings."""
        with self._lock:
            self.features.extend(encoded)
            self.skew.extend(skew_rows)
            if embeddings is not None:
                self.embeddings.extend(embeddings)
            self.seen_since_score += len(encoded)

    def add_predictions(self, rows: np.ndarray) -> None:
        """Append binary predicted-genre rows."""
        with self._lock:
            self.predictions.extend(rows)
            self.seen_since_score += len(rows)

    def snapshot(self) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """Copies of (features, skew, predictions), None where empty; resets the new-row count."""
        with self._lock:
            self.seen_since_score = 0
            return (
                np.stack(self.features) if self.features else None,
                np.stack(self.skew) if self.skew else None,
                np.stack(self.predictions) if self.predictions else None,
            )

    def embedded(self) -> np.ndarray | None:
        """A copy of the window's embeddings, None when empty."""
        with self._lock:
            return np.stack(self.embeddings) if self.embeddings else None

    def __len__(self) -> int:
        return max(len(self.features), len(self.predictions))


@dataclass(frozen=True)
class DriftResult:
    """A window's scores: per detector (features, predictions) and per skew feature."""

    window_size: int
    detectors: dict[str, TestOutcome]
    skew: dict[str, float]

    @property
    def is_drift(self) -> bool:
        """Whether any detector flags drift."""
        return any(o.is_drift for o in self.detectors.values())


def score_window(
    detector: DriftDetector, window: DriftWindow, *, min_size: int = 50
) -> DriftResult:
    """Score a window; detectors with fewer than ``min_size`` rows are left out of the result."""
    from scipy.stats import ks_2samp

    embeddings = window.embedded()
    features, skew_rows, predictions = window.snapshot()
    outcomes: dict[str, TestOutcome] = {}
    if features is not None and len(features) >= min_size:
        outcomes[FEATURE_DETECTOR] = detector.backend.features(features)
    if predictions is not None and len(predictions) >= min_size:
        outcomes[PREDICTION_DETECTOR] = detector.backend.predictions(predictions)
    if detector.semantic is not None and embeddings is not None and len(embeddings) >= min_size:
        mmd = detector.semantic.score(embeddings)
        outcomes[SEMANTIC_DETECTOR] = TestOutcome(
            mmd.p_value, mmd.distance, mmd.p_value < detector.p_val, detector.p_val
        )
    skew: dict[str, float] = {}
    if skew_rows is not None and len(skew_rows) >= min_size:
        for j, name in enumerate(SKEW_FEATURES):
            reference = detector.skew_reference.get(name)
            if reference is not None and len(reference):
                skew[name] = float(ks_2samp(reference, skew_rows[:, j]).statistic)
    return DriftResult(len(window), outcomes, skew)


class DriftMonitor:
    """Windows of live traffic per (model, version), scored with each version's detector.

    Detectors come from ``load_detector(model, version)`` (the bundle of that version), loaded once
    and cached; at most ``max_versions`` windows are kept (least recently used dropped first), so
    memory stays bounded at about ``max_versions`` x the bound of one :class:`DriftWindow`.
    """

    def __init__(
        self,
        load_detector: Callable[[str, str], DriftDetector],
        *,
        window_size: int = 1000,
        min_window: int = 50,
        max_versions: int = 4,
    ) -> None:
        if min_window < 2 or min_window > window_size:
            raise DriftError(
                f"min_window must lie in [2, window_size={window_size}], got {min_window}"
            )
        self._load_detector = load_detector
        self.window_size = window_size
        self.min_window = min_window
        self.max_versions = max_versions
        self._detectors: dict[tuple[str, str], DriftDetector] = {}
        self._windows: OrderedDict[tuple[str, str], DriftWindow] = OrderedDict()
        self._lock = threading.Lock()

    def _entry(self, model: str, version: str) -> tuple[DriftDetector, DriftWindow]:
        key = (model, version)
        with self._lock:
            if key in self._windows:
                self._windows.move_to_end(key)
                return self._detectors[key], self._windows[key]
        detector = self._load_detector(model, version)  # slow I/O outside the lock
        with self._lock:
            if key not in self._windows:
                self._detectors[key] = detector
                self._windows[key] = DriftWindow(self.window_size)
                while len(self._windows) > self.max_versions:
                    old, _ = self._windows.popitem(last=False)
                    self._detectors.pop(old, None)
            return self._detectors[key], self._windows[key]

    def observe_requests(
        self, model: str, version: str, titles: Sequence[tuple[str, Sequence[str]]]
    ) -> int:
        """Add request titles (plot, reviews) to the version's window; return how many."""
        from trending.features.featurize import model_input_text

        detector, window = self._entry(model, version)
        texts = [model_input_text(p, r) for p, r in titles]
        skew = skew_feature_values(titles)
        window.add_requests(
            detector.encode(texts),
            np.column_stack([skew[n] for n in SKEW_FEATURES]),
            detector.embed(texts),  # embedded on arrival, so scoring runs only the test
        )
        return len(titles)

    def observe_predictions(
        self, model: str, version: str, predicted: Sequence[Sequence[str]]
    ) -> int:
        """Add the predicted genre lists of a response to the version's window; return how many."""
        detector, window = self._entry(model, version)
        window.add_predictions(detector.prediction_rows(predicted))
        return len(predicted)

    def sizes(self) -> dict[tuple[str, str], int]:
        """Current window sizes."""
        with self._lock:
            return {key: len(w) for key, w in self._windows.items()}

    def score(self, *, only_changed: bool = True) -> dict[tuple[str, str], DriftResult]:
        """Score windows that got rows since the last score (all if not ``only_changed``)."""
        with self._lock:
            entries = [(k, self._detectors[k], w) for k, w in self._windows.items()]
        return {
            key: score_window(detector, window, min_size=self.min_window)
            for key, detector, window in entries
            if window.seen_since_score or not only_changed
        }
