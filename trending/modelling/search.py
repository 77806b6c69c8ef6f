"""A small, seeded hyper-parameter search (Optuna) over each family's main parameters.

Each trial fits the family on a seeded fit split of the training rows and scores it on the rest:
per-genre thresholds are tuned on one half of the held-out rows and micro-F1 is measured on the
other, both ways round, and averaged (so a trial is never scored on the rows its thresholds were
tuned on). The sampler is Optuna's TPE with a fixed seed, so the same rows, seed and budget give
the same trials. Parameters the caller fixes are not searched. The trials go into the training
run's record (``RunRecord.search``), and the best of a recorded search on the dev titles is what the
families ship as defaults (benchmarks/results/models.json, key ``search``).

``params_for_training`` is the training pipeline's search step: with a budget of 0 it keeps the
family's defaults (the recorded search's best) and searches nothing; above 0 it searches on the
run's training rows and hands the best parameters to training.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from sklearn.model_selection import train_test_split

from trending.features.featurize import texts_of
from trending.genres import GenreVocabulary
from trending.modelling.evaluation import apply_thresholds, classification_metrics, tune_thresholds
from trending.modelling.families.base import model_family

# A search space: parameter -> ("int", low, high[, step]) | ("float", low, high, "log"|"linear")
# | ("categorical", choices). Only the parameters that move quality; the rest keep defaults.
SearchSpace = dict[str, tuple[Any, ...]]
SEARCH_SPACES: dict[str, SearchSpace] = {
    "xgboost": {
        "c": ("float", 0.5, 16.0, "log"),
        "select_k": ("int", 0, 600, 100),
        "max_depth": ("int", 2, 6),
        "learning_rate": ("float", 0.03, 0.3, "log"),
        "subsample": ("float", 0.6, 1.0, "linear"),
        "colsample_bytree": ("float", 0.5, 1.0, "linear"),
    },
    "linear": {
        "c": ("float", 0.1, 16.0, "log"),
        "ngram_max": ("int", 1, 3),
    },
    "bert": {
        "learning_rate": ("float", 1e-5, 1e-4, "log"),
        "epochs": ("int", 1, 5),
        "head_c": ("float", 0.25, 4.0, "log"),
        "dropout": ("float", 0.0, 0.3, "linear"),
    },
    "prior": {},  # genre base rates: nothing to tune
}


class Trial(BaseModel):
    """One evaluated parameter set."""

    number: int
    params: dict[str, Any]
    micro_f1: float
    seconds: float


class SearchResult(BaseModel):
    """A finished search: every trial and the best one."""

    family: str
    seed: int
    n_trials: int
    rows: int
    objective: str = "micro-F1 on held-out rows, thresholds tuned on the other half (both ways)"
    best_params: dict[str, Any]
    best_micro_f1: float
    trials: list[Trial] = Field(default_factory=list)


def suggest(trial: Any, space: SearchSpace) -> dict[str, Any]:
    """Draw one parameter set from ``space`` with an Optuna trial."""
    params: dict[str, Any] = {}
    for name, spec in space.items():
        kind = spec[0]
        if kind == "int":
            step = spec[3] if len(spec) > 3 else 1
            params[name] = trial.suggest_int(name, spec[1], spec[2], step=step)
        elif kind == "float":
            params[name] = trial.suggest_float(name, spec[1], spec[2], log=spec[3] == "log")
        elif kind == "categorical":
            params[name] = trial.suggest_categorical(name, list(spec[1]))
        else:
            raise ValueError(f"search space of {name!r}: unknown kind {kind!r}")
    return params


def holdout_micro_f1(y_true: np.ndarray, scores: np.ndarray, seed: int) -> float:
    """Micro-F1 with thresholds tuned on one half and measured on the other, both ways."""
    order = np.random.default_rng(seed).permutation(len(y_true))
    halves = np.array_split(order, 2)
    values = []
    for tune_rows, score_rows in (halves, halves[::-1]):
        thresholds = tune_thresholds(y_true[tune_rows], scores[tune_rows])
        predicted = apply_thresholds(scores[score_rows], thresholds)
        values.append(classification_metrics(y_true[score_rows], predicted)["micro_f1"])
    return float(np.mean(values))


def search_family(
    titles: pd.DataFrame,
    family: str,
    *,
    n_trials: int = 10,
    seed: int = 7,
    holdout: float = 0.25,
    fixed_params: dict[str, Any] | None = None,
    space: SearchSpace | None = None,
    vocabulary: GenreVocabulary | None = None,
    progress: Callable[[Trial], None] | None = None,
) -> SearchResult:
    """Search ``family``'s main parameters with a seeded TPE sampler.

    Args:
        titles: Labelled training rows (never the test rows: the search must not see them).
        family: xgboost, linear, bert or prior.
        n_trials: The budget; the first trial is always the family's defaults.
        seed: Seed of the split, the sampler and every model.
        holdout: Share of the rows held out of each fit for scoring.
        fixed_params: Parameters every trial uses (e.g. a short BERT on CPU); a fixed parameter
            is left out of the search space.
        space: The search space (default: ``SEARCH_SPACES[family]``).
        vocabulary: Genre vocabulary (default: the 19 TMDb genres).
        progress: Called after each trial.

    Raises:
        ValueError: Unknown family, a budget below 1, or too few labelled rows.
    """
    import optuna

    if family not in SEARCH_SPACES:
        raise ValueError(f"no search space for family {family!r}; choose {sorted(SEARCH_SPACES)}")
    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}")
    space = SEARCH_SPACES[family] if space is None else space
    # A parameter the caller fixed is not searched: every trial keeps the caller's value.
    space = {k: v for k, v in space.items() if k not in (fixed_params or {})}
    labelled = titles[titles["genres"].map(len) > 0].reset_index(drop=True)
    if len(labelled) < 40:
        raise ValueError(f"{len(labelled)} labelled rows are too few to search on (40 or more)")
    if "reviews" not in labelled:
        labelled = labelled.assign(reviews=[[] for _ in range(len(labelled))])
    vocabulary = vocabulary or GenreVocabulary()
    texts, labels = texts_of(labelled), vocabulary.encode(labelled["genres"])
    fit_rows, score_rows = train_test_split(
        np.arange(len(labels)), test_size=holdout, random_state=seed
    )
    fixed = {"seed": seed, **(fixed_params or {})}
    trials: list[Trial] = []

    def objective(trial: Any) -> float:
        params = suggest(trial, space)
        started = time.perf_counter()
        model = model_family(family)(**{**fixed, **params})
        model.fit([texts[i] for i in fit_rows], labels[fit_rows])
        scores = model.predict_proba([texts[i] for i in score_rows])
        value = holdout_micro_f1(labels[score_rows], np.asarray(scores), seed)
        done = Trial(
            number=trial.number,
            params=params,
            micro_f1=round(value, 5),
            seconds=round(time.perf_counter() - started, 2),
        )
        trials.append(done)
        if progress is not None:
            progress(done)
        return value

    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    if space:
        defaults = getattr(model_family(family)(**fixed), "params", {})
        study.enqueue_trial({k: defaults[k] for k in space if k in defaults})
    study.optimize(objective, n_trials=n_trials if space else 1)
    best = max(trials, key=lambda t: (t.micro_f1, -t.number))
    return SearchResult(
        family=family,
        seed=seed,
        n_trials=len(trials),
        rows=len(labelled),
        best_params=best.params,
        best_micro_f1=best.micro_f1,
        trials=trials,
    )


class SearchStep(BaseModel):
    """The training pipeline's search step: the parameters training gets, and why.

    ``search`` is None when the run searched nothing (a budget of 0): training then gets the
    caller's parameters over the family's defaults, which are the best trial of the recorded
    dev-data search (benchmarks/results/models.json, key ``search``).
    """

    family: str
    n_trials: int
    params: dict[str, Any] = Field(description="What training gets (caller's + best trial).")
    search: SearchResult | None = None


def params_for_training(
    titles: pd.DataFrame | None,
    family: str,
    *,
    n_trials: int,
    seed: int = 7,
    fixed_params: dict[str, Any] | None = None,
) -> SearchStep:
    """The parameters to train ``family`` with: the caller's, or the best of a seeded search.

    Args:
        titles: The run's training rows (never its test rows); unread when ``n_trials`` is 0.
        family: The family to search.
        n_trials: 0 keeps the defaults and searches nothing; above 0, the search budget.
        seed: Seed of the search.
        fixed_params: The caller's parameters: kept as they are and not searched.

    Raises:
        ValueError: A negative budget, an unknown family, or too few rows to search on.
    """
    fixed = dict(fixed_params or {})
    if n_trials < 0:
        raise ValueError(
            f"search_trials must be 0 (keep the recorded defaults) or more, got {n_trials}"
        )
    if n_trials == 0:
        return SearchStep(family=family, n_trials=0, params=fixed)
    if titles is None:
        raise ValueError("a search needs the training rows")
    result = search_family(titles, family, n_trials=n_trials, seed=seed, fixed_params=fixed)
    return SearchStep(
        family=family, n_trials=n_trials, params={**fixed, **result.best_params}, search=result
    )
