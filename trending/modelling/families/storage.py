"""Model files in formats that cannot run code when read: JSON and plain numpy arrays.

A bundle comes from an object store that every workload can write to, so no family reads a
pickle (``joblib``, ``torch.save``): arrays go through ``np.savez``/``np.load(allow_pickle=False)``
(object arrays, which would need pickle, are refused on both sides) and everything else through
JSON. See docs/adr/0011-safe-signed-bundles.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON (NaN and Infinity are refused: they are not JSON)."""
    path.write_text(json.dumps(data, allow_nan=False, ensure_ascii=False))


def missing_model_file(path: Path) -> FileNotFoundError:
    """The error for a model file a bundle should hold but does not."""
    return FileNotFoundError(
        f"{path} is missing: the bundle was not written by this version of the model families "
        "(older bundles held pickles, which are never loaded); re-train the model and register "
        "the new bundle"
    )


def read_json(path: Path) -> Any:
    """Read a JSON model file; a missing one is a clear error saying to re-train."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise missing_model_file(path) from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}): the bundle is damaged") from None


def write_arrays(path: Path, **arrays: np.ndarray) -> None:
    """Write numeric arrays into one ``.npz`` file."""
    for name, array in arrays.items():
        if np.asarray(array).dtype == object:
            raise TypeError(f"array {name!r} has dtype object, which only pickle can store")
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def read_arrays(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Read the named arrays of an ``.npz`` file, never unpickling anything."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [n for n in names if n not in data.files]
            if missing:
                raise ValueError(f"{path} lacks arrays {missing}: the bundle is damaged")
            return {n: data[n] for n in names}
    except FileNotFoundError:
        raise missing_model_file(path) from None
