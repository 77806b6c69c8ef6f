"""Every container the chart renders is judged by its own program's code, in every ci scenario.

For each workload container (Deployments, Jobs, the InferenceService predictor, canary and
transformer) of each ``charts/trending/ci/*-values.yaml`` scenario:

- its command and args are parsed by the program's own parser and settings class
  (``serving/settings.py``): an unknown argument fails;
- its rendered environment (ConfigMap references resolved from the rendered ConfigMaps, Secret
  references as placeholder values) builds the program's settings: an unknown ``TRENDING_*``
  variable fails;
- every liveness/readiness/startup probe path is a route of the program's app (its FastAPI routes,
  or KServe's REST routes for the predictor and transformer), and every probe port and
  containerPort is a port the program binds.

What KServe's controller adds to an InferenceService container is emulated in ``KSERVE_INJECTS``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from test_chart import CHART, CI_VALUES, NAMESPACE, Obj, by_kind, load_values, render

from serving.settings import platform_variables

SECRET_PLACEHOLDER = "placeholder-secret-value-0123456789"  # long enough for every token check

# What KServe's controller appends to a container's args, by InferenceService component. KServe
# gives a transformer the predictor's address (and the model name the chart already passes);
# predictors are custom containers whose args KServe leaves as rendered.
KSERVE_INJECTS: dict[str, Callable[[Obj], list[str]]] = {
    "predictor": lambda isvc: [],
    "canary": lambda isvc: [],
    "transformer": lambda isvc: [
        "--predictor_host",
        f"{isvc['metadata']['name']}-predictor.{NAMESPACE}",
    ],
}


@dataclass(frozen=True)
class Container:
    """One rendered container and where it came from."""

    where: str
    spec: Obj
    env: dict[str, str]
    extra_args: tuple[str, ...] = ()


# ---------------------------------------------------------------- the programs


@functools.cache
def _kserve_app() -> Any:
    """A FastAPI app with KServe's REST routes, registered by KServe's own RESTServer code."""
    from fastapi import FastAPI
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension
    from kserve.protocol.rest.server import RESTServer

    repository = ModelRepository()
    server = RESTServer.__new__(RESTServer)  # only the route registration, no uvicorn config
    server.dataplane = DataPlane(model_registry=repository)
    server.model_repository_extension = ModelRepositoryExtension(model_registry=repository)
    app = FastAPI()
    server._register_endpoints(app)
    return app


@functools.cache
def _service_app(module: str) -> Any:
    """The FastAPI app ``python -m <module>`` serves, built over empty local stores."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="contract-"))
    uri = root.as_uri()
    if module == "serving.drift":
        from serving.drift.app import DriftService, create_app
        from trending.monitoring.drift import DriftMonitor

        monitor = DriftMonitor(lambda model, version: None, window_size=10, min_window=2)
        return create_app(DriftService(monitor, model_name="m", default_version=None))
    if module == "serving.trigger":
        from serving.trigger.app import TriggerService, create_app
        from trending.rollout.retrain import LocalCommandLauncher, RetrainCoordinator

        coordinator = RetrainCoordinator(
            uri, LocalCommandLauncher(["true"]), cooldown=timedelta(hours=1)
        )
        return create_app(TriggerService(coordinator, SECRET_PLACEHOLDER))
    if module == "serving.signals":
        from serving.signals.__main__ import FreshnessCollector, create_app
        from trending.data.snapshots import SnapshotStore
        from trending.registry import Registry
        from trending.registry.objectstore import open_store

        collector = FreshnessCollector(Registry.from_uri(uri, "m"), SnapshotStore(open_store(uri)))
        return create_app(collector)
    if module == "serving.canary":
        from prometheus_client import CollectorRegistry

        from serving.canary.app import create_app
        from serving.canary.controller import LoopStatus

        return create_app(LoopStatus(), CollectorRegistry(), stale_after_seconds=60)
    raise KeyError(module)


def _serves(app: Any, path: str) -> bool:
    from starlette.routing import Match

    scope = {"type": "http", "path": path, "method": "GET"}
    return any(route.matches(scope)[0] == Match.FULL for route in app.routes)


@dataclass(frozen=True)
class Program:
    """How a program parses its configuration and what it serves."""

    module: str
    app: Callable[[], Any]
    # (args, settings) -> the ports it binds; the first is the HTTP port the probes must use.
    ports: Callable[[argparse.Namespace | None, Any], list[int]]

    def parse(self, argv: list[str], environ: dict[str, str]) -> tuple[Any, Any]:
        """The program's own parse (exit 2 on a usage error, as at start-up)."""
        program = importlib.import_module(f"{self.module}.__main__")
        parsed = program.parse(argv, environ)
        return parsed if isinstance(parsed, tuple) else (None, parsed)


