"""Compare a shadow (candidate) answer with the stable answer for the same input.

The shadow never answers a client: the router (locally) or the logger-fed shadow forwarder (on
KServe, see docs/canary.md) sends a copy of each request to the candidate and hands both answers
to :func:`compare_predictions`. The results become the ``trending_shadow_*`` metrics the canary
controller reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class ShadowComparisonError(ValueError):
    """The two answers cannot be compared (different lengths or malformed predictions)."""


@dataclass(frozen=True)
class ShadowComparison:
    """Agreement of a candidate with stable on one request."""

    agreement: float  # mean genre-set Jaccard over the instances, 1 = identical genre sets
    score_delta: float  # mean absolute score difference over instances and shared genres
    instances: int


def jaccard(a: Sequence[str], b: Sequence[str]) -> float:
    """Jaccard similarity of two genre sets; two empty sets agree fully."""
    sa, sb = set(a), set(b)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def _predictions(body: Mapping[str, Any], side: str) -> list[Mapping[str, Any]]:
    predictions = body.get("predictions") if isinstance(body, Mapping) else None
    if not isinstance(predictions, list) or not all(isinstance(p, Mapping) for p in predictions):
        raise ShadowComparisonError(
            f'the {side} answer is not a V1 body {{"predictions": [{{"genres": ..., '
            '"scores": ...}]}'
        )
    return predictions


def compare_predictions(stable: Mapping[str, Any], shadow: Mapping[str, Any]) -> ShadowComparison:
    """Compare two V1 answers (``{"predictions": [{"genres": [...], "scores": {...}}]}``).

    Raises:
        ShadowComparisonError: Either body is malformed or they hold different instance counts.
    """
    left, right = _predictions(stable, "stable"), _predictions(shadow, "shadow")
    if len(left) != len(right) or not left:
        raise ShadowComparisonError(
            f"stable answered {len(left)} instances and the shadow {len(right)}; "
            "they must answer the same non-empty request"
        )
    agreements, deltas = [], []
    for a, b in zip(left, right, strict=True):
        agreements.append(jaccard(a.get("genres", []), b.get("genres", [])))
        sa, sb = a.get("scores", {}) or {}, b.get("scores", {}) or {}
        shared = set(sa) & set(sb)
        if shared:
            deltas.append(sum(abs(float(sa[g]) - float(sb[g])) for g in shared) / len(shared))
    return ShadowComparison(
        agreement=sum(agreements) / len(agreements),
        score_delta=sum(deltas) / len(deltas) if deltas else 0.0,
        instances=len(left),
    )
