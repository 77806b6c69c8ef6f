"""Servers bind first and then say which port they got; local services listen on loopback."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import uvicorn

from cli.processes import flags, port_file_reader
from serving.drift.__main__ import parse as parse_drift
from serving.listening import announce_ports, bound_port, listen
from serving.predictor.__main__ import parse as parse_predictor


def _accepts(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        return True


def test_port_0_twice_gives_two_distinct_ports_each_really_bound() -> None:
    # The old way (bind 0, close, hand the number on) could give both callers one number; a
    # socket kept bound cannot be handed out again while it lives.
    first = listen(uvicorn.Config(app=None, host="127.0.0.1", port=0))
    second = listen(uvicorn.Config(app=None, host="127.0.0.1", port=0))
    try:
        ports = [bound_port(first), bound_port(second)]
        assert ports[0] != ports[1]
        assert all(port > 0 and _accepts(port) for port in ports)
        with pytest.raises(SystemExit):  # uvicorn's own answer to an address in use
            listen(uvicorn.Config(app=None, host="127.0.0.1", port=ports[0]))
    finally:
        first.close()
        second.close()


def test_the_announced_ports_are_what_the_starter_reads(tmp_path: Path) -> None:
    port_file = tmp_path / "run" / "ports.json"
    read = port_file_reader(port_file)
    assert read(None) is None  # type: ignore[arg-type] - not written yet: not listening yet
    announce_ports(port_file, http=41234, grpc=41235)
    assert read(None) == {"http": 41234, "grpc": 41235}  # type: ignore[arg-type]
    assert json.loads(port_file.read_text()) == {"http": 41234, "grpc": 41235}
    assert [p.name for p in port_file.parent.iterdir()] == ["ports.json"]  # no partial file left


@pytest.mark.parametrize(
    ("environ", "host"),
    [
        ({}, "127.0.0.1"),
        ({"TRENDING_PROFILE": "local"}, "127.0.0.1"),
        ({"TRENDING_PROFILE": "cluster"}, "0.0.0.0"),
    ],
)
def test_services_bind_loopback_unless_the_profile_is_cluster(environ, host) -> None:
    drift = parse_drift(["--bundle", "/b"], environ)
    _, predictor = parse_predictor(flags(model_name="m", bundle_dir="/b"), environ)
    assert drift.host == predictor.host == host


def test_an_explicit_host_wins_over_the_profile() -> None:
    drift = parse_drift(["--bundle", "/b", "--host", "::1"], {"TRENDING_PROFILE": "cluster"})
    assert drift.host == "::1"


def test_flags_are_the_programs_own(tmp_path: Path) -> None:
    args = flags(model_name="m", bundle_dir=tmp_path, http_port=0, grpc_port=0, ref=None)
    assert args == [
        "--model_name",
        "m",
        "--bundle_dir",
        str(tmp_path),
        "--http_port",
        "0",
        "--grpc_port",
        "0",
    ]
    parsed, settings = parse_predictor(args, {})
    assert (parsed.http_port, parsed.grpc_port, settings.bundle_dir) == (0, 0, tmp_path)
