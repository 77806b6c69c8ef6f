"""Two-sample drift tests against a fixed reference: the SciPy (default) and Alibi Detect backends.

Both report the same numbers: the Bonferroni-adjusted p-value (``min(p) * n_tests``, capped at 1),
the largest per-test statistic as the distance, and drift when the adjusted p-value is below the
configured ``p_val``. ``alibi_detect`` is imported only inside the alibi backend, so the scipy
backend works without it (docs/adr/0008-drift-backends.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from trending.monitoring.drift.errors import DriftError

DriftBackendName = Literal["scipy", "alibi"]
BACKENDS: tuple[str, ...] = ("scipy", "alibi")
FEATURE_DETECTOR = "features"
PREDICTION_DETECTOR = "predictions"
PREDICTION_COLUMNS = "prediction_columns.json"


@dataclass(frozen=True)
class TestOutcome:
    """One detector's verdict on one window."""

    p_value: float
    distance: float
    is_drift: bool
    threshold: float


def _bonferroni(p_values: np.ndarray, statistics: np.ndarray, p_val: float) -> TestOutcome:
    p_values = np.nan_to_num(np.asarray(p_values, dtype=np.float64), nan=1.0)
    n = max(len(p_values), 1)
    adjusted = float(min(1.0, float(p_values.min(initial=1.0)) * n))
    distance = float(np.nan_to_num(np.asarray(statistics, dtype=np.float64)).max(initial=0.0))
    return TestOutcome(adjusted, distance, adjusted < p_val, p_val)


class DriftBackend(Protocol):
    """Two-sample tests against a fixed reference; implementations differ only in the library."""

    name: str

    def features(self, window: np.ndarray) -> TestOutcome:
        """Test reduced text features (rows x components) against the reference."""
        ...

    def predictions(self, window: np.ndarray) -> TestOutcome:
        """Test binary predicted-genre rows (rows x genres) against the reference."""
        ...

    def save(self, directory: Path) -> None:
        """Write backend-specific files below ``directory`` (the bundle's ``drift/``)."""
        ...