PROGRAMS = {
    "serving.predictor": Program(
        "serving.predictor",
        _kserve_app,
        lambda a, s: [a.http_port, *([a.grpc_port] if a.enable_grpc else [])],
    ),
    "serving.transformer": Program(
        "serving.transformer", _kserve_app, lambda a, s: [a.http_port]
    ),  # no gRPC server: start_model_server(grpc=False)
    "serving.drift": Program(
        "serving.drift", lambda: _service_app("serving.drift"), lambda a, s: [s.port]
    ),
    "serving.trigger": Program(
        "serving.trigger", lambda: _service_app("serving.trigger"), lambda a, s: [s.port]
    ),
    "serving.signals": Program(
        "serving.signals", lambda: _service_app("serving.signals"), lambda a, s: [s.port]
    ),
    "serving.canary": Program(
        "serving.canary", lambda: _service_app("serving.canary"), lambda a, s: [s.port]
    ),
}
# Python programs not judged here (none today). MinIO, Redis, Feast's feature server and the
# pipelines Job (the `trending` CLI) are not `python -m serving.*` programs.
NOT_JUDGED_HERE: set[str] = set()


# ---------------------------------------------------------------- rendered containers


def _resolve_env(container: Obj, objects: list[Obj], where: str) -> dict[str, str]:
    """The container's environment as the kubelet would build it (Secrets as placeholders)."""
    configmaps = {c["metadata"]["name"]: c.get("data") or {} for c in by_kind(objects, "ConfigMap")}
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            assert name in configmaps, f"{where}: envFrom ConfigMap {name} is not rendered"
            env.update(configmaps[name])
        elif "secretRef" in source:
            raise AssertionError(f"{where}: envFrom a Secret hides its variable names")
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item.get("valueFrom") or {}
        if "configMapKeyRef" in ref:
            key = ref["configMapKeyRef"]
            data = configmaps.get(key["name"])
            assert data is not None and key["key"] in data, f"{where}: {item['name']} -> {key}"
            env[item["name"]] = data[key["key"]]
        else:  # secretKeyRef, fieldRef, resourceFieldRef
            env[item["name"]] = SECRET_PLACEHOLDER
    return env


def _pod_containers(obj: Obj) -> Iterator[tuple[str, Obj, tuple[str, ...]]]:
    """(where, container, args KServe adds) of every container of a workload object."""
    name = f"{obj['kind']}/{obj['metadata']['name']}"
    if obj["kind"] == "InferenceService":
        spec = obj["spec"]
        components = [("predictor", spec["predictor"]), ("transformer", spec.get("transformer"))]
        components += [("canary", entry["predictor"]) for entry in spec.get("canary") or []]
        for component, pod in components:
            for container in (pod or {}).get("containers") or []:
                extra = tuple(KSERVE_INJECTS[component](obj))
                yield f"{name}/{component}/{container['name']}", container, extra
        return
    if obj["kind"] == "CronJob":
        pod = obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    else:
        pod = obj["spec"]["template"]["spec"]
    for container in (pod.get("initContainers") or []) + (pod.get("containers") or []):
        yield f"{name}/{container['name']}", container, ()


def workload_containers(objects: list[Obj]) -> list[Container]:
    """Every container of every workload in a rendered scenario."""
    kinds = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "InferenceService"}
    return [
        Container(where, spec, _resolve_env(spec, objects, where), extra)
        for obj in objects
        if obj["kind"] in kinds
        for where, spec, extra in _pod_containers(obj)
    ]


def program_of(container: Obj) -> tuple[str | None, list[str]]:
    """The ``python -m <module>`` a container runs and the rest of its arguments."""
    argv = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    if len(argv) >= 3 and argv[0] in {"python", "python3"} and argv[1] == "-m":
        return argv[2], argv[3:]
    return None, argv


# ---------------------------------------------------------------- the check


