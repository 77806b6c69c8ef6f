"""The local canary stack: two ModelServers, the router, Prometheus, and a traffic generator.

Used by ``cli.canary.run_local_canary`` (``make demo``) and the integration tests.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from cli.local_monitoring import running_prometheus
from cli.processes import free_port, running_service
from serving.router.split import TrafficSplit, Upstream, write_split

ROUTER_JOB = "trending-router"


# Bearer tokens of the routers this process started, by router URL: a TrafficGenerator pointed at
# one of them sends its feedback with the token without being handed it.
_ROUTER_TOKENS: dict[str, str] = {}


class TrafficGenerator:
    """Sends V1 requests to the router from a thread (and feedback when labels are known).

    Feedback carries ``token`` as its bearer token; without one, the token of a router that
    :func:`local_canary_stack` started at ``url``.
    """

    def __init__(
        self,
        url: str,
        model: str,
        titles: list[dict],
        *,
        rate_per_second: float = 20.0,
        batch: int = 4,
        send_feedback: bool = False,
        token: str | None = None,
    ) -> None:
        if not titles:
            raise ValueError("the traffic generator needs at least one title")
        self.url, self.model, self.titles = url.rstrip("/"), model, titles
        self.interval = 1.0 / rate_per_second
        self.send_feedback = send_feedback
        token = token or _ROUTER_TOKENS.get(self.url)
        self.feedback_headers = {"authorization": f"Bearer {token}"} if token else {}
        self.batch = batch
        self.sent = 0
        self.status_codes: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10.0) as client:
            i = 0
            while not self._stop.is_set():
                batch = [self.titles[(i + k) % len(self.titles)] for k in range(self.batch)]
                instances = [{"title_id": f"{t['title_id']}#{i}", "plot": t["plot"],
                              "reviews": list(t.get("reviews") or [])} for t in batch]  # fmt: skip
                try:
                    r = client.post(
                        f"{self.url}/v1/models/{self.model}:predict", json={"instances": instances}
                    )
                    self.status_codes[r.status_code] = self.status_codes.get(r.status_code, 0) + 1
                    if self.send_feedback and r.status_code == 200:
                        for t, inst in zip(batch, instances, strict=True):
                            if t.get("genres"):
                                client.post(f"{self.url}/feedback", headers=self.feedback_headers,
                                            json={"title_id": inst["title_id"],
                                                  "genres": list(t["genres"])})  # fmt: skip
                except httpx.HTTPError:
                    self.status_codes[0] = self.status_codes.get(0, 0) + 1
                self.sent += 1
                i += self.batch
                self._stop.wait(self.interval)

    def start(self) -> TrafficGenerator:
        """Start sending."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sending and wait for the thread."""
        self._stop.set()
        self._thread.join(timeout=15)


@dataclass
class LocalCanaryStack:
    """URLs and files of a running local stack (``token``: the router's bearer token)."""

    model: str
    router_url: str
    split_file: Path
    token: str
    prometheus_url: str | None
    upstreams: dict[int, str] = field(default_factory=dict)

    def route(self, stable: int, canary: int | None = None, *, shadow_percent: int = 0) -> None:
        """Route all traffic to ``stable``; ``canary`` gets 0 % until the controller moves it.

        With ``shadow_percent`` the canary also receives that share of stable's requests as
        shadow copies (answers compared, never returned).
        """
        up = {v: Upstream(version=v, url=u) for v, u in self.upstreams.items()}
        write_split(self.split_file, TrafficSplit(
            model=self.model, stable=up[stable], canary=up[canary] if canary else None,
            shadow=up[canary] if canary and shadow_percent else None, shadow_percent=shadow_percent,
        ))  # fmt: skip


def predictor_args(model: str, registry_uri: str, version: int, port: int, cache: Path,
                   max_instances: int | None = None) -> list[str]:  # fmt: skip
    """Flags of ``python -m serving.predictor`` serving one registry version on loopback."""
    args = ["--model_name", model, "--registry_uri", registry_uri, "--ref", str(version),
            "--http_port", str(port), "--grpc_port", str(free_port()), "--cache_dir", str(cache)]  # fmt: skip
    if max_instances is not None:
        args += ["--max_instances", str(max_instances)]
    return args


@contextmanager
def local_canary_stack(
    *,
    model: str,
    registry_uri: str,
    versions: list[int],
    workdir: Path,
    with_prometheus: bool = True,
    max_instances: dict[int, int] | None = None,
) -> Iterator[LocalCanaryStack]:
    """Start one ModelServer per version, the router (all traffic on the first) and Prometheus.

    Args:
        model: Model name.
        registry_uri: Registry the servers load their versions from.
        versions: Versions to serve; the first is routed as stable until ``route`` is called.
        workdir: Logs, split file, Prometheus data.
        with_prometheus: Also run Prometheus scraping the router every second.
        max_instances: Per-version batch limit (tests inject errors with 0).
    """
    if not versions:
        raise ValueError("give at least one version to serve")
    workdir.mkdir(parents=True, exist_ok=True)
    split_file = workdir / "split.json"
    with ExitStack() as stack:
        upstreams: dict[int, str] = {}
        for version in versions:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            cap = (max_instances or {}).get(version)
            stack.enter_context(running_service(
                "serving.predictor",
                predictor_args(model, registry_uri, version, port, workdir / "cache", cap),
                f"{url}/v2/models/{model}/ready", workdir / f"predictor-{version}.log",
            ))  # fmt: skip
            upstreams[version] = url
        router_port = free_port()
        router_url = f"http://127.0.0.1:{router_port}"
        token = secrets.token_hex(32)
        token_file = workdir / "router.token"
        token_file.touch()
        token_file.chmod(0o600)  # before the secret goes in
        token_file.write_text(token)
        result = LocalCanaryStack(model, router_url, split_file, token, None, upstreams)
        result.route(versions[0])
        stack.enter_context(running_service(
            "serving.router", ["--split_file", str(split_file), "--token_file", str(token_file),
                               "--http_port", str(router_port)],
            f"{router_url}/v2/health/ready", workdir / "router.log",
        ))  # fmt: skip
        _ROUTER_TOKENS[router_url] = token
        stack.callback(_ROUTER_TOKENS.pop, router_url, None)
        if with_prometheus:
            result.prometheus_url = stack.enter_context(
                running_prometheus({ROUTER_JOB: f"127.0.0.1:{router_port}"}, workdir / "prometheus")
            )
        yield result