def _chi2_per_genre(reference: np.ndarray, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy.stats import chi2_contingency

    ref_pos, win_pos = reference.sum(axis=0), window.sum(axis=0)
    p_values, statistics = [], []
    for j in range(reference.shape[1]):
        table = np.array(
            [[ref_pos[j], len(reference) - ref_pos[j]], [win_pos[j], len(window) - win_pos[j]]],
            dtype=np.float64,
        )
        if (table.sum(axis=0) == 0).any():
            p_values.append(1.0)  # the genre is always or never predicted in both: no evidence
            statistics.append(0.0)
            continue
        result = chi2_contingency(table, correction=False)
        p_values.append(float(result.pvalue))
        statistics.append(float(result.statistic))
    return np.array(p_values), np.array(statistics)


@dataclass(frozen=True)
class PredictionColumns:
    """Which genres vary in the reference, and the value of each constant one."""

    varying: tuple[int, ...]
    constant: dict[int, int]
    rows: int

    @classmethod
    def of(cls, y_ref: np.ndarray) -> PredictionColumns:
        """Split the reference's genre columns into varying and constant ones."""
        varies = y_ref.min(axis=0) != y_ref.max(axis=0)
        constant = {int(j): int(y_ref[0, j]) for j in np.flatnonzero(~varies)}
        return cls(tuple(int(j) for j in np.flatnonzero(varies)), constant, len(y_ref))

    def save(self, path: Path) -> None:
        """Write as JSON beside the alibi detectors."""
        path.write_text(
            json.dumps({"varying": self.varying, "constant": self.constant, "rows": self.rows})
        )

    @classmethod
    def load(cls, path: Path) -> PredictionColumns:
        """Read what :meth:`save` wrote."""
        try:
            data = json.loads(path.read_text())
            constant = {int(j): int(v) for j, v in data["constant"].items()}
            return cls(tuple(int(j) for j in data["varying"]), constant, int(data["rows"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DriftError(
                f"{path} is missing or unreadable ({exc}); refit the drift detector"
            ) from None


class ScipyDriftBackend:
    """KS and chi-square tests from SciPy (BSD): the license-clean default."""

    name = "scipy"

    def __init__(self, x_ref: np.ndarray, y_ref: np.ndarray, p_val: float) -> None:
        self.x_ref, self.y_ref, self.p_val = x_ref, y_ref, p_val

    def features(self, window: np.ndarray) -> TestOutcome:
        """Per-component ``ks_2samp``, Bonferroni-corrected."""
        from scipy.stats import ks_2samp

        result = ks_2samp(self.x_ref, window, axis=0)
        return _bonferroni(result.pvalue, result.statistic, self.p_val)

    def predictions(self, window: np.ndarray) -> TestOutcome:
        """Per-genre chi-square on predicted vs not predicted, Bonferroni-corrected."""
        p_values, statistics = _chi2_per_genre(self.y_ref, window)
        return _bonferroni(p_values, statistics, self.p_val)

    def save(self, directory: Path) -> None:
        """Nothing beyond the shared reference arrays."""


class AlibiDriftBackend:
    """Alibi Detect 0.13 ``KSDrift`` and ``ChiSquareDrift`` (BSL 1.1: check your use is allowed).

    ``ChiSquareDrift`` fails on a genre that is constant in the reference and the window (a zero
    expected frequency), which every real model has: a genre it never predicts. So it covers the
    genres that vary in the reference; the constant ones get the same per-genre test as the scipy
    backend, against the constant they had. All genres count in the Bonferroni correction.
    """

    name = "alibi"

    def __init__(
        self,
        feature_detector: Any,
        prediction_detector: Any | None,
        p_val: float,
        columns: PredictionColumns,
    ) -> None:
        self.feature_detector = feature_detector
        self.prediction_detector = prediction_detector
        self.p_val = p_val
        self.columns = columns

    @classmethod
    def fit(cls, x_ref: np.ndarray, y_ref: np.ndarray, p_val: float) -> AlibiDriftBackend:
        """Build both detectors on the (already reduced) reference."""
        try:
            from alibi_detect.cd import ChiSquareDrift, KSDrift
        except ImportError as exc:
            raise DriftError(
                f"drift backend 'alibi' needs alibi-detect (BSL 1.1): {exc}; install it or use "
                "backend 'scipy'"
            ) from None
        columns = PredictionColumns.of(y_ref.astype(np.int64))
        prediction_detector = None
        if columns.varying:
            varying = y_ref[:, list(columns.varying)].astype(np.int64)
            categories = {j: 2 for j in range(varying.shape[1])}
            prediction_detector = ChiSquareDrift(
                varying, p_val=p_val, categories_per_feature=categories
            )
        return cls(
            KSDrift(x_ref, p_val=p_val, correction="bonferroni"),
            prediction_detector,
            p_val,
            columns,
        )

    @classmethod
    def load(cls, directory: Path, p_val: float) -> AlibiDriftBackend:
        """Load the two detectors saved by :meth:`save`."""
        try:
            from alibi_detect.saving import load_detector
        except ImportError as exc:
            raise DriftError(
                f"this bundle's drift detector uses backend 'alibi' but alibi-detect is not "
                f"importable ({exc}); install it or refit the detector with backend 'scipy'"
            ) from None
        columns = PredictionColumns.load(directory / "alibi" / PREDICTION_COLUMNS)
        prediction_path = directory / "alibi" / PREDICTION_DETECTOR
        return cls(
            load_detector(str(directory / "alibi" / FEATURE_DETECTOR)),
            load_detector(str(prediction_path)) if prediction_path.exists() else None,
            p_val,
            columns,
        )

    def _raw(self, detector: Any, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        data = detector.predict(window, return_p_val=True, return_distance=True)["data"]
        return np.atleast_1d(data["p_val"]), np.atleast_1d(data["distance"])

    def features(self, window: np.ndarray) -> TestOutcome:
        """``KSDrift.predict`` on the window."""
        p_values, distances = self._raw(self.feature_detector, window.astype(np.float32))
        return _bonferroni(p_values, distances, self.p_val)

    def predictions(self, window: np.ndarray) -> TestOutcome:
        """``ChiSquareDrift.predict`` on the varying genres, the per-genre test on the others."""
        window = window.astype(np.int64)
        p_values, statistics = [], []
        if self.prediction_detector is not None:
            p, s = self._raw(self.prediction_detector, window[:, list(self.columns.varying)])
            p_values.append(p)
            statistics.append(s)
        if self.columns.constant:
            constant = list(self.columns.constant)
            reference = np.tile(
                [self.columns.constant[j] for j in constant], (self.columns.rows, 1)
            )
            p, s = _chi2_per_genre(reference, window[:, constant])
            p_values.append(p)
            statistics.append(s)
        return _bonferroni(np.concatenate(p_values), np.concatenate(statistics), self.p_val)

    def save(self, directory: Path) -> None:
        """``save_detector`` (config format: ``config.toml`` + ``x_ref.npy``) for both detectors."""
        import logging

        from alibi_detect.saving import save_detector

        logging.getLogger("alibi_detect.saving").setLevel(logging.ERROR)
        save_detector(self.feature_detector, str(directory / "alibi" / FEATURE_DETECTOR))
        if self.prediction_detector is not None:
            save_detector(self.prediction_detector, str(directory / "alibi" / PREDICTION_DETECTOR))
        self.columns.save(directory / "alibi" / PREDICTION_COLUMNS)
