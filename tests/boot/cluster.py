"""Start what the chart renders as its pods would run, as local processes (the boot test harness).

Each pod gets what the kubelet would give it, and nothing the chart does is emulated:

- its own network namespace (``ip netns``) on one bridge, with its own address, so every pod can
  bind ``0.0.0.0:8080`` as it does on a cluster. Service names resolve through a generated
  ``/etc/hosts`` to the address of the pod the Service selects (Service port = container port in
  this chart; there is no kube-proxy);
- the image's filesystem as its Dockerfile builds it (:mod:`images`), the rest of the root
  read-only (bubblewrap), the pod's UID/GID, only its declared volumes writable (emptyDir and
  volumeClaimTemplates: a temporary folder bound at the mountPath);
- the rendered command/args/env/workingDir, ``envFrom`` and ``valueFrom`` resolved against the
  rendered ConfigMaps and Secrets plus the Secrets a platform engineer creates (docs/kubernetes.md);
- real backing services for what the cluster or the world provides: moto's S3 server for MinIO
  or the external S3 endpoint, Redis from Debian for an external Redis.

What KServe's controller adds to an InferenceService's pods is the one emulated part:
:data:`KSERVE_CONTROLLER`.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from images import VENV, Image, build_rootfs, dockerfile_for

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "trending"
RELEASE = NAMESPACE = "trending"
Obj = dict[str, Any]

# What KServe's controller adds to an InferenceService's containers (kserve 0.15, Standard mode).
# Each flag is appended only when the rendered args lack it, as the controller does. Service names
# are the ones the controller creates; a canary predictor gets its own here (on a cluster it is a
# second Deployment behind the same Service). The controller also starts a storage initializer
# when a component sets storageUri (the chart does not: the predictor reads the registry itself),
# and an agent sidecar for ``logger`` (the chart sets none: the predictors send request events to
# the drift detector themselves, with the drift token).
KSERVE_CONTROLLER: dict[str, dict[str, Any]] = {
    "predictor": {
        "service": "{isvc}-predictor",
        "args": {"--model_name": "{isvc}", "--http_port": "8080"},
    },
    "canary": {
        "service": "{isvc}-predictor-canary",
        "args": {"--model_name": "{isvc}", "--http_port": "8080"},
    },
    "transformer": {
        "service": "{isvc}-transformer",
        # The predictor's Service listens on 80 -> 8080; without kube-proxy the pod port is used.
        "args": {
            "--model_name": "{isvc}",
            "--predictor_host": "{isvc}-predictor.{ns}.svc.cluster.local:8080",
            "--http_port": "8080",
        },
    },
}

# The Secrets a platform engineer creates before ``helm install`` (docs/kubernetes.md, "With Helm"):
# value naming the Secret -> (the name on a dev cluster, its keys). Each is named by its
# ``existingSecret`` value; left empty with ``credentials.generate`` (kind), it is the
# ``<release>-<component>`` Secret hack/cluster-up.sh creates. Values are random per run, except
# the bundle public key: the half of a key pair made with openssl as the docs do
# (:func:`signing_key_pair`), whose private half signs the seeded versions as the pipeline would.
PLATFORM_SECRETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "s3.existingSecret": (f"{RELEASE}-s3", ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")),
    "featureStore.redis.existingSecret": (f"{RELEASE}-redis", ("REDIS_PASSWORD",)),
    "retrainTrigger.existingSecret": (
        f"{RELEASE}-retrain-trigger",
        ("TRENDING_TRIGGER_TOKEN",),
    ),
    "driftDetector.existingSecret": (f"{RELEASE}-drift-token", ("TRENDING_DRIFT_TOKEN",)),
    "driftDetector.feedback.existingSecret": (
        f"{RELEASE}-drift-feedback",
        ("TRENDING_FEEDBACK_TOKEN",),
    ),
    "bundleSigning.existingSecret": (
        f"{RELEASE}-bundle-public-key",
        ("TRENDING_BUNDLE_PUBLIC_KEY",),
    ),
}

# Third-party images and what stands in for them here.
MINIO_IMAGE = "quay.io/minio/minio"
REDIS_IMAGE = "docker.io/library/redis"  # runs its rendered command with Debian's redis-server


def scenario_values(values_file: Path, overrides: Obj | None = None) -> Obj:
    """A scenario's values file with ``overrides`` (dotted keys) applied: what ``-f``/``--set`` give."""
    values = yaml.safe_load(values_file.read_text()) or {}
    for dotted, value in (overrides or {}).items():
        node = values
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return values


