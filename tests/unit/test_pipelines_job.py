"""The chart's pipeline Job: its commands, parsed by the `trending` CLI's own parser.

The Job compiles in the cluster with the release's settings (envFrom the ConfigMap), so its
commands carry no pipeline parameter; the only pipeline choice it makes is the accelerator.
"""

from __future__ import annotations

import click
import pytest
import typer
from test_chart import CHART, by_kind, load_values, render

from cli import app


def job_commands(scenario: str) -> dict[str, dict]:
    """container name -> the parameters `trending` parses from its args."""
    (job,) = [
        j
        for j in by_kind(render(load_values(CHART / "ci" / f"{scenario}-values.yaml")), "Job")
        if j["metadata"]["labels"]["app.kubernetes.io/component"] == "pipelines"
    ]
    pod = job["spec"]["template"]["spec"]
    root = typer.main.get_command(app)
    parsed = {}
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        program, group, command, *args = container["args"]
        assert (program, group) == ("trending", "pipeline")
        with click.Context(root) as ctx:
            pipeline = root.get_command(ctx, group)
            sub = pipeline.get_command(ctx, command)
            parsed[container["name"]] = sub.make_context(command, list(args), parent=ctx).params
    return parsed


@pytest.mark.parametrize(
    ("scenario", "accelerator"),
    [("kind", "none"), ("gpu", "nvidia.com/gpu"), ("production", "none")],
)
def test_the_job_uploads_and_schedules_with_no_parameter_and_the_cluster_s_accelerator(
    scenario: str, accelerator: str
) -> None:
    commands = job_commands(scenario)
    assert set(commands) == {"upload", "schedule"}
    for params in commands.values():
        assert params["accelerator"] == accelerator
    assert commands["schedule"]["name"] == "continuous-training"
    assert commands["schedule"]["param"] == []  # every parameter defaults from the settings
