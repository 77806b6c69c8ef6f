"""Traffic actuators: where the controller's decisions take effect (local router or KServe)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from serving.router.split import TrafficSplit, read_split, write_split
from trending.rollout.deploy import (
    DeployError,
    Mode,
    canary_state,
    check_canary_fields,
    for_apply,
    promoted,
    rolled_back,
    with_canary_traffic,
)


class TrafficActuator(Protocol):
    """Moves traffic between the stable and the canary version."""

    def set_traffic(self, percent: int) -> None:
        """Give the canary ``percent`` % of the traffic."""

    def promote(self) -> None:
        """Make the canary the stable version with all traffic."""

    def rollback(self) -> None:
        """Send all traffic back to the stable version at once and drop the canary."""


class LocalSplitActuator:
    """Rewrites the local router's split file (the router picks changes up on the next request)."""

    def __init__(self, split_path: Path) -> None:
        self.split_path = Path(split_path)

    def current(self) -> TrafficSplit:
        """The split in force."""
        return read_split(self.split_path)

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
            TrafficSplit(model=split.model, stable=split.canary, shadow=shadow,
                         shadow_percent=split.shadow_percent),
        )  # fmt: skip

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
            TrafficSplit(model=split.model, stable=split.stable, shadow=shadow,
                         shadow_percent=split.shadow_percent),
        )  # fmt: skip


class InferenceServiceApi(Protocol):
    """The two calls the KServe actuator needs (``serving.canary.kube.KubeInferenceServiceApi``)."""

    def get(self, name: str, namespace: str) -> dict[str, Any]:
        """The live InferenceService as a dict."""

    def apply(self, body: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply ``body``."""


class KServeActuator:
    """Moves traffic by patching the InferenceService (spec.canary or canaryTrafficPercent)."""

    def __init__(
        self,
        api: InferenceServiceApi,
        name: str,
        namespace: str,
        mode: Mode,
        *,
        dry_run: bool = False,
    ) -> None:
        self.api, self.name, self.namespace, self.mode, self.dry_run = (
            api,
            name,
            namespace,
            mode,
            dry_run,
        )
        self.last_applied: dict[str, Any] | None = None

    def _live(self) -> dict[str, Any]:
        isvc = self.api.get(self.name, self.namespace)
        check_canary_fields(isvc, self.mode)  # refuse a canary KServe would silently ignore
        return isvc

    def _apply(self, isvc: dict[str, Any]) -> None:
        self.last_applied = for_apply(isvc)
        self.api.apply(self.last_applied, dry_run=self.dry_run)

    def canary(self) -> tuple[int | None, int]:
        """(canary version, percent) of the live object."""
        return canary_state(self._live(), self.mode)

    def set_traffic(self, percent: int) -> None:
        """Give the canary ``percent`` % of the traffic."""
        self._apply(with_canary_traffic(self._live(), self.mode, percent))

    def promote(self) -> None:
        """The canary becomes the stable predictor."""
        self._apply(promoted(self._live(), self.mode))

    def rollback(self) -> None:
        """All traffic back to stable now."""
        self._apply(rolled_back(self._live(), self.mode))
