"""The export-time gate of a quantized variant: its scores against the fp32 model's.

A family that can serve a quantized variant (BERT: int8 dynamic quantization of the encoder's
Linear layers on CPU) scores its validation rows both ways before the bundle is written; the
variant is recorded in the bundle only when :func:`compare_quantized` passes, so the registry
never holds a quantized model that was not checked against its fp32 self.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

from trending.modelling.evaluation import apply_thresholds, classification_metrics
from trending.modelling.gate_checks import GateCheck


class QuantizationLimits(BaseModel):
    """How far a quantized variant may drift from the same model in fp32."""

    max_f1_loss: float = Field(
        0.005,
        ge=0,
        le=1,
        description="Micro-F1 the variant may lose on the validation rows, same thresholds.",
    )
    max_score_difference: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Largest per-genre score difference allowed on any validation row: a bound "
        "against a broken variant; the micro-F1 loss is the measure of quality (per-channel int8 "
        "moved single scores by up to 0.11 on the dev fold while losing 0.005 micro-F1).",
    )


def compare_quantized(
    fp32_scores: np.ndarray,
    quantized_scores: np.ndarray,
    y_true: np.ndarray,
    thresholds: Sequence[float],
    limits: QuantizationLimits | None = None,
) -> GateCheck:
    """Pass when the quantized scores lose little micro-F1 and move no score far.

    Args:
        fp32_scores: The fp32 model's scores, shape (rows, genres).
        quantized_scores: The quantized variant's scores on the same rows.
        y_true: The rows' multi-hot labels.
        thresholds: Per-genre thresholds applied to both (tuned on the fp32 scores).
        limits: The bounds; ``QuantizationLimits()`` when None.

    Returns:
        A gate check named ``quantization``; ``observed`` is the micro-F1 lost.
    """
    limits = limits or QuantizationLimits()
    fp32, quantized = np.asarray(fp32_scores), np.asarray(quantized_scores)
    if fp32.shape != quantized.shape or fp32.shape[0] == 0:
        return GateCheck(
            name="quantization",
            passed=False,
            message=f"cannot compare fp32 scores {fp32.shape} with quantized {quantized.shape}: "
            "score the same validation rows with both variants",
        )
    f1 = {
        name: classification_metrics(y_true, apply_thresholds(scores, list(thresholds)))["micro_f1"]
        for name, scores in (("fp32", fp32), ("int8", quantized))
    }
    loss = f1["fp32"] - f1["int8"]
    largest = float(np.max(np.abs(fp32 - quantized)))
    passed = loss <= limits.max_f1_loss and largest <= limits.max_score_difference
    return GateCheck(
        name="quantization",
        passed=passed,
        observed=round(loss, 6),
        required=limits.max_f1_loss,
        message=f"int8 micro-F1 {f1['int8']:.4f} vs fp32 {f1['fp32']:.4f} on {fp32.shape[0]} "
        f"rows (loss {loss:+.4f}, at most {limits.max_f1_loss}); largest score difference "
        f"{largest:.4f} (at most {limits.max_score_difference})"
        + ("" if passed else ": the bundle keeps fp32"),
    )
