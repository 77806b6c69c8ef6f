"""A trained XGBoost ensemble as flat arrays, walked by one numba-compiled loop.

Why: serving scores one title per request, and XGBoost's own ``predict`` costs ~0.3 ms per call
before it walks a tree, ~0.9 ms for the default model's ~1,900 depth-3 trees; this walk takes
~0.06 ms for the same row (benchmarks/results/serving.json, docs/adr/0010-xgboost-tree-walker.md).
Batches are no faster here than in XGBoost: a model gets its walker when it is loaded from a
bundle (serving, evaluating a saved bundle), not after ``fit``.

Only what the XGBoost family trains is understood: numeric splits, one output per tree, a
logistic objective. ``TreeWalker.compile`` returns None for anything else, and the caller keeps
XGBoost's predict; a walker also returns None when its scores differ from XGBoost's on probe
rows, so a future model format cannot change a served score silently.
"""

from __future__ import annotations

import json
import logging

import numba
import numpy as np
from scipy.special import expit
from xgboost import Booster

log = logging.getLogger(__name__)

# Largest difference from XGBoost's scores accepted at compile time (float32 sums in another
# order differ by ~1e-7).
TOLERANCE = 1e-5
_BASE_SCORE_EPS = 1e-6


@numba.njit(nogil=True, cache=False)
def _add_leaf_values(rows, roots, feature, threshold, default_left, left, right, target, out):
    """Add each tree's leaf value for each row to ``out[row, target of the tree]``."""
    for r in range(rows.shape[0]):
        for t in range(roots.shape[0]):
            node = roots[t]
            while left[node] != node:  # leaves point to themselves
                value = rows[r, feature[node]]
                if np.isnan(value):
                    node = left[node] if default_left[node] else right[node]
                elif value < threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            out[r, target[t]] += threshold[node]  # a leaf's "split condition" is its value


class TreeWalker:
    """Per-target probabilities of a binary-logistic XGBoost model, from flat node arrays."""

    def __init__(self, model: dict, rounds: int) -> None:
        learner = model["learner"]
        trees_json = learner["gradient_booster"]["model"]
        n_trees = trees_json["iteration_indptr"][rounds]
        trees = trees_json["trees"][:n_trees]
        sizes = np.array([len(t["left_children"]) for t in trees], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        node_tree_start = np.repeat(starts, sizes)

        def joined(key: str, dtype: type) -> np.ndarray:
            return np.concatenate([np.asarray(t[key], dtype=dtype) for t in trees])

        own = np.arange(int(sizes.sum()), dtype=np.int64)
        left, right = joined("left_children", np.int64), joined("right_children", np.int64)
        leaf = left == -1
        self.left = np.where(leaf, own, left + node_tree_start).astype(np.int32)
        self.right = np.where(leaf, own, right + node_tree_start).astype(np.int32)
        self.feature = joined("split_indices", np.int32)
        self.threshold = joined("split_conditions", np.float32)
        self.default_left = joined("default_left", np.bool_)
        self.roots = starts.astype(np.int32)
        self.target = np.asarray(trees_json["tree_info"][:n_trees], dtype=np.int32)
        params = learner["learner_model_param"]
        self.n_features = int(params["num_feature"])
        base_score = np.asarray(json.loads(params["base_score"]), dtype=np.float64).reshape(-1)
        # XGBoost keeps the base score off 0 and 1 (a genre no training title has).
        base_score = np.clip(base_score, _BASE_SCORE_EPS, 1 - _BASE_SCORE_EPS)
        base_score = np.broadcast_to(base_score, int(params["num_target"]))
        self.base_margin = np.log(base_score / (1 - base_score)).astype(np.float32)

    @classmethod
    def compile(cls, booster: Booster, rounds: int, *, probe_rows: int = 64) -> TreeWalker | None:
        """The walker of ``booster``'s first ``rounds`` rounds, or None where XGBoost must stay.

        None when the model has splits or outputs this walker does not handle, or when its
        scores on probe rows (values on and just below split values, some missing) differ from
        XGBoost's by more than ``TOLERANCE``.
        """
        model = json.loads(booster.save_raw("json"))
        reason = cls._unsupported(model)
        if reason is None:
            walker = cls(model, rounds)
            probes = walker._probe_rows(probe_rows)
            expected = booster.inplace_predict(probes, iteration_range=(0, rounds))
            expected = np.asarray(expected).reshape(len(probes), -1)
            difference = float(np.abs(walker.predict_proba(probes) - expected).max())
            if difference <= TOLERANCE:
                return walker
            reason = f"its scores differ from XGBoost's by {difference:.2g} on probe rows"
        log.warning("XGBoost's own predict serves this model: %s", reason)
        return None

    @staticmethod
    def _unsupported(model: dict) -> str | None:
        learner = model["learner"]
        objective = learner["objective"]["name"]
        if objective != "binary:logistic":
            return f"objective {objective} (only binary:logistic is walked)"
        booster = learner["gradient_booster"]
        if booster.get("name") != "gbtree":
            return f"booster {booster.get('name')} (only gbtree is walked)"
        if "iteration_indptr" not in booster["model"]:
            return "no iteration_indptr in the model (saved by XGBoost < 2)"
        for tree in booster["model"]["trees"]:
            if any(tree["split_type"]):
                return "categorical splits"
            if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
                return "vector leaves (multi_output_tree)"
        return None

    def _probe_rows(self, n: int) -> np.ndarray:
        """Rows whose values sit on, just below and around the split values, some missing."""
        rng = np.random.default_rng(0)
        rows = rng.normal(size=(n, self.n_features)).astype(np.float32)
        inner = self.left != np.arange(len(self.left))
        for row in rows:
            picked = rng.choice(np.flatnonzero(inner), size=min(inner.sum(), self.n_features))
            at = self.threshold[picked]
            row[self.feature[picked]] = np.where(
                rng.random(len(picked)) < 0.5, at, np.nextafter(at, np.float32(-np.inf))
            )
        rows[rng.random(rows.shape) < 0.3] = np.nan
        return rows

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        """Per-target probabilities, shape (rows, targets), float32."""
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.n_features:
            # The compiled loop does not check bounds: a narrower row would be read past its end.
            raise ValueError(f"expected rows of {self.n_features} features, got shape {rows.shape}")
        margins = np.empty((rows.shape[0], len(self.base_margin)), dtype=np.float32)
        margins[:] = self.base_margin
        _add_leaf_values(
            rows,
            self.roots,
            self.feature,
            self.threshold,
            self.default_left,
            self.left,
            self.right,
            self.target,
            margins,
        )
        return expit(margins).astype(np.float32)
