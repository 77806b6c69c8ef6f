"""Feature-group ablation: what each group of features adds, and what it costs per title.

The families see one text per title (plot, then reviews). To ask whether every kind of signal
earns its place, this module builds the title's features as separate groups, fits one-vs-rest
logistic scorers (the stacked scorer inside the XGBoost family) with all groups and with each
group left out, on the same seeded folds, and reports per group:

- ``gain``: the mean drop in held-out micro average precision when the group is removed
  (threshold-free, so threshold tuning noise does not hide a small gain), with its per-fold
  values;
- ``noise``: twice the standard error of the paired per-fold drops: a group whose gain is not
  above it is not shown to help;
- the serving cost per title: feature columns it adds, non-zeros per title, and the
  microseconds its featurization takes per title (measured, so for benchmarks, not tests).

``UNHELPFUL_GROUPS_ACCEPTED`` lists groups that may show no gain, each with its reason;
``tests/model/test_ablation.py`` fails any other group that does not help.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, Field
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import average_precision_score
from sklearn.model_selection import KFold

from trending.features.featurize import model_input_text
from trending.genres import GenreVocabulary
from trending.modelling.families.tfidf import OneVsRestLogistic

FEATURE_GROUPS = ("plot_words", "plot_chars", "title", "metadata", "reviews")

# Groups allowed to show no gain over noise, and why (the ablation test fails any other).
UNHELPFUL_GROUPS_ACCEPTED: dict[str, str] = {
    "plot_chars": (
        "character n-grams largely repeat what word n-grams say about whole words; they help on "
        "misspelt or rare word forms, which the data may lack; the default XGBoost leaves them "
        "out for their serving cost (char_features=0)"
    ),
    "title": (
        "synthetic titles ('<name> in <place> #i') carry no genre; what titles add on the TMDb "
        "dev titles is recorded by benchmarks/bench_ablation.py (models.json 'ablation')"
    ),
    "metadata": (
        "kind and release decade are weak priors (synthetic data draws them independently of "
        "genre); the models read only text, so the group is measured, not served"
    ),
    "reviews": (
        "synthetic reviews repeat genre words of their own plot, so they add nothing here; the "
        "TMDb dev titles have no reviews (the group is absent there); TMDb ingests keep up to 10 "
        "reviews per title: re-run the ablation on a reviewed snapshot before relying on them"
    ),
}


# Serving cost budget per group: non-zero feature values per title (what a sparse row costs to
# build, store and score). A group over budget fails tests/model/test_ablation.py.
NONZEROS_BUDGET: dict[str, float] = {
    "plot_words": 400,
    "plot_chars": 3000,
    "title": 40,
    "metadata": 2,
    "reviews": 4000,
}


@dataclass
class _Group:
    """One feature group: how to read its text from the titles and how to vectorize it."""

    name: str
    column: Callable[[pd.DataFrame], list[str]]
    make_vectorizer: Callable[[], TfidfVectorizer]


def _metadata_text(frame: pd.DataFrame) -> list[str]:
    years = frame["year"] if "year" in frame else pd.Series([None] * len(frame))
    kinds = frame["kind"] if "kind" in frame else pd.Series(["movie"] * len(frame))
    tokens = []
    for kind, year in zip(kinds, years, strict=True):
        decade = f"decade_{int(year) // 10 * 10}" if pd.notna(year) else "decade_unknown"
        tokens.append(f"kind_{kind} {decade}")
    return tokens


GROUPS: dict[str, _Group] = {
    "plot_words": _Group(
        "plot_words",
        lambda f: [model_input_text(str(p)) for p in f["plot"]],
        lambda: TfidfVectorizer(
            ngram_range=(1, 2), max_features=50_000, sublinear_tf=True, min_df=2
        ),
    ),
    "plot_chars": _Group(
        "plot_chars",
        lambda f: [model_input_text(str(p)) for p in f["plot"]],
        lambda: TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), max_features=50_000, sublinear_tf=True
        ),
    ),
    "title": _Group(
        "title",
        lambda f: [str(t) if t is not None else "" for t in f["title"]],
        lambda: TfidfVectorizer(ngram_range=(1, 1), sublinear_tf=True, min_df=2),
    ),
    "metadata": _Group(
        "metadata",
        _metadata_text,
        lambda: TfidfVectorizer(token_pattern=r"\S+", use_idf=False, norm=None),  # noqa: S106
    ),
    "reviews": _Group(
        "reviews",
        lambda f: [model_input_text("", list(r) if r is not None else []) for r in f["reviews"]],
        lambda: TfidfVectorizer(ngram_range=(1, 2), max_features=50_000, sublinear_tf=True),
    ),
}


class GroupResult(BaseModel):
    """What one feature group adds and costs."""

    group: str
    present: bool = Field(description="False when the data has nothing for it (e.g. no reviews).")
    gain: float = 0.0
    gain_per_fold: list[float] = Field(default_factory=list)
    noise: float = 0.0
    beneficial: bool = False
    columns: int = 0
    nonzeros_per_title: float = 0.0
    serving_us_per_title: float | None = Field(
        None, description="Featurization time per title, one title at a time (measured)."
    )
    accepted_reason: str | None = None


class AblationReport(BaseModel):
    """The ablation of every feature group on the same folds."""

    metric: str = "micro average precision (held-out folds)"
    folds: int
    rows: int
    seed: int
    full_score: float
    full_score_per_fold: list[float]
    groups: list[GroupResult]

    def failing_groups(self) -> list[str]:
        """Present groups that do not beat noise and are not accepted with a reason."""
        return [
            g.group
            for g in self.groups
            if g.present and not g.beneficial and g.group not in UNHELPFUL_GROUPS_ACCEPTED
        ]

    def over_budget(self) -> list[str]:
        """Groups whose non-zeros per title exceed their NONZEROS_BUDGET."""
        return [
            g.group
            for g in self.groups
            if g.present and g.nonzeros_per_title > NONZEROS_BUDGET.get(g.group, float("inf"))
        ]

    def summary(self) -> dict[str, dict[str, Any]]:
        """Group -> gain, noise and cost, for the model card and the results file."""
        return {
            g.group: {
                "gain": round(g.gain, 4),
                "noise": round(g.noise, 4),
                "beneficial": g.beneficial,
                "columns": g.columns,
                "nonzeros_per_title": round(g.nonzeros_per_title, 1),
                "serving_us_per_title": g.serving_us_per_title,
                **({"reason": g.accepted_reason} if g.accepted_reason else {}),
                **({} if g.present else {"present": False}),
            }
            for g in self.groups
        }


def _present(group: str, frame: pd.DataFrame) -> bool:
    if group == "reviews":
        return "reviews" in frame and bool(frame["reviews"].map(lambda r: len(r) > 0).any())
    if group == "title":
        return "title" in frame and bool(frame["title"].notna().any())
    return True


def _serving_microseconds(group: _Group, vectorizer: TfidfVectorizer, frame: pd.DataFrame) -> float:
    """Featurize titles one at a time, as serving does, and return microseconds per title."""
    sample = frame.head(200)
    texts = group.column(sample)
    started = time.perf_counter()
    for text in texts:
        vectorizer.transform([text])
    return round((time.perf_counter() - started) / max(len(texts), 1) * 1e6, 1)


def run_ablation(
    titles: pd.DataFrame,
    *,
    groups: Sequence[str] = FEATURE_GROUPS,
    folds: int = 3,
    seed: int = 7,
    c: float = 4.0,
    vocabulary: GenreVocabulary | None = None,
    measure_cost: bool = False,
) -> AblationReport:
    """Fit with all groups and with each group removed, on the same folds.

    Args:
        titles: Labelled titles (plot, title, kind, year, reviews, genres).
        groups: The groups to ablate (default: all of FEATURE_GROUPS).
        folds: Seeded K folds; every variant is scored on the same held-out rows.
        seed: Seed of the folds and the scorers.
        c: Inverse regularisation of the logistic scorers.
        vocabulary: Genre vocabulary (default: the 19 TMDb genres).
        measure_cost: Also time each group's featurization per title (benchmarks only).

    Raises:
        ValueError: An unknown group, or too few labelled rows for the folds.
    """
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise ValueError(f"unknown feature group(s) {unknown}; choose from {list(FEATURE_GROUPS)}")
    labelled = titles[titles["genres"].map(len) > 0].reset_index(drop=True)
    if len(labelled) < folds * 10:
        raise ValueError(f"{len(labelled)} labelled rows are too few for {folds} folds")
    if "reviews" not in labelled:
        labelled = labelled.assign(reviews=[[] for _ in range(len(labelled))])
    vocabulary = vocabulary or GenreVocabulary()
    labels = vocabulary.encode(labelled["genres"])
    present = [g for g in groups if _present(g, labelled)]
    texts = {g: GROUPS[g].column(labelled) for g in present}

    scores: dict[str | None, list[float]] = {None: [], **{g: [] for g in present}}
    columns: dict[str, list[int]] = {g: [] for g in present}
    nonzeros: dict[str, list[float]] = {g: [] for g in present}
    costs: dict[str, float | None] = dict.fromkeys(present)
    splitter = KFold(folds, shuffle=True, random_state=seed)
    for fold, (fit_rows, held_rows) in enumerate(splitter.split(labels)):
        blocks_fit, blocks_held = {}, {}
        for g in present:
            vectorizer = GROUPS[g].make_vectorizer()
            blocks_fit[g] = vectorizer.fit_transform([texts[g][i] for i in fit_rows])
            blocks_held[g] = vectorizer.transform([texts[g][i] for i in held_rows])
            columns[g].append(blocks_fit[g].shape[1])
            nonzeros[g].append(blocks_held[g].nnz / max(len(held_rows), 1))
            if measure_cost and fold == 0:
                costs[g] = _serving_microseconds(GROUPS[g], vectorizer, labelled.iloc[held_rows])
        for left_out in [None, *present]:
            kept = [g for g in present if g != left_out]
            y_held = labels[held_rows]
            if kept:
                fit_matrix = sp.hstack([blocks_fit[g] for g in kept]).tocsr()
                held_matrix = sp.hstack([blocks_held[g] for g in kept]).tocsr()
                scorer = OneVsRestLogistic(c=c, seed=seed).fit(fit_matrix, labels[fit_rows])
                held_scores = scorer.predict_proba(held_matrix)
            else:  # nothing left: the genre base rates, what a model without features knows
                held_scores = np.tile(labels[fit_rows].mean(axis=0), (len(held_rows), 1))
            observed = y_held.sum(axis=0) > 0
            scores[left_out].append(
                float(
                    average_precision_score(
                        y_held[:, observed], held_scores[:, observed], average="micro"
                    )
                )
            )
    full = np.array(scores[None])
    results = []
    for g in groups:
        if g not in present:
            results.append(GroupResult(group=g, present=False))
            continue
        drops = full - np.array(scores[g])
        noise = float(2 * drops.std(ddof=1) / np.sqrt(len(drops))) if len(drops) > 1 else 0.0
        gain = float(drops.mean())
        results.append(
            GroupResult(
                group=g,
                present=True,
                gain=gain,
                gain_per_fold=[round(float(d), 5) for d in drops],
                noise=noise,
                beneficial=gain > noise and gain > 0,
                columns=int(np.mean(columns[g])),
                nonzeros_per_title=float(np.mean(nonzeros[g])),
                serving_us_per_title=costs[g],
                accepted_reason=UNHELPFUL_GROUPS_ACCEPTED.get(g),
            )
        )
    return AblationReport(
        folds=folds,
        rows=len(labelled),
        seed=seed,
        full_score=float(full.mean()),
        full_score_per_fold=[round(float(s), 5) for s in full],
        groups=results,
    )
