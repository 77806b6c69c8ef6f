"""Traffic actuators: where the controller's decisions take effect (local router or KServe).

Each actuator reads its state back from where traffic really is (the split file, the live
InferenceService), so the controller keeps nothing in memory between passes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from serving.router.split import TrafficSplit, read_split, write_split
from trending.rollout.deploy import (
    CanaryState,
    DeployError,
    Mode,
    canary_state,
    check_canary_fields,
    merge_patch,
    promoted,
    rolled_back,
    with_canary,
    with_canary_traffic,
)


class TrafficActuator(Protocol):
    """Moves traffic between the stable and the canary version."""

    def observe(self) -> CanaryState:
        """What is being served now."""

    def start_canary(self, version: int, percent: int) -> None:
        """Roll out ``version`` as the canary with ``percent`` % of the traffic."""

    def set_traffic(self, percent: int) -> None:
        """Give the canary ``percent`` % of the traffic."""

    def promote(self) -> None:
        """Make the canary the stable version with all traffic."""

    def rollback(self) -> None:
        """Send all traffic back to the stable version at once and drop the canary."""


class LocalSplitActuator:
    """Rewrites the local router's split file (the router picks changes up on the next request).

    The router cannot start model servers: a canary is rolled out only when the split already
    names an upstream serving that version (``cli.local_canary.LocalCanaryStack.route``).
    """

    def __init__(self, split_path: Path) -> None:
        self.split_path = Path(split_path)

    def current(self) -> TrafficSplit:
        """The split in force."""
        return read_split(self.split_path)

    def observe(self) -> CanaryState:
        """Stable and canary upstream versions and the canary's share."""
        split = self.current()
        canary = split.canary.version if split.canary is not None else None
        return CanaryState(split.stable.version, canary, split.canary_percent)

    def start_canary(self, version: int, percent: int) -> None:
        """Give the canary upstream of ``version`` its first share.

        Raises:
            DeployError: The split has no upstream serving ``version``.
        """
        split = self.current()
        if split.canary is None or split.canary.version != version:
            raise DeployError(
                f"{self.split_path} has no canary upstream serving version {version}; start a "
                "model server for it and route it (run_local_canary does both)"
            )
        self.set_traffic(percent)

    def set_traffic(self, percent: int) -> None:
        """Give the canary ``percent`` % of the traffic."""
        split = self.current()
        if split.canary is None:
            raise DeployError(f"{self.split_path} has no canary upstream; start a canary first")
        write_split(self.split_path, split.model_copy(update={"canary_percent": percent}))

    def promote(self) -> None:
        """The canary server becomes the stable upstream (no restart, it is already warm)."""
        split = self.current()
        if split.canary is None:
            raise DeployError(f"{self.split_path} has no canary upstream to promote")
        shadow = (
            split.shadow if split.shadow and split.shadow.version != split.canary.version else None
        )
        write_split(
            self.split_path,
            TrafficSplit(
                model=split.model,
                stable=split.canary,
                shadow=shadow,
                shadow_percent=split.shadow_percent,
            ),
        )

    def rollback(self) -> None:
        """All traffic to the stable upstream; the canary (and shadowing of it) stops."""
        split = self.current()
        shadow = split.shadow
        if (
            shadow is not None
            and split.canary is not None
            and shadow.version == split.canary.version
        ):
            shadow = None
        write_split(
            self.split_path,
            TrafficSplit(
                model=split.model,
                stable=split.stable,
                shadow=shadow,
                shadow_percent=split.shadow_percent,
            ),
        )


class InferenceServiceApi(Protocol):
    """The calls the KServe actuator makes (``serving.canary.kube.KubeInferenceServiceApi``)."""

    def get(self, name: str, namespace: str) -> dict[str, Any]:
        """The live InferenceService as a dict."""

    def patch(self, name: str, namespace: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Apply a JSON merge patch."""

    def detect_mode(self, isvc: dict[str, Any], configured: str | None = None) -> Mode:
        """The KServe mode the object runs in."""


class KServeActuator:
    """Moves traffic by merge-patching the live InferenceService the chart rendered.

    Every change reads the object, computes the new one with ``trending.rollout.deploy``, and
    sends only the difference plus the ``resourceVersion`` it read (a concurrent writer makes the
    API server answer 409; the change is then recomputed from a fresh read, once).
    """

    def __init__(
        self, api: InferenceServiceApi, name: str, namespace: str, mode: str | None = None
    ) -> None:
        self.api, self.name, self.namespace, self.configured_mode = api, name, namespace, mode
        self.last_patch: dict[str, Any] | None = None

    def _live(self) -> tuple[dict[str, Any], Mode]:
        isvc = self.api.get(self.name, self.namespace)
        mode = self.api.detect_mode(isvc, self.configured_mode)
        check_canary_fields(isvc, mode)  # refuse a canary KServe would silently ignore
        return isvc, mode

    def _change(self, change: Callable[[dict[str, Any], Mode], dict[str, Any]]) -> None:
        from serving.canary.kube import ConflictError

        for attempt in (1, 2):
            live, mode = self._live()
            desired = change(live, mode)
            patch = merge_patch(live, desired)
            if not patch:
                return
            resource_version = (live.get("metadata") or {}).get("resourceVersion")
            if resource_version:
                patch.setdefault("metadata", {})["resourceVersion"] = resource_version
            try:
                self.api.patch(self.name, self.namespace, patch)
            except ConflictError:
                if attempt == 2:
                    raise
                continue
            self.last_patch = patch
            return

    def observe(self) -> CanaryState:
        """Stable and canary versions and the canary's share, from the live object."""
        live, mode = self._live()
        return canary_state(live, mode)

    def start_canary(self, version: int, percent: int) -> None:
        """Pin a canary predictor to ``version`` with ``percent`` % of the traffic."""
        self._change(lambda isvc, mode: with_canary(isvc, mode, version, percent))

    def set_traffic(self, percent: int) -> None:
        """Give the canary ``percent`` % of the traffic."""
        self._change(lambda isvc, mode: with_canary_traffic(isvc, mode, percent))

    def promote(self) -> None:
        """The canary becomes the stable predictor."""
        self._change(promoted)

    def rollback(self) -> None:
        """All traffic back to stable now."""
        self._change(rolled_back)
