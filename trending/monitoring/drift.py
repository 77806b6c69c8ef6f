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
* skew: the KS distance between the training and serving distributions of plain feature values
  (plot length, review count) — training/serving skew, reported, never a drift verdict.

Backends: ``scipy`` (Apache-2.0/BSD dependencies only, the default) and ``alibi`` (Alibi Detect
0.13, BSL 1.1 — see docs/adr/0008-drift-backends.md). ``alibi_detect`` is imported only inside the
alibi backend, so the scipy backend works without it. Both report the same numbers: the
Bonferroni-adjusted p-value (``min(p) * n_tests``, capped at 1), the largest per-test statistic as
the distance, and drift when the adjusted p-value is below the configured ``p_val``.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

DRIFT_DIR = "drift"
DRIFT_FORMAT_VERSION = 1
DriftBackendName = Literal["scipy", "alibi"]
BACKENDS: tuple[str, ...] = ("scipy", "alibi")
SKEW_FEATURES: tuple[str, ...] = ("plot_chars", "review_count")
FEATURE_DETECTOR = "features"
PREDICTION_DETECTOR = "predictions"

_TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # noqa: S105 - a regex, not a secret


class DriftError(ValueError):
    """A drift detector that cannot be fitted, loaded or scored; the message says what to fix."""


# ---- text representation ---------------------------------------------------------------------


@dataclass(frozen=True)
class TextEncoder:
    """TF-IDF followed by a truncated SVD, stored as plain arrays (no pickle)."""

    vocabulary: dict[str, int]
    idf: np.ndarray
    components: np.ndarray  # (n_components, n_terms)

    @classmethod
    def fit(cls, texts: Sequence[str], *, n_components: int = 32, seed: int = 7) -> TextEncoder:
        """Fit TF-IDF (unigrams, min_df=2, 5,000 terms) and an SVD with ``n_components``."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(
            token_pattern=_TOKEN_PATTERN, lowercase=True, min_df=2, max_features=5000
        )
        try:
            matrix = vectorizer.fit_transform(list(texts))
        except ValueError as exc:
            raise DriftError(f"cannot fit the text encoder on the reference texts: {exc}") from None
        k = min(n_components, matrix.shape[1] - 1, matrix.shape[0] - 1)
        if k < 1:
            raise DriftError(
                f"the reference texts have {matrix.shape[1]} terms seen twice or more: give more "
                "(and more varied) reference texts"
            )
        svd = TruncatedSVD(n_components=k, random_state=seed).fit(matrix)
        vocabulary = {term: int(i) for term, i in vectorizer.vocabulary_.items()}
        return cls(vocabulary, vectorizer.idf_.astype(np.float64), svd.components_)

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """The reduced representation, float32, one row per text."""
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.preprocessing import normalize

        counts = CountVectorizer(
            token_pattern=_TOKEN_PATTERN, lowercase=True, vocabulary=self.vocabulary
        ).transform(list(texts))
        tfidf = normalize(counts.multiply(self.idf).tocsr(), norm="l2")
        return np.asarray(tfidf @ self.components.T, dtype=np.float32)

    def save(self, path: Path) -> None:
        """Write the encoder as one ``.npz`` (terms ordered by column)."""
        terms = np.array(sorted(self.vocabulary, key=self.vocabulary.__getitem__))
        np.savez(path, terms=terms, idf=self.idf, components=self.components)

    @classmethod
    def load(cls, path: Path) -> TextEncoder:
        """Read an encoder written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            terms = [str(t) for t in data["terms"]]
            return cls({t: i for i, t in enumerate(terms)}, data["idf"], data["components"])


def skew_feature_values(titles: Iterable[tuple[str, Sequence[str]]]) -> dict[str, np.ndarray]:
    """Plain feature values compared for training/serving skew, from (plot, reviews) pairs."""
    rows = [
        (len(plot.strip()), sum(1 for r in reviews if r and r.strip())) for plot, reviews in titles
    ]
    values = np.array(rows, dtype=np.float64).reshape(-1, 2)
    return {name: values[:, i] for i, name in enumerate(SKEW_FEATURES)}


