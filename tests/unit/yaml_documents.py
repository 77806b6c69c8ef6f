"""YAML as the unit tests read it: PyYAML's safe loader, on libyaml when PyYAML was built with it.

A rendered chart or a compiled pipeline is a few hundred KB of YAML. The pure-Python parser took
about 0.16 s of CPU per chart render (some 40 renders in the fast tier); libyaml parses the same
documents in a tenth of that. Both build the objects with the same safe constructor.
"""

from __future__ import annotations

from typing import Any

import yaml

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str) -> Any:
    """The one document of ``text`` (None when empty)."""
    return yaml.load(text, Loader=LOADER)


def documents(text: str) -> list[Any]:
    """Every non-empty document of a multi-document string, in order."""
    return [doc for doc in yaml.load_all(text, Loader=LOADER) if doc]