def merged_values(values: Obj, defaults: Obj | None = None) -> Obj:
    """``values`` over the chart's values.yaml (Helm's coalescing, for maps)."""
    base = defaults if defaults is not None else yaml.safe_load((CHART / "values.yaml").read_text())
    out = dict(base)
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged_values(value, out[key])
        else:
            out[key] = value
    return out


def render(values: Obj) -> list[Obj]:
    """The chart's objects for a scenario's values, rendered by the Helm v4 engine."""
    import helm_python as helm

    helm.disable_logging()
    with helm.Chart.load(CHART) as chart:
        files = chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return [
        obj
        for path, text in sorted(files.items())
        if path.endswith((".yaml", ".yml"))
        for obj in yaml.safe_load_all(text)
        if obj
    ]


# ---------------------------------------------------------------- the pods the chart renders


@dataclass
class Workload:
    """One pod the chart asks for (one replica is enough to boot it)."""

    name: str  # e.g. Deployment/trending-drift-detector, InferenceService/genre-classifier/canary
    kind: str
    labels: dict[str, str]
    pod: Obj  # the pod spec
    init_containers: list[Obj]
    containers: list[Obj]
    hostnames: list[str] = field(default_factory=list)
    claim_templates: list[str] = field(default_factory=list)
    netns: str = ""
    ip: str = ""

    @property
    def image(self) -> str:
        """The main container's image."""
        return self.containers[0]["image"]

    @property
    def is_job(self) -> bool:
        """Runs to completion."""
        return self.kind == "Job"


def _fqdns(service: str, namespace: str = NAMESPACE) -> list[str]:
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def workloads(objects: list[Obj]) -> list[Workload]:
    """Every pod the rendered objects create, with the Service names that reach it."""
    out: list[Workload] = []
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind in ("Deployment", "StatefulSet", "Job"):
            template = obj["spec"]["template"]
            pod = template["spec"]
            claims = [c["metadata"]["name"] for c in obj["spec"].get("volumeClaimTemplates", [])]
            out.append(
                Workload(
                    f"{kind}/{name}",
                    kind,
                    template["metadata"].get("labels", {}),
                    pod,
                    pod.get("initContainers", []),
                    pod["containers"],
                    claim_templates=claims,
                )
            )
        elif kind == "InferenceService":
            spec = obj["spec"]
            parts = [(c, spec[c]) for c in ("transformer", "predictor") if c in spec]
            parts += [("canary", c["predictor"]) for c in spec.get("canary", [])]
            for component, part in parts:
                table = KSERVE_CONTROLLER[component]
                containers = [dict(c) for c in part["containers"]]
                main = containers[0]
                args = list(main.get("args", []))
                for flag, value in table["args"].items():
                    if flag not in args and not any(a.startswith(f"{flag}=") for a in args):
                        args += [flag, value.format(isvc=name, ns=NAMESPACE)]
                main["args"] = args
                if "storageUri" in part or "storageUri" in main:
                    raise NotImplementedError(
                        f"InferenceService/{name} {component}: storageUri needs KServe's storage "
                        "initializer, which the harness does not emulate"
                    )
                workload = Workload(
                    f"InferenceService/{name}/{component}",
                    "InferenceService",
                    part.get("labels", {}),
                    part,
                    [],
                    containers,
                )
                workload.hostnames = _fqdns(table["service"].format(isvc=name))
                out.append(workload)
            entry = "transformer" if "transformer" in spec else "predictor"
            next(
                w for w in out if w.name == f"InferenceService/{name}/{entry}"
            ).hostnames += _fqdns(name)
    for service in (o for o in objects if o["kind"] == "Service"):
        selector = service["spec"].get("selector", {})
        for workload in out:
            if selector and selector.items() <= workload.labels.items():
                workload.hostnames += _fqdns(service["metadata"]["name"])
    return out