def _port_number(container: Obj, port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
    if port not in named:
        raise AssertionError(f"probe port {port!r} names no containerPort")
    return int(named[port])


def contract_problems(container: Container) -> list[str]:
    """What in this rendered container its program refuses or does not serve (empty: agrees)."""
    module, argv = program_of(container.spec)
    program = PROGRAMS[module]  # type: ignore[index]
    argv = [*argv, *container.extra_args]
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            args, settings = program.parse(argv, container.env)
    except SystemExit as exc:
        message = stderr.getvalue().strip() or str(exc.code)
        return [f"{module} refuses its rendered configuration: {message}"]
    problems = []
    if settings.host not in {"0.0.0.0", "::"}:
        problems.append(
            f"binds {settings.host}: the pod's probes and Service reach only a server on all "
            "interfaces (TRENDING_PROFILE=cluster or --host 0.0.0.0)"
        )
    ports = program.ports(args, settings)
    for port in container.spec.get("ports") or []:
        if port["containerPort"] not in ports:
            problems.append(f"containerPort {port['containerPort']} is not bound (binds {ports})")
    app = program.app()
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = (container.spec.get(kind) or {}).get("httpGet")
        if probe is None:
            continue
        try:
            number = _port_number(container.spec, probe["port"])
        except AssertionError as exc:
            problems.append(f"{kind}: {exc}")
            continue
        if number != ports[0]:
            problems.append(f"{kind} port {number} is not the HTTP port {ports[0]}")
        if not _serves(app, probe["path"]):
            problems.append(f"{kind} path {probe['path']} is not a route of {module}")
    return problems


# ---------------------------------------------------------------- the tests


@functools.cache
def _scenario(name: str) -> tuple[Container, ...]:
    return tuple(workload_containers(render(load_values(CHART / "ci" / f"{name}-values.yaml"))))


SCENARIOS = [path.name.removesuffix("-values.yaml") for path in CI_VALUES]


def _cases() -> list[Any]:
    cases = []
    for name in SCENARIOS:
        for container in _scenario(name):
            module, _ = program_of(container.spec)
            marks = []
            if module in NOT_JUDGED_HERE:
                marks = [pytest.mark.skip(reason=f"{module} is not on serving/settings.py")]
            if module is None or module not in PROGRAMS | dict.fromkeys(NOT_JUDGED_HERE):
                continue
            cases.append(pytest.param(container, id=f"{name}:{container.where}", marks=marks))
    return cases


@pytest.mark.parametrize("container", _cases())
def test_every_rendered_service_container_agrees_with_its_program(container: Container) -> None:
    assert contract_problems(container) == []


def test_every_service_program_runs_somewhere_in_the_scenarios() -> None:
    seen = {program_of(c.spec)[0] for name in SCENARIOS for c in _scenario(name)}
    assert set(PROGRAMS) <= seen, f"not rendered by any scenario: {set(PROGRAMS) - seen}"


def test_unknown_python_programs_are_not_silently_skipped() -> None:
    modules = {program_of(c.spec)[0] for name in SCENARIOS for c in _scenario(name)}
    python_modules = {m for m in modules if m is not None}
    assert python_modules <= set(PROGRAMS) | NOT_JUDGED_HERE


def test_service_containers_get_only_variables_some_program_reads() -> None:
    """The settings ConfigMap carries platform variables only; the rest are per program."""
    configmap = next(
        c
        for c in by_kind(render(load_values(CHART / "ci" / "kind-values.yaml")), "ConfigMap")
        if c["metadata"]["name"].endswith("-settings")
    )
    trending = {key for key in configmap["data"] if key.startswith("TRENDING_")}
    assert trending and trending <= platform_variables()


# ------------------------------------------------- the check can fail (mutated containers)


def _kind_container(suffix: str) -> Container:
    found = [c for c in _scenario("kind") if c.where.endswith(suffix)]
    assert len(found) == 1, [c.where for c in _scenario("kind")]
    return found[0]


def _mutated(container: Container, **changes: Any) -> Container:
    import copy

    spec = copy.deepcopy(container.spec)
    env = dict(container.env)
    if "rename_arg" in changes:
        old, new = changes["rename_arg"]
        spec["args"] = [new if a == old else a for a in spec["args"]]
    if "rename_env" in changes:
        old, new = changes["rename_env"]
        env[new] = env.pop(old)
    if "probe_path" in changes:
        spec["readinessProbe"]["httpGet"]["path"] = changes["probe_path"]
    if "container_port" in changes:
        spec["ports"][0]["containerPort"] = changes["container_port"]
    return Container(container.where, spec, env, container.extra_args)


@pytest.mark.parametrize(
    ("suffix", "changes", "expected"),
    [
        (
            "predictor/kserve-container",
            {"rename_arg": ("--ref", "--alias")},
            "unrecognized arguments: --alias",
        ),
        (
            "drift-detector/drift-detector",
            {"rename_env": ("TRENDING_DEFAULT_VERSION", "TRENDING_REGISTRY_ALIAS")},
            "unknown variable(s) TRENDING_REGISTRY_ALIAS",
        ),
        (
            "retrain-trigger/retrain-trigger",
            {"rename_env": ("TRENDING_TRIGGER_TOKEN", "TRENDING_TRIGGER_TOKN")},
            "unknown variable(s) TRENDING_TRIGGER_TOKN",
        ),
        (
            "signals/signals",
            {"probe_path": "/ready"},
            "readinessProbe path /ready is not a route of serving.signals",
        ),
        (
            "transformer/kserve-container",
            {"probe_path": "/v2/health/readyz"},
            "readinessProbe path /v2/health/readyz is not a route",
        ),
        (
            "predictor/kserve-container",
            {"container_port": 9090},
            "containerPort 9090 is not bound",
        ),
    ],
)
def test_a_renamed_argument_variable_path_or_port_fails_the_check(
    suffix: str, changes: dict[str, Any], expected: str
) -> None:
    container = _kind_container(suffix)
    assert contract_problems(container) == []
    problems = contract_problems(_mutated(container, **changes))
    assert any(expected in problem for problem in problems), problems


def test_a_rendered_variable_the_settings_configmap_lacks_fails_resolution() -> None:
    container = _kind_container("drift-detector/drift-detector")
    spec = dict(container.spec)
    spec["envFrom"] = [{"configMapRef": {"name": "trending-settingz"}}]
    with pytest.raises(AssertionError, match="trending-settingz is not rendered"):
        _resolve_env(spec, render(load_values(CHART / "ci" / "kind-values.yaml")), "drift")
