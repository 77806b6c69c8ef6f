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
from cli.processes import flags, running_service
from serving.router.split import TrafficSplit, Upstream, write_split

ROUTER_JOB = "trending-router"


class TrafficGenerator:
    """Sends V1 requests to the router from a thread (and feedback when labels are known).

    Feedback carries ``token`` (the router's, :attr:`LocalCanaryStack.token`) as its bearer token.
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
                instances = [
                    {
                        "title_id": f"{t['title_id']}#{i}",
                        "plot": t["plot"],
                        "reviews": list(t.get("reviews") or []),
                    }
                    for t in batch
                ]
                try:
                    r = client.post(
                        f"{self.url}/v1/models/{self.model}:predict", json={"instances": instances}
                    )
                    self.status_codes[r.status_code] = self.status_codes.get(r.status_code, 0) + 1
                    if self.send_feedback and r.status_code == 200:
                        for t, inst in zip(batch, instances, strict=True):
                            if t.get("genres"):
                                feedback = {"title_id": inst["title_id"], "genres": t["genres"]}
                                client.post(
                                    f"{self.url}/feedback",
                                    headers=self.feedback_headers,
                                    json=feedback,
                                )
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
        write_split(
            self.split_file,
            split_between(self.model, self.upstreams, stable, canary, shadow_percent),
        )


def split_between(
    model: str, upstreams: dict[int, str], stable: int, canary: int | None, shadow_percent: int
) -> TrafficSplit:
    """The split of :meth:`LocalCanaryStack.route` over ``{version: url}``."""
    up = {v: Upstream(version=v, url=u) for v, u in upstreams.items()}
    return TrafficSplit(
        model=model,
        stable=up[stable],
        canary=up[canary] if canary else None,
        shadow=up[canary] if canary and shadow_percent else None,
        shadow_percent=shadow_percent,
    )


def predictor_args(
    model: str, registry_uri: str, version: int, cache: Path, max_instances: int | None = None
) -> list[str]:
    """Flags of ``python -m serving.predictor`` serving one registry version on free ports."""
    return flags(
        model_name=model,
        registry_uri=registry_uri,
        ref=version,
        cache_dir=cache,
        max_instances=max_instances,
        http_port=0,
        grpc_port=0,
    )


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
            cap = (max_instances or {}).get(version)
            server = stack.enter_context(
                running_service(
                    "serving.predictor",
                    predictor_args(model, registry_uri, version, workdir / "cache", cap),
                    workdir / f"predictor-{version}.log",
                    ready_path=f"/v2/models/{model}/ready",
                )
            )
            upstreams[version] = server.url
        token = secrets.token_hex(32)
        token_file = workdir / "router.token"
        token_file.touch()
        token_file.chmod(0o600)  # before the secret goes in
        token_file.write_text(token)
        # The router refuses to start without a valid split: all traffic on the first version.
        write_split(split_file, split_between(model, upstreams, versions[0], None, 0))
        router = stack.enter_context(
            running_service(
                "serving.router",
                flags(split_file=split_file, token_file=token_file, http_port=0),
                workdir / "router.log",
                ready_path="/v2/health/ready",
            )
        )
        result = LocalCanaryStack(model, router.url, split_file, token, None, upstreams)
        if with_prometheus:
            result.prometheus_url = stack.enter_context(
                running_prometheus({ROUTER_JOB: router.address}, workdir / "prometheus")
            )
        yield result