def secrets_of(objects: list[Obj], created: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Rendered Secrets (decoded) plus the ones the platform engineer created."""
    out = {name: dict(data) for name, data in created.items()}
    for obj in objects:
        if obj["kind"] == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in obj.get("data", {}).items()}
            out[obj["metadata"]["name"]] = data | obj.get("stringData", {})
    return out


def signing_key_pair(folder: Path) -> tuple[str, str]:
    """(private PEM, public PEM) made as docs/kubernetes.md "Secrets" makes them (openssl)."""
    private, public = folder / "bundle-signing.pem", folder / "bundle-signing.pub"
    for command in (
        ["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(private)],
        ["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)],
    ):
        subprocess.run(command, check=True, capture_output=True)
    return private.read_text(), public.read_text()


def platform_secrets(
    values: Obj, objects: list[Obj], given: dict[str, str] | None = None
) -> dict[str, dict[str, str]]:
    """The Secrets of :data:`PLATFORM_SECRETS` a scenario needs and the chart does not render.

    ``given`` holds key values that are not random tokens (the bundle public key).
    """
    given = given or {}
    merged = merged_values(values)
    rendered = {o["metadata"]["name"] for o in objects if o["kind"] == "Secret"}
    out: dict[str, dict[str, str]] = {}
    for dotted, (dev_name, keys) in PLATFORM_SECRETS.items():
        node: Any = merged
        for key in dotted.split("."):
            node = node.get(key, {}) if isinstance(node, dict) else {}
        name = node or (dev_name if merged.get("credentials", {}).get("generate") else None)
        if name and name not in rendered:
            out[name] = {key: given.get(key) or secrets.token_hex(16) for key in keys}
    return out


class MissingReferenceError(LookupError):
    """A pod refers to a ConfigMap/Secret (key) that does not exist: the kubelet would not start it."""


def container_env(
    container: Obj,
    image_env: dict[str, str],
    config_maps: dict[str, dict[str, str]],
    secret_data: dict[str, dict[str, str]],
    pod_ip: str,
) -> dict[str, str]:
    """The environment the kubelet gives a container (image ENV, envFrom, env, ``$(VAR)``)."""
    env = dict(image_env)
    sources = {"configMapRef": config_maps, "secretRef": secret_data}
    for item in container.get("envFrom", []):
        for ref_kind, store in sources.items():
            if ref_kind in item:
                ref = item[ref_kind]["name"]
                if ref not in store:
                    if item[ref_kind].get("optional"):
                        continue
                    raise MissingReferenceError(f"{ref_kind} {ref} does not exist")
                env.update({item.get("prefix", "") + k: v for k, v in store[ref].items()})
    fields = {
        "metadata.namespace": NAMESPACE,
        "metadata.name": "pod-0",
        "status.podIP": pod_ip,
        "spec.nodeName": "boot-node",
    }
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = re.sub(
                r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                lambda m: env.get(m.group(1), m.group(0)),
                str(item["value"]),
            )
            continue
        source = item.get("valueFrom", {})
        for ref_kind, store in (("secretKeyRef", secret_data), ("configMapKeyRef", config_maps)):
            if ref_kind in source:
                ref = source[ref_kind]
                if ref["key"] not in store.get(ref["name"], {}):
                    if ref.get("optional"):
                        break
                    raise MissingReferenceError(
                        f"env {item['name']}: {ref_kind} {ref['name']}/{ref['key']} does not exist"
                    )
                env[item["name"]] = store[ref["name"]][ref["key"]]
        if "fieldRef" in source:
            env[item["name"]] = fields[source["fieldRef"]["fieldPath"]]
    return env


def container_command(container: Obj, image: Image | None, env: dict[str, str]) -> list[str]:
    """command/args over the image's ENTRYPOINT/CMD, ``$(VAR)`` expanded as the kubelet does."""
    entrypoint = image.entrypoint if image else []
    cmd = image.cmd if image else []
    if "command" in container:
        words = container["command"] + container.get("args", [])
    elif "args" in container:
        words = entrypoint + container["args"]
    else:
        words = entrypoint + cmd
    return [
        re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), w)
        for w in words
    ]


