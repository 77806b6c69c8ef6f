"""`trending pipeline submit` runs the newest uploaded version with no flag but --host.

The KFP API's answers are kfp_server_api models, as kfp.Client returns them.
"""

from __future__ import annotations

from typing import Any

import kfp_server_api as api
import pytest
from typer.testing import CliRunner

from cli import app
from pipelines.run import PipelineNotUploadedError, submit_uploaded

runner = CliRunner()


class RecordingClient:
    """The kfp.Client calls submit_uploaded makes, answered with the API's own models."""

    def __init__(self, versions: list[str], pipeline_id: str | None = "p-1") -> None:
        self.pipeline_id = pipeline_id
        self.versions = versions
        self.runs: list[dict[str, Any]] = []

    def get_pipeline_id(self, name: str) -> str | None:
        return self.pipeline_id if name == "training" else None

    def list_pipeline_versions(self, pipeline_id: str, **query: Any):
        assert query["sort_by"] == "created_at desc"  # newest first
        return api.V2beta1ListPipelineVersionsResponse(
            pipeline_versions=[
                api.V2beta1PipelineVersion(pipeline_id=pipeline_id, pipeline_version_id=v)
                for v in self.versions[: query["page_size"]]
            ]
        )

    def create_experiment(self, name: str) -> api.V2beta1Experiment:
        return api.V2beta1Experiment(experiment_id=f"e-{name}", display_name=name)

    def run_pipeline(self, **request: Any) -> api.V2beta1Run:
        self.runs.append(request)
        return api.V2beta1Run(run_id="r-1")


def test_submit_runs_the_newest_uploaded_version_with_its_defaults():
    client = RecordingClient(["v-newest", "v-older"])
    assert submit_uploaded(client, "training", {}) == "r-1"
    (request,) = client.runs
    assert request["pipeline_id"] == "p-1" and request["version_id"] == "v-newest"
    assert request["experiment_id"] == "e-trending" and request["params"] == {}


@pytest.mark.parametrize("client", [RecordingClient([]), RecordingClient(["v"], pipeline_id=None)])
def test_nothing_uploaded_says_how_to_upload(client):
    with pytest.raises(PipelineNotUploadedError, match="install the chart"):
        submit_uploaded(client, "training", {})
    assert client.runs == []


def test_cli_submit_needs_only_the_host_and_types_overrides(monkeypatch, tmp_path):
    client = RecordingClient(["v-1"])
    monkeypatch.setattr("pipelines.run.kfp_client", lambda *a, **k: client)
    monkeypatch.setenv("TRENDING_HOME", str(tmp_path))
    result = runner.invoke(app, ["pipeline", "submit", "training", "--host", "http://kfp"])
    assert result.exit_code == 0, result.output
    assert "submitted training: run r-1" in result.output
    result = runner.invoke(
        app, ["pipeline", "submit", "training", "--host", "http://kfp", "--param", "seed=3"]
    )
    assert client.runs[-1]["params"] == {"seed": 3}
