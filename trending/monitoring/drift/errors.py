"""The error every part of drift detection raises; its message says what to fix."""

from __future__ import annotations


class DriftError(ValueError):
    """A drift detector that cannot be fitted, loaded or scored; the message says what to fix."""