# ---------------------------------------------------------------- network: one netns per pod


class PodNetwork:
    """A bridge and one network namespace per pod (addresses 10.250.N.2, .3, ...; 10.249.N.x for the next network)."""

    _instances = itertools.count()

    def __init__(self) -> None:
        # Unique per network in this process: a namespace the previous scenario left (a process
        # still inside keeps it, and its veth, alive) never collides with the next one's names.
        instance = next(self._instances) % 10
        self.tag = f"{os.getpid() % 100000}{instance}"
        self.bridge = f"tnb{self.tag}"
        self.subnet = f"10.{250 - instance}.{os.getpid() % 200 + 20}"
        self._next = itertools.count(2)
        self.namespaces: list[str] = []

    @staticmethod
    def _ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, text=True)

    def __enter__(self) -> PodNetwork:
        self._ip("link", "add", self.bridge, "type", "bridge")
        self._ip("addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        self._ip("link", "set", self.bridge, "up")
        return self

    def add(self) -> tuple[str, str]:
        """A new namespace; returns (its name, its address)."""
        n = next(self._next)
        ns, veth = f"tnb{self.tag}-{n}", f"tv{self.tag}x{n}"
        self._ip("netns", "add", ns)
        self.namespaces.append(ns)
        self._ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self._ip("link", "set", veth, "master", self.bridge, "up")
        self._ip("-n", ns, "addr", "add", f"{self.subnet}.{n}/24", "dev", "eth0")
        self._ip("-n", ns, "link", "set", "eth0", "up")
        self._ip("-n", ns, "link", "set", "lo", "up")
        return ns, f"{self.subnet}.{n}"

    def __exit__(self, *exc: object) -> None:
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], check=False, capture_output=True)


# ---------------------------------------------------------------- processes


@dataclass
class Process:
    """One started container (or backing service) and where its output goes."""

    name: str
    command: list[str]
    popen: subprocess.Popen
    log: Path

    def tail(self, lines: int = 15) -> str:
        """The last lines of its output."""
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s (the process group it leads)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)


def _top_level_binds(skip: set[str]) -> list[str]:
    """``--ro-bind /x /x`` for every top-level entry of the host root (symlinks recreated)."""
    args: list[str] = []
    for entry in sorted(Path("/").iterdir()):
        if entry.name in skip:
            continue
        if entry.is_symlink():
            args += ["--symlink", os.readlink(entry), str(entry)]
        elif entry.is_dir():
            args += ["--ro-bind", str(entry), str(entry)]
    return args


@dataclass
class Sandbox:
    """How one container runs: filesystem binds, user, working directory, hosts file."""

    rootfs: Path | None  # the image tree (None: the host's root, for third-party images)
    volumes: dict[str, Path]  # mountPath -> writable folder
    hosts_file: Path
    uid: int
    gid: int
    workdir: str

    def bwrap(self, netns: str, command: list[str]) -> list[str]:
        """The full command line: enter the pod's netns, then bubblewrap."""
        image_dirs = sorted(p.name for p in self.rootfs.iterdir()) if self.rootfs else []
        args = ["nsenter", f"--net=/run/netns/{netns}", "/usr/bin/bwrap"]
        args += _top_level_binds({"dev", "proc", "tmp", *image_dirs})
        for name in image_dirs:
            args += ["--ro-bind", str(self.rootfs / name), f"/{name}"]
        args += ["--dev", "/dev", "--proc", "/proc"]
        for mount_path, folder in sorted(self.volumes.items()):
            args += ["--bind", str(folder), mount_path]
        if self.rootfs is not None:
            # The image venv's packages are symlinks into this checkout's .venv; a checkout under a
            # folder the sandbox replaces (/tmp, /opt, /app) would leave them dangling.
            venv = str(VENV.resolve())
            args += ["--ro-bind", venv, venv]
        args += ["--ro-bind", str(self.hosts_file), "/etc/hosts", "--remount-ro", "/"]
        args += [
            "--uid",
            str(self.uid),
            "--gid",
            str(self.gid),
            "--unshare-user",
            "--unshare-pid",
            "--chdir",
            self.workdir,
            "--",
            *command,
        ]
        return args