# ---- backends ---------------------------------------------------------------------------------


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
    """Alibi Detect 0.13 ``KSDrift`` and ``ChiSquareDrift`` (BSL 1.1: check your use is allowed)."""

    name = "alibi"

    def __init__(self, feature_detector: Any, prediction_detector: Any, p_val: float) -> None:
        self.feature_detector = feature_detector
        self.prediction_detector = prediction_detector
        self.p_val = p_val

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
        categories = {j: 2 for j in range(y_ref.shape[1])}
        return cls(
            KSDrift(x_ref, p_val=p_val, correction="bonferroni"),
            ChiSquareDrift(y_ref.astype(np.int64), p_val=p_val, categories_per_feature=categories),
            p_val,
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
        return cls(
            load_detector(str(directory / "alibi" / FEATURE_DETECTOR)),
            load_detector(str(directory / "alibi" / PREDICTION_DETECTOR)),
            p_val,
        )

    def _outcome(self, detector: Any, window: np.ndarray) -> TestOutcome:
        data = detector.predict(window, return_p_val=True, return_distance=True)["data"]
        return _bonferroni(
            np.atleast_1d(data["p_val"]), np.atleast_1d(data["distance"]), self.p_val
        )

    def features(self, window: np.ndarray) -> TestOutcome:
        """``KSDrift.predict`` on the window."""
        return self._outcome(self.feature_detector, window.astype(np.float32))

    def predictions(self, window: np.ndarray) -> TestOutcome:
        """``ChiSquareDrift.predict`` on the window."""
        return self._outcome(self.prediction_detector, window.astype(np.int64))

    def save(self, directory: Path) -> None:
        """``save_detector`` (config format: ``config.toml`` + ``x_ref.npy``) for both detectors."""
        import logging

        from alibi_detect.saving import save_detector

        logging.getLogger("alibi_detect.saving").setLevel(logging.ERROR)
        save_detector(self.feature_detector, str(directory / "alibi" / FEATURE_DETECTOR))
        save_detector(self.prediction_detector, str(directory / "alibi" / PREDICTION_DETECTOR))


# ---- the detector -----------------------------------------------------------------------------


@dataclass
class DriftDetector:
    """A fitted detector: the text encoder, the reference, and a backend."""

    genres: list[str]
    encoder: TextEncoder
    backend: DriftBackend
    p_val: float
    skew_reference: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def backend_name(self) -> str:
        """``scipy`` or ``alibi``."""
        return self.backend.name

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """The reduced text representation the feature test compares."""
        return self.encoder.transform(texts)

    def prediction_rows(self, predicted: Sequence[Sequence[str]]) -> np.ndarray:
        """Binary rows (one column per known genre) from lists of predicted genre names."""
        index = {g: j for j, g in enumerate(self.genres)}
        rows = np.zeros((len(predicted), len(self.genres)), dtype=np.int8)
        for i, names in enumerate(predicted):
            for name in names:
                j = index.get(name)
                if j is not None:
                    rows[i, j] = 1
        return rows


def _binarize(scores: np.ndarray, thresholds: Sequence[float] | float) -> np.ndarray:
    limits = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (scores.shape[1],))
    return (scores >= limits).astype(np.int8)


