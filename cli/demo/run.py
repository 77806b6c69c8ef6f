"""What one demo run carries from step to step: its settings, state folder and findings."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from cli.story import DriftSample
from trending.registry import Registry
from trending.settings import Settings


@dataclass
class DemoRun:
    """One run of the demo: a fresh state folder and what the report will show.

    Attributes:
        settings: The user's settings with ``home`` moved to the demo's folder and the registry
            inside it.
        registry: The demo's registry.
        drift: Drift-service scores seen on the way, for the report's chart.
        gate: Each gate decision's reasons, by the run that made it.
        begun: When the run started (``time.monotonic``).
    """

    settings: Settings
    registry: Registry
    drift: list[DriftSample] = field(default_factory=list)
    gate: dict[str, list[str]] = field(default_factory=dict)
    begun: float = field(default_factory=time.monotonic)

    @classmethod
    def fresh(cls, base: Settings) -> DemoRun:
        """A run in ``<home>/demo``, emptied first, with the registry inside it."""
        home = (base.home / "demo").resolve()
        shutil.rmtree(home, ignore_errors=True)
        settings = base.model_copy(update={"home": home, "registry_uri": None})
        return cls(settings, Registry.from_uri(settings.resolved_registry_uri, settings.model_name))

    @property
    def home(self) -> Path:
        """The demo's state folder."""
        return self.settings.home

    @property
    def logs(self) -> Path:
        """Where every process the demo starts writes its log."""
        return self.home / "logs"

    @property
    def model(self) -> str:
        """The model's name (registry and endpoint)."""
        return self.settings.model_name
