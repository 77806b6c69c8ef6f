"""Services started side by side never collide: each binds port 0 and reports the port it got."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from cli.processes import flags, listening_ports, running_service
from serving.router.split import TrafficSplit, Upstream, write_split

pytestmark = pytest.mark.integration
MODEL = "genre-classifier"


def _listening(service) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket the service's process listens on."""
    import psutil

    proc = psutil.Process(service.pid)
    connections = getattr(proc, "net_connections", proc.connections)(kind="tcp")
    listening = [c.laddr for c in connections if c.status == psutil.CONN_LISTEN]
    # gRPC listens through an IPv6 socket: 127.0.0.1 shows as ::ffff:127.0.0.1.
    return {(address.ip.removeprefix("::ffff:"), address.port) for address in listening}


def test_two_routers_asked_for_port_0_get_distinct_ports_they_listen_on(tmp_path: Path) -> None:
    split = tmp_path / "split.json"
    stable = Upstream(version=1, url="http://127.0.0.1:9")
    write_split(split, TrafficSplit(model=MODEL, stable=stable))
    token = tmp_path / "token"
    token.write_text("a-router-token-of-32-characters!")
    with ExitStack() as stack:
        routers = [
            stack.enter_context(
                running_service(
                    "serving.router",
                    flags(split_file=split, token_file=token, http_port=0),
                    tmp_path / f"router-{i}.log",
                    ready_path="/v2/health/ready",
                )
            )
            for i in range(2)
        ]
        ports = [router.ports["http"] for router in routers]
        assert ports[0] != ports[1]
        for router in routers:
            # The reported port is the one bound, on loopback only, and it is the router answering.
            assert _listening(router) == {("127.0.0.1", router.ports["http"])}
            assert "trending_router" in httpx.get(f"{router.url}/metrics").text


def test_a_predictor_reports_the_http_and_grpc_ports_it_listens_on(
    trained_bundle: Path, tmp_path: Path
) -> None:
    args = flags(model_name=MODEL, bundle_dir=trained_bundle, http_port=0, grpc_port=0)
    ready = f"/v2/models/{MODEL}/ready"
    with running_service("serving.predictor", args, tmp_path / "p.log", ready_path=ready) as p:
        assert set(p.ports) == {"http", "grpc"}
        assert p.ports["http"] != p.ports["grpc"]
        assert _listening(p) == {("127.0.0.1", p.ports["http"]), ("127.0.0.1", p.ports["grpc"])}
        assert httpx.get(f"{p.url}{ready}").status_code == 200
        import grpc

        channel = grpc.insecure_channel(f"127.0.0.1:{p.ports['grpc']}")
        grpc.channel_ready_future(channel).result(timeout=30)
        channel.close()


def test_a_program_that_cannot_report_its_port_is_found_by_its_socket(tmp_path: Path) -> None:
    from cli.local_monitoring import prometheus_binary, running_prometheus

    if prometheus_binary() is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    with ExitStack() as stack:
        urls = [stack.enter_context(running_prometheus({}, tmp_path / name)) for name in ("a", "b")]
        assert urls[0] != urls[1]
        for url in urls:
            assert httpx.get(f"{url}/-/ready").status_code == 200


def test_listening_ports_is_none_before_the_program_binds(tmp_path: Path) -> None:
    import subprocess
    import sys

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert listening_ports(sleeper) is None
    finally:
        sleeper.kill()
        sleeper.wait()
