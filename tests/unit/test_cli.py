"""The CLI: help everywhere, settings errors as messages, data commands end to end."""

from __future__ import annotations

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def all_command_paths(command=None, prefix=()):
    command = command or get_command(app)
    yield prefix
    for name, sub in getattr(command, "commands", {}).items():
        yield from all_command_paths(sub, (*prefix, name))


@pytest.mark.parametrize("path", list(all_command_paths()), ids=lambda p: " ".join(p) or "trending")
def test_every_command_has_help(path):
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_bad_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TRENDING_REGISTRY_URI", "ftp://nowhere")
    result = runner.invoke(app, ["data", "snapshots"])
    assert result.exit_code == 2
    assert "must start with file:// or s3://" in result.output


def test_cluster_profile_requires_its_endpoints(monkeypatch):
    monkeypatch.setenv("TRENDING_PROFILE", "cluster")
    result = runner.invoke(app, ["data", "snapshots"])
    assert result.exit_code == 2
    assert "TRENDING_REGISTRY_URI=s3://" in result.output


def test_ingest_then_list_snapshots(monkeypatch, tmp_path):
    monkeypatch.setenv("TRENDING_HOME", str(tmp_path))
    result = runner.invoke(app, ["data", "ingest", "--rows", "40", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "in=40 accepted=40 rejected=0" in result.output
    snapshot = result.output.split()[1].rstrip(":")
    monkeypatch.setenv("COLUMNS", "200")
    listed = runner.invoke(app, ["data", "snapshots"])
    assert snapshot in listed.output


def test_unknown_source_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("TRENDING_HOME", str(tmp_path))
    result = runner.invoke(app, ["data", "ingest", "--source", "ftp"])
    assert result.exit_code == 2
    assert "unknown source 'ftp'" in result.output


def test_submit_to_an_unreachable_host_fails_fast_with_a_clear_message(monkeypatch, tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("TRENDING_HOME", str(tmp_path))
    result = runner.invoke(
        app,
        [
            "pipeline",
            "submit",
            "training",
            "--host",
            f"http://127.0.0.1:{port}",
            "--build-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 1
    assert f"KFP API at http://127.0.0.1:{port} is unreachable" in " ".join(result.output.split())


def test_submit_unknown_pipeline_is_refused(monkeypatch, tmp_path):
    from pipelines.run import PIPELINES

    monkeypatch.setattr("pipelines.run.kfp_client", lambda *a, **k: object())
    result = runner.invoke(
        app, ["pipeline", "submit", "nope", "--host", "http://x", "--build-dir", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert f"unknown pipeline 'nope': choose one of {sorted(PIPELINES)}" in " ".join(
        result.output.split()
    )