def start(name: str, command: list[str], env: dict[str, str], log_dir: Path) -> Process:
    """Start a command in its own process group; output to ``log_dir/<name>.log``."""
    log = log_dir / (re.sub(r"[^\w.-]+", "_", name) + ".log")
    with log.open("wb") as out:
        popen = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Process(name, command, popen, log)


# ---------------------------------------------------------------- probes


def _port(container: Obj, port: Any) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for item in container.get("ports", []):
        if item.get("name") == port:
            return int(item["containerPort"])
    raise LookupError(f"probe port {port!r} is not a named port of container {container['name']}")


def probe_once(probe: Obj, container: Obj, ip: str, exec_command: Any) -> tuple[bool, str]:
    """One probe attempt as the kubelet makes it; (passed, what happened)."""
    try:
        if "httpGet" in probe:
            get = probe["httpGet"]
            url = f"http://{ip}:{_port(container, get['port'])}{get.get('path', '/')}"
            with urllib.request.urlopen(url, timeout=3) as response:
                return 200 <= response.status < 400, f"GET {url} -> {response.status}"
        if "tcpSocket" in probe:
            port = _port(container, probe["tcpSocket"]["port"])
            with socket.create_connection((ip, port), timeout=3):
                return True, f"tcp {ip}:{port} open"
        if "exec" in probe:
            result = exec_command(probe["exec"]["command"])
            return result.returncode == 0, f"exec -> {result.returncode} {result.stdout[-200:]}"
        if "grpc" in probe:
            port = _port(container, probe["grpc"]["port"])
            with socket.create_connection((ip, port), timeout=3):
                return True, f"grpc port {port} open"
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"
    raise ValueError(f"unknown probe {probe}")


def wait_until(
    check: Any, timeout: float, interval: float = 0.5, alive: Any = None
) -> tuple[bool, str]:
    """Poll ``check()`` -> (ok, note) until ok, ``alive()`` is False, or the deadline."""
    deadline = time.monotonic() + timeout
    note = "not checked"
    while time.monotonic() < deadline:
        ok, note = check()
        if ok:
            return True, note
        if alive is not None and not alive():
            return False, f"exited before passing ({note})"
        time.sleep(interval)
    return False, f"timed out after {timeout:.0f} s ({note})"


def free_dir(base: Path, name: str) -> Path:
    """A fresh folder under ``base`` (an emptyDir), owned so the pod's UID can write it."""
    path = base / re.sub(r"[^\w.-]+", "_", name)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def endpoint_host(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL."""
    parsed = urlparse(url)
    return parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)


def dockerfile_image(
    image_ref: str, cache: dict[str, tuple[Image, Path]], base: Path
) -> tuple[Image, Path] | None:
    """The project image an image reference names and its laid-out tree (built once)."""
    dockerfile = dockerfile_for(image_ref)
    if dockerfile is None:
        return None
    if dockerfile.name not in cache:
        image = Image.read(dockerfile)
        cache[dockerfile.name] = (image, build_rootfs(image, base / dockerfile.stem))
    return cache[dockerfile.name]


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set, restored afterwards (for seeding from this process)."""
    before = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(before)
