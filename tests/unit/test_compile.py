"""Every pipeline compiles to KFP IR with the configured image on every component."""

from __future__ import annotations

import yaml

from pipelines.run import PIPELINES, compile_all


def test_compiled_ir_uses_the_configured_image_everywhere(tmp_path):
    paths = compile_all(tmp_path / "build", "registry.example/trending-components:1.2.3")
    assert {p.stem for p in paths} == set(PIPELINES)
    spec = yaml.safe_load((tmp_path / "build" / "training.yaml").read_text())
    executors = spec["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {
        "registry.example/trending-components:1.2.3"
    }
    # No component installs packages at run time: the image carries the locked environment.
    commands = " ".join(" ".join(e["container"].get("command", [])) for e in executors.values())
    assert "pip install" not in commands
    tasks = spec["root"]["dag"]["tasks"]
    assert {"load-features", "split-dataset", "train-model", "evaluate", "register"} <= set(tasks)
    assert spec["root"]["dag"]["tasks"]["register"]["dependentTasks"] == ["evaluate"]