def fit_drift_detector(
    reference_texts: Sequence[str],
    reference_scores: np.ndarray,
    out_dir: Path,
    *,
    genres: Sequence[str],
    thresholds: Sequence[float] | float = 0.5,
    backend: DriftBackendName = "scipy",
    p_val: float = 0.05,
    n_components: int = 32,
    max_reference: int = 2000,
    reference_skew: Mapping[str, Sequence[float]] | None = None,
    seed: int = 7,
) -> Path:
    """Fit a drift detector on the training reference and write it to ``out_dir/drift/``.

    Call it after training and before ``trending.modelling.bundle.write_manifest`` (the manifest checksums
    every file, ``drift/`` included); for a bundle that has a manifest already, use
    :func:`add_drift_detector`.

    Args:
        reference_texts: Model input texts of the reference (``trending.features.featurize.texts_of``).
        reference_scores: The model's scores on them, shape (n, len(genres)), in genre order.
        out_dir: The bundle folder; ``drift/`` is (re)created inside it.
        genres: The genre vocabulary, in score column order.
        thresholds: Per-genre (or one) decision threshold turning scores into predicted genres.
        backend: ``scipy`` (default, permissive licenses) or ``alibi`` (Alibi Detect, BSL 1.1).
        p_val: Significance level of each test after Bonferroni correction.
        n_components: SVD components of the text representation (the KS test runs on each).
        max_reference: Keep at most this many reference rows: bounds the detector's size and
            scoring time. A seeded half of the texts fits the encoder, the other half (up to
            ``max_reference`` rows) is the reference the tests compare against.
        reference_skew: Plain feature values of the reference (``skew_feature_values``), for
            training/serving skew; skipped when not given.
        seed: Seed of the SVD and the sampling.

    Returns:
        The ``drift/`` folder.

    Raises:
        DriftError: Inputs that do not fit together, or too little reference data.
    """
    if backend not in BACKENDS:
        raise DriftError(f"unknown drift backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if not 0.0 < p_val < 1.0:
        raise DriftError(f"p_val must lie in (0, 1), got {p_val}")
    texts = list(reference_texts)
    scores = np.asarray(reference_scores, dtype=np.float64)
    genres = list(genres)
    if scores.ndim != 2 or scores.shape != (len(texts), len(genres)):
        raise DriftError(
            f"reference_scores has shape {scores.shape}; expected ({len(texts)}, {len(genres)}): "
            "one row per reference text, one column per genre"
        )
    if len(texts) < 40:
        raise DriftError(f"{len(texts)} reference texts: give at least 40 (ideally hundreds)")
    # The encoder is fitted on one half and the reference taken from the other: texts the SVD
    # was fitted on project differently from unseen ones, which would look like drift.
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    encoder_rows = order[: len(texts) // 2]
    keep = np.sort(order[len(texts) // 2 :][:max_reference])
    encoder = TextEncoder.fit(
        [texts[i] for i in encoder_rows], n_components=n_components, seed=seed
    )
    texts = [texts[i] for i in keep]
    y_ref = _binarize(scores[keep], thresholds)
    x_ref = encoder.transform(texts)
    skew: dict[str, np.ndarray] = {}
    for name, values in (reference_skew or {}).items():
        array = np.asarray(values, dtype=np.float64)
        if array.shape != (len(reference_texts),):
            raise DriftError(
                f"reference_skew[{name!r}] has shape {array.shape}; expected one value per "
                "reference text"
            )
        skew[name] = array[keep]

    drift_dir = Path(out_dir) / DRIFT_DIR
    if drift_dir.exists():
        shutil.rmtree(drift_dir)
    drift_dir.mkdir(parents=True)
    encoder.save(drift_dir / "text_encoder.npz")
    np.savez(
        drift_dir / "reference.npz",
        x_ref=x_ref,
        y_ref=y_ref,
        **{f"skew_{k}": v for k, v in skew.items()},
    )
    if backend == "alibi":
        AlibiDriftBackend.fit(x_ref, y_ref, p_val).save(drift_dir)
    config = {
        "format_version": DRIFT_FORMAT_VERSION,
        "backend": backend,
        "p_val": p_val,
        "genres": genres,
        "n_reference": len(texts),
        "n_components": int(x_ref.shape[1]),
        "skew_features": sorted(skew),
        "tests": {FEATURE_DETECTOR: "ks", PREDICTION_DETECTOR: "chi2"},
    }
    (drift_dir / "config.json").write_text(json.dumps(config, indent=2))
    return drift_dir


def add_drift_detector(
    bundle_dir: Path,
    reference_frame: Any,
    *,
    backend: DriftBackendName = "scipy",
    p_val: float = 0.05,
    **options: Any,
) -> Path:
    """Fit a detector for an existing bundle and re-write its manifest so it lists ``drift/``.

    The bundle's own model scores the reference frame, so prediction drift compares like with like.

    Args:
        bundle_dir: A bundle with a manifest (``trending.modelling.bundle``).
        reference_frame: Titles with ``plot`` and ``reviews`` columns (the training data).
        backend: ``scipy`` or ``alibi``.
        p_val: Significance level after correction.
        **options: Passed to :func:`fit_drift_detector` (``n_components``, ``max_reference``...).

    Returns:
        The ``drift/`` folder.
    """
    from trending.features.featurize import texts_of
    from trending.modelling.bundle import read_manifest, write_manifest
    from trending.modelling.families.predictor import GenrePredictor

    bundle_dir = Path(bundle_dir)
    predictor = GenrePredictor.from_bundle(bundle_dir)
    texts = texts_of(reference_frame)
    titles = [
        (str(plot), [str(r) for r in (reviews if reviews is not None else [])])
        for plot, reviews in zip(reference_frame["plot"], reference_frame["reviews"], strict=True)
    ]
    drift_dir = fit_drift_detector(
        texts,
        predictor.scores(texts),
        bundle_dir,
        genres=predictor.genres,
        thresholds=predictor.manifest.thresholds,
        backend=backend,
        p_val=p_val,
        reference_skew=skew_feature_values(titles),
        **options,
    )
    write_manifest(bundle_dir, read_manifest(bundle_dir))
    return drift_dir


def load_drift_detector(bundle_dir: Path) -> DriftDetector:
    """Load the detector stored in ``bundle_dir/drift/``.

    Raises:
        DriftError: The bundle has no detector, or it was written by an unknown format.
    """
    drift_dir = Path(bundle_dir) / DRIFT_DIR
    config_path = drift_dir / "config.json"
    if not config_path.is_file():
        raise DriftError(
            f"{bundle_dir} has no drift detector ({DRIFT_DIR}/config.json is missing): fit one "
            "with "
            "trending.monitoring.drift.add_drift_detector(bundle_dir, training_frame)"
        )
    config = json.loads(config_path.read_text())
    if config.get("format_version") != DRIFT_FORMAT_VERSION:
        raise DriftError(
            f"{config_path} has format_version {config.get('format_version')!r}; this code reads "
            f"{DRIFT_FORMAT_VERSION}: refit the detector with this version of trending"
        )
    p_val = float(config["p_val"])
    with np.load(drift_dir / "reference.npz", allow_pickle=False) as data:
        x_ref, y_ref = data["x_ref"], data["y_ref"]
        skew = {k.removeprefix("skew_"): data[k] for k in data.files if k.startswith("skew_")}
    backend: DriftBackend
    if config["backend"] == "alibi":
        backend = AlibiDriftBackend.load(drift_dir, p_val)
    elif config["backend"] == "scipy":
        backend = ScipyDriftBackend(x_ref, y_ref, p_val)
    else:
        raise DriftError(f"{config_path} names unknown backend {config['backend']!r}")
    return DriftDetector(
        genres=list(config["genres"]),
        encoder=TextEncoder.load(drift_dir / "text_encoder.npz"),
        backend=backend,
        p_val=p_val,
        skew_reference=skew,
    )


# ---- windows and scoring ----------------------------------------------------------------------


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
        self.seen_since_score = 0
        self._lock = threading.Lock()

    def add_requests(self, encoded: np.ndarray, skew_rows: np.ndarray) -> None:
        """Append encoded request rows and their skew feature rows."""
        with self._lock:
            self.features.extend(encoded)
            self.skew.extend(skew_rows)
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

    features, skew_rows, predictions = window.snapshot()
    outcomes: dict[str, TestOutcome] = {}
    if features is not None and len(features) >= min_size:
        outcomes[FEATURE_DETECTOR] = detector.backend.features(features)
    if predictions is not None and len(predictions) >= min_size:
        outcomes[PREDICTION_DETECTOR] = detector.backend.predictions(predictions)
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
        encoded = detector.encode([model_input_text(p, r) for p, r in titles])
        skew = skew_feature_values(titles)
        window.add_requests(encoded, np.column_stack([skew[n] for n in SKEW_FEATURES]))
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
