"""The local traffic split: which upstream serves stable, canary and shadow, in one JSON file.

The canary controller (``serving.canary.actuators.LocalSplitActuator``) and the CLI rewrite the file
atomically; the router re-reads it when its modification time changes.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trending.rollout.canary import CanaryPolicyError

log = logging.getLogger("trending.router")


class SplitFileError(CanaryPolicyError):
    """The split file is missing or invalid; the message says what to fix.

    A kind of ``CanaryPolicyError``: the split is the local canary's configuration, so callers that
    report policy errors as usage errors (the controller's ``main``, the CLI) report this one too.
    """


class Upstream(BaseModel):
    """A model server the router can send traffic to."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    url: str = Field(pattern=r"^https?://", description="Base URL, e.g. http://127.0.0.1:8081")


class TrafficSplit(BaseModel):
    """Who gets which share of the traffic; the router re-reads it on every change."""

    model_config = ConfigDict(extra="forbid")

    model: str
    stable: Upstream
    canary: Upstream | None = None
    canary_percent: int = Field(0, ge=0, le=100)
    shadow: Upstream | None = None
    shadow_percent: int = Field(
        100, ge=0, le=100, description="Share of stable-served requests mirrored to the shadow."
    )

    @model_validator(mode="after")
    def _check(self) -> TrafficSplit:
        if self.canary is None and self.canary_percent:
            raise ValueError(f"canary_percent={self.canary_percent} but no canary upstream is set")
        for side in (self.canary, self.shadow):
            if side is not None and side.version == self.stable.version:
                raise ValueError(
                    f"version {side.version} is the stable version; canary and shadow must differ"
                )
        return self


def write_split(path: Path, split: TrafficSplit) -> None:
    """Replace the split file atomically (write a sibling, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(split.model_dump_json(indent=2))
    tmp.replace(path)


def read_split(path: Path) -> TrafficSplit:
    """Read and validate the split file.

    Raises:
        SplitFileError: Missing or invalid (the message names the file and the problem).
    """
    path = Path(path)
    if not path.is_file():
        raise SplitFileError(
            f"traffic split file {path} does not exist; start the local canary first "
            "(`trending deploy <version> --canary 10 --local` or run_local_canary)"
        )
    try:
        return TrafficSplit.model_validate_json(path.read_text())
    except ValidationError as exc:
        raise SplitFileError(f"traffic split file {path} is invalid: {exc}") from None


class SplitFile:
    """The split file as the router sees it: re-read when it changes, the last valid one kept."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._mtime: int | None = None
        self._split: TrafficSplit | None = None
        self._warned = False

    def current(self) -> TrafficSplit:
        """The split in force, re-validated after every change of the file.

        A file that turns missing or invalid after a valid one was read leaves the last valid
        split in force (logged), so a bad edit cannot take the router down; writers replace the
        file atomically (:func:`write_split`), so this only happens on a hand edit.

        Raises:
            SplitFileError: No valid split was ever read (at start).
        """
        if self._split is None:  # at start: a missing or invalid file is an error
            self._mtime = self.path.stat().st_mtime_ns if self.path.is_file() else None
            self._split = read_split(self.path)
            return self._split
        mtime: int | None = None
        try:
            mtime = self.path.stat().st_mtime_ns
            if mtime != self._mtime:
                self._split = read_split(self.path)
                self._mtime = mtime
                self._warned = False
        except (OSError, SplitFileError) as exc:
            self._mtime = mtime  # not re-read until the file changes again
            if not self._warned:
                log.warning("keeping the last valid traffic split: %s", exc)
                self._warned = True
        return self._split
