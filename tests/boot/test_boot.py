"""Boot test: every workload the chart renders starts as its pod would, and a client gets answers.

For the kind and production scenarios, each rendered pod runs as local processes in its own
network namespace and bubblewrap sandbox (see cluster.py for what is real and the one emulated
table), against real backing services: moto's S3 API, Redis, the chart's own Feast feature server.
The registry and the online store are seeded first, then every workload starts at once and each
readiness probe is polled as the kubelet would. Two workloads cannot become ready here and have
their own expectations: the canary controller (needs a kube-apiserver) must start and stay alive
with its liveness probe passing; the pipeline-upload Job (needs a KFP API server) must end with one
clear line instead of a traceback.

Then client requests go through the rendered path: by title id to the transformer (Feast features
from Redis through the feature server, then the predictor), plots straight to the predictor (V1
and V2), and the canary predictor serving the canary version.

On failure, each failing workload is reported with its command and the last lines of its output.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from cluster import (
    CHART,
    MINIO_IMAGE,
    NAMESPACE,
    MissingReferenceError,
    PodNetwork,
    Process,
    Sandbox,
    Workload,
    container_command,
    container_env,
    dockerfile_image,
    endpoint_host,
    environ,
    free_dir,
    platform_secrets,
    probe_once,
    render,
    scenario_values,
    secrets_of,
    signing_key_pair,
    start,
    wait_until,
    workloads,
)

pytestmark = [
    pytest.mark.boot,
    pytest.mark.skipif(
        not all(shutil.which(c) for c in ("bwrap", "redis-server", "ip", "nsenter")),
        reason="needs bubblewrap, redis-server and iproute2 (make system-deps)",
    ),
    pytest.mark.skipif(
        subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0,
        reason="needs network namespaces (root, CAP_NET_ADMIN)",
    ),
]

READY_TIMEOUT = 150.0
TITLES_ONLINE = 6  # titles seeded into the online store
# Each scenario as docs/kubernetes.md installs it: `-f <values file>` plus its `--set`s. Production's
# S3 is AWS over TLS, which cannot be served here: the one value the harness changes (an
# S3-compatible endpoint in the platform, moto, stands in); everything else is production's.
SCENARIOS = {
    "kind": ("kind-values.yaml", {}),
    "production": (
        "production-values.yaml",
        {
            "inferenceService.predictor.version": 1,  # docs: --set inferenceService.predictor.version=1
            "s3.endpoint": "http://objects.storage.internal:9000",
        },
    ),
}
# Workloads that cannot become ready without servers that do not run here, and what they must do.
CANARY_CONTROLLER = "Deployment/trending-canary-controller"
PIPELINES_JOB = "Job/trending-pipelines-1"


@dataclass
class Outcome:
    """How one workload's boot went."""

    workload: str
    ok: bool
    note: str
    processes: list[Process] = field(default_factory=list)

    def report(self) -> str:
        """Name, verdict, commands and the last output lines."""
        lines = [f"{'ok  ' if self.ok else 'FAIL'} {self.workload}: {self.note}"]
        if not self.ok:
            for process in self.processes:
                words = process.command
                command = words[words.index("--") + 1 :] if "--" in words else words
                lines.append(f"    $ {' '.join(command)}")
                lines += [f"    | {line}" for line in process.tail().splitlines()]
        return "\n".join(lines)


class Release:
    """One rendered scenario, booted."""

    def __init__(self, scenario: str, base: Path, bundle: Path, titles: Any) -> None:
        values_file, overrides = SCENARIOS[scenario]
        self.scenario = scenario
        self.base = base
        self.bundle = bundle
        self.titles = titles
        values = scenario_values(CHART / "ci" / values_file, overrides)
        self.objects = render(values)
        # What docs/kubernetes.md has a platform engineer create before `helm install`; the
        # private half of the bundle key pair is what the pipeline's register step would hold.
        self.signing_key, public_key = signing_key_pair(base)
        self.created = platform_secrets(
            values, self.objects, {"TRENDING_BUNDLE_PUBLIC_KEY": public_key}
        )
        self.secrets = secrets_of(self.objects, self.created)
        self.config_maps = {
            o["metadata"]["name"]: {k: str(v) for k, v in o.get("data", {}).items()}
            for o in self.objects
            if o["kind"] == "ConfigMap"
        }
        self.settings = self.config_maps[f"{NAMESPACE}-settings"]
        self.pods = workloads(self.objects)
        self.processes: list[Process] = []
        self.outcomes: dict[str, Outcome] = {}
        self.images: dict[str, Any] = {}
        self.logs = base / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()

    # ------------------------------------------------------------ addresses
    def address(self, network: PodNetwork) -> None:
        """Give every pod and backing service a namespace, and write the hosts file."""
        hosts = ["127.0.0.1 localhost"]
        for pod in self.pods:
            pod.netns, pod.ip = network.add()
            hosts += [f"{pod.ip} {' '.join(pod.hostnames)}"] if pod.hostnames else []
        s3_host, self.s3_port = endpoint_host(self.settings["AWS_ENDPOINT_URL"])
        minio = next((p for p in self.pods if p.image.startswith(MINIO_IMAGE)), None)
        if minio is not None:  # MinIO in the release: moto answers on its pod's address
            self.s3_netns, self.s3_ip = minio.netns, minio.ip
        else:  # the world's S3
            self.s3_netns, self.s3_ip = network.add()
            hosts.append(f"{self.s3_ip} {s3_host}")
        redis_host = self.settings["REDIS_HOST"]
        redis_pod = next((p for p in self.pods if redis_host in p.hostnames), None)
        self.external_redis = redis_pod is None
        if redis_pod is None:  # an existing Redis outside the release
            self.redis_netns, self.redis_ip = network.add()
            hosts.append(f"{self.redis_ip} {redis_host}")
        else:
            self.redis_ip = redis_pod.ip
        self.hosts_file = self.base / "hosts"
        self.hosts_file.write_text("\n".join(hosts) + "\n")

    # ------------------------------------------------------------ backing services
    def start_backing(self) -> None:
        """moto's S3 server (and an external Redis when the release has none)."""
        moto = shutil.which("moto_server", path=str(Path(__file__).parents[2] / ".venv/bin"))
        command = [
            "nsenter",
            f"--net=/run/netns/{self.s3_netns}",
            moto,
            "-H",
            "0.0.0.0",
            "-p",
            str(self.s3_port),
        ]
        # moto reads the first label of a dotted Host as a virtual-hosted bucket name
        # ("objects.storage.internal" -> bucket "objects"); S3 clients here use path style.
        moto_env = {"PATH": "/usr/bin:/bin", "S3_IGNORE_SUBDOMAIN_BUCKETNAME": "true"}
        self.processes.append(start("s3 (moto)", command, moto_env, self.logs))
        if self.external_redis:
            password = self.secrets["trending-redis"]["REDIS_PASSWORD"]
            command = [
                "nsenter",
                f"--net=/run/netns/{self.redis_netns}",
                "redis-server",
                "--port",
                self.settings["REDIS_PORT"],
                "--save",
                "",
                "--appendonly",
                "no",
                "--requirepass",
                password,
            ]
            self.processes.append(start("redis (external)", command, {}, self.logs))

    def s3_env(self) -> dict[str, str]:
        """This process's view of the S3 endpoint (pod addresses are routable from here)."""
        creds = self.secrets["trending-s3"]
        return {
            "AWS_ENDPOINT_URL": f"http://{self.s3_ip}:{self.s3_port}",
            "FEAST_S3_ENDPOINT_URL": f"http://{self.s3_ip}:{self.s3_port}",
            "AWS_ACCESS_KEY_ID": creds["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": creds["AWS_SECRET_ACCESS_KEY"],
            "AWS_DEFAULT_REGION": self.settings["AWS_DEFAULT_REGION"],
            "AWS_REGION": self.settings["AWS_DEFAULT_REGION"],
        }

    def signed_bundle(self) -> Path:
        """The trained bundle as the training pipeline registers it: drift detector, then signed."""
        from trending.modelling.bundle import BundleTrust, load_signing_key, sign_if_configured
        from trending.monitoring.drift.detector import add_drift_detector

        bundle = self.base / "bundle-signed"
        shutil.copytree(self.bundle, bundle)
        add_drift_detector(bundle, self.titles.iloc[:60], n_components=4)
        return sign_if_configured(bundle, BundleTrust(load_signing_key(self.signing_key)))

    def seed(self) -> None:
        """Bucket, registry versions (production, canary: signed; one unsigned), Feast applied + materialized."""
        import boto3

        from trending.features.store import TitleFeatureStore
        from trending.registry import Registry

        env = self.s3_env()

        def s3_up() -> tuple[bool, str]:
            try:
                boto3.client(
                    "s3",
                    endpoint_url=env["AWS_ENDPOINT_URL"],
                    aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                    region_name=env["AWS_REGION"],
                ).list_buckets()
            except Exception as exc:
                return False, str(exc)
            return True, "S3 answers"

        ok, note = wait_until(s3_up, 30)
        assert ok, f"moto's S3 server did not answer: {note}"
        registry_uri = self.settings["TRENDING_REGISTRY_URI"]
        bucket = registry_uri.removeprefix("s3://").split("/")[0]
        with environ(env):
            # MinIO's `mkdir -p /data/<bucket>` (kind) or the platform's existing bucket (prod).
            region = env["AWS_REGION"]
            location = {} if region == "us-east-1" else {"LocationConstraint": region}
            boto3.client("s3").create_bucket(
                Bucket=bucket, **({"CreateBucketConfiguration": location} if location else {})
            )
            registry = Registry.from_uri(registry_uri, self.settings["TRENDING_MODEL_NAME"])
            signed = self.signed_bundle()
            first = registry.register_version(signed, actor="boot-test", reason="seed")
            second = registry.register_version(signed, actor="boot-test", reason="seed")
            registry.promote(first, actor="boot-test", reason="seed")
            registry.set_canary(second, actor="boot-test", reason="seed")
            # Registered without the pipeline's key: the predictors must refuse to serve it.
            unsigned = registry.register_version(self.bundle, actor="boot-test", reason="seed")
            self.versions = {"production": first, "canary": second, "unsigned": unsigned}
        ok, note = wait_until(lambda: self._redis_ping(), 60)
        assert ok, f"Redis did not answer: {note}"
        feast_env = env | {
            "FEAST_REGISTRY_BUCKET": self.settings["FEAST_REGISTRY_BUCKET"],
            "REDIS_HOST": self.redis_ip,
            "REDIS_PORT": self.settings["REDIS_PORT"],
            "REDIS_PASSWORD": self.secrets["trending-redis"]["REDIS_PASSWORD"],
            # TODO(boot): store.missing_placeholders counts the ${VAR} of the YAML's comment.
            "VAR": "-",
        }
        with environ(feast_env):
            store = TitleFeatureStore(
                Path(__file__).parents[2] / "feature_repo",
                self.base / "feast-seed",
                "feature_store.cluster.yaml",
            )
            store.publish(self.titles.head(TITLES_ONLINE))

    def _redis_ping(self) -> tuple[bool, str]:
        import redis

        try:
            client = redis.Redis(
                self.redis_ip,
                int(self.settings["REDIS_PORT"]),
                password=self.secrets["trending-redis"]["REDIS_PASSWORD"],
                socket_timeout=2,
            )
            return bool(client.ping()), "PONG"
        except Exception as exc:
            return False, str(exc)

    # ------------------------------------------------------------ pods
    def sandbox(self, pod: Workload, container: Obj, rootfs: Path | None, image: Any) -> Sandbox:
        """The container's filesystem, user and working directory."""
        volumes: dict[str, Path] = {}
        declared = {v["name"]: v for v in pod.pod.get("volumes", [])}
        for mount in container.get("volumeMounts", []):
            volume = declared.get(mount["name"])
            if volume is None and mount["name"] not in pod.claim_templates:
                raise MissingReferenceError(f"volumeMount {mount['name']} names no volume")
            if volume is not None and "emptyDir" not in volume:
                raise NotImplementedError(f"volume {volume} is not emulated (emptyDir only)")
            volumes[mount["mountPath"]] = free_dir(
                self.base / "volumes", f"{pod.name}-{mount['name']}"
            )
        context = pod.pod.get("securityContext", {}) | container.get("securityContext", {})
        user = (image.user if image else "0").split(":")
        uid = int(context.get("runAsUser", user[0]))
        gid = int(context.get("runAsGroup", user[1] if len(user) > 1 else uid))
        workdir = container.get("workingDir") or (image.workdir if image else "/")
        return Sandbox(rootfs, volumes, self.hosts_file, uid, gid, workdir)

    def launch(self, pod: Workload, container: Obj) -> tuple[Process, Any]:
        """Start one container; returns the process and a function that runs an exec probe."""
        built = dockerfile_image(container["image"], self.images, self.base / "images")
        image, rootfs = built if built else (None, None)
        env = container_env(
            container,
            image.env if image else {"PATH": "/usr/bin:/bin"},
            self.config_maps,
            self.secrets,
            pod.ip,
        )
        sandbox = self.sandbox(pod, container, rootfs, image)
        command = container_command(container, image, env)
        process = start(
            f"{pod.name}-{container['name']}", sandbox.bwrap(pod.netns, command), env, self.logs
        )
        with self.lock:
            self.processes.append(process)

        def exec_probe(words: list[str]) -> subprocess.CompletedProcess:
            return subprocess.run(
                sandbox.bwrap(pod.netns, words),
                env=env,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )

        return process, exec_probe

    def boot(self, pod: Workload) -> Outcome:
        """Init containers in order, then the containers; wait for each readiness probe."""
        processes: list[Process] = []
        try:
            for init in pod.init_containers:
                process, _ = self.launch(pod, init)
                processes.append(process)
                code = process.popen.wait(READY_TIMEOUT)
                if code != 0:
                    return self._ended(
                        pod, processes, f"init container {init['name']} exited {code}"
                    )
            started = [(c, *self.launch(pod, c)) for c in pod.containers]
            processes += [p for _, p, _ in started]
            if pod.is_job:
                codes = [p.popen.wait(READY_TIMEOUT) for _, p, _ in started]
                if any(codes):
                    return self._ended(pod, processes, f"exited {codes}")
                return Outcome(pod.name, True, "completed", processes)
            for container, process, exec_probe in started:
                expect_live = pod.name == CANARY_CONTROLLER
                probe = container.get("livenessProbe" if expect_live else "readinessProbe")
                if probe is None:
                    return Outcome(
                        pod.name, False, f"{container['name']}: no readiness probe", processes
                    )
                ok, note = wait_until(
                    lambda probe=probe, container=container, exec_probe=exec_probe: probe_once(
                        probe, container, pod.ip, exec_probe
                    ),
                    READY_TIMEOUT,
                    alive=lambda process=process: process.popen.poll() is None,
                )
                if not ok:
                    return Outcome(
                        pod.name, False, f"{container['name']} not ready: {note}", processes
                    )
            return Outcome(pod.name, True, "ready", processes)
        except Exception as exc:
            return Outcome(pod.name, False, f"{type(exc).__name__}: {exc}", processes)

    def _ended(self, pod: Workload, processes: list[Process], note: str) -> Outcome:
        if pod.name != PIPELINES_JOB:
            return Outcome(pod.name, False, note, processes)
        # Expected: no KFP API server here. It must say so in one line, not a traceback.
        output = processes[-1].tail(40)
        lines = [line for line in output.splitlines() if line.strip()]
        kfp_host = urlparse(self.settings["TRENDING_KFP_HOST"]).hostname or "?"
        # One line, no traceback, and about the KFP API server (not a configuration error).
        clear = bool(lines) and "Traceback" not in output and len(lines) <= 3
        clear = clear and kfp_host in lines[-1]
        return Outcome(
            pod.name,
            clear,
            f"{note}; expected (no KFP API server): "
            f"{'one clear line' if clear else 'NOT one clear line'}: "
            f"{lines[-1] if lines else '(no output)'}",
            processes,
        )

    def boot_all(self) -> None:
        """Backing services, data stores, seed, then every other pod at once."""
        self.start_backing()
        stores = [p for p in self.pods if "redis" in p.name]
        rest = [p for p in self.pods if p not in stores and not p.image.startswith(MINIO_IMAGE)]
        for pod in self.pods:
            if pod.image.startswith(MINIO_IMAGE):
                self.outcomes[pod.name] = Outcome(pod.name, True, "substituted: moto's S3 server")
        for pod in stores:
            self.outcomes[pod.name] = self.boot(pod)
        self.seed()
        for pod in rest:  # image trees first: the pods below start in parallel
            for container in pod.init_containers + pod.containers:
                dockerfile_image(container["image"], self.images, self.base / "images")
        with ThreadPoolExecutor(max_workers=len(rest) or 1) as pool:
            for outcome in pool.map(self.boot, rest):
                self.outcomes[outcome.workload] = outcome
        controller = self.outcomes.get(CANARY_CONTROLLER)
        if controller is not None and controller.ok:
            alive = all(p.popen.poll() is None for p in controller.processes)
            if not alive:
                codes = [p.popen.poll() for p in controller.processes]
                controller.ok = False
                controller.note = f"exited {codes} after its liveness probe passed (must idle)"
            else:
                controller.note = "alive, liveness passes (readiness needs a kube-apiserver)"

    def stop(self) -> None:
        """Stop everything this release started."""
        for process in reversed(self.processes):
            process.stop()

    def pod(self, suffix: str) -> Workload:
        """The pod whose name ends with ``suffix``."""
        return next(p for p in self.pods if p.name.endswith(suffix))


Obj = dict[str, Any]


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def release(request, tmp_path_factory, trained_bundle, titles):
    """A scenario rendered and booted; stopped after the module's tests for it."""
    scenario = request.param
    booted = Release(scenario, tmp_path_factory.mktemp(f"boot-{scenario}"), trained_bundle, titles)
    started = time.monotonic()
    with PodNetwork() as network:
        booted.network = network
        booted.address(network)
        try:
            booted.boot_all()
            booted.boot_seconds = time.monotonic() - started
            yield booted
        finally:
            booted.stop()


def post(url: str, body: dict[str, Any], timeout: float = 30) -> tuple[int, dict[str, Any]]:
    """POST JSON; (status, parsed body)."""
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {"error": exc.read().decode(errors="replace")}


def test_every_workload_becomes_ready(release: Release) -> None:
    failed = [o for o in release.outcomes.values() if not o.ok]
    report = "\n".join(o.report() for o in sorted(release.outcomes.values(), key=lambda o: o.ok))
    print(f"\n[{release.scenario}] booted in {release.boot_seconds:.0f} s\n{report}")
    assert not failed, (
        f"{len(failed)} workload(s) of the {release.scenario} scenario failed:\n{report}"
    )


def _ready(release: Release, suffix: str) -> Workload:
    pod = release.pod(suffix)
    outcome = release.outcomes[pod.name]
    if not outcome.ok:
        pytest.fail(f"{pod.name} did not boot:\n{outcome.report()}")
    return pod


def test_by_title_id_through_the_transformer_gets_the_predictors_genres(release: Release) -> None:
    transformer = _ready(release, "/transformer")
    predictor = _ready(release, "/predictor")
    title = release.titles.iloc[0]
    status, body = post(
        f"http://{transformer.ip}:8080/v1/models/genre-classifier:predict",
        {"instances": [{"title_id": title["title_id"]}]},
    )
    assert status == 200, body
    status, direct = post(
        f"http://{predictor.ip}:8080/v1/models/genre-classifier:predict",
        {
            "instances": [
                {
                    "title_id": title["title_id"],
                    "plot": title["plot"],
                    "reviews": list(title["reviews"]),
                }
            ]
        },
    )
    assert status == 200, direct
    assert body["predictions"][0]["genres"] == direct["predictions"][0]["genres"]
    status, unknown = post(
        f"http://{transformer.ip}:8080/v1/models/genre-classifier:predict",
        {"instances": [{"title_id": "nowhere:0"}]},
    )
    assert status == 404, unknown


def test_plots_straight_to_the_predictor_over_v1_and_v2(release: Release) -> None:
    predictor = _ready(release, "/predictor")
    plot = str(release.titles.iloc[1]["plot"])
    status, v1 = post(
        f"http://{predictor.ip}:8080/v1/models/genre-classifier:predict",
        {"instances": [{"plot": plot}]},
    )
    assert status == 200, v1
    status, v2 = post(
        f"http://{predictor.ip}:8080/v2/models/genre-classifier/infer",
        {"inputs": [{"name": "plot", "shape": [1], "datatype": "BYTES", "data": [plot]}]},
    )
    assert status == 200, v2
    genres = next(o for o in v2["outputs"] if o["name"] == "genres")["data"][0]
    assert (genres.split(",") if genres else []) == v1["predictions"][0]["genres"]


def test_the_canary_predictor_serves_the_canary_version(release: Release) -> None:
    if not any(p.name.endswith("/canary") for p in release.pods):
        pytest.skip(f"the {release.scenario} values render no canary (inferenceService.canary)")
    canary = _ready(release, "/canary")
    status, body = post(
        f"http://{canary.ip}:8080/v1/models/genre-classifier:predict",
        {"instances": [{"plot": str(release.titles.iloc[2]["plot"])}]},
    )
    assert status == 200, body
    with urllib.request.urlopen(f"http://{canary.ip}:8080/metrics", timeout=5) as response:
        metrics = response.read().decode()
    versions = {
        line.split('version="')[1].split('"')[0]
        for line in metrics.splitlines()
        if line.startswith("trending_") and 'version="' in line
    }
    assert versions == {str(release.versions["canary"])}, versions


def _metric(url: str, name: str, **labels: str) -> float:
    """One sample of a service's /metrics (0 when absent)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_the_drift_detector_takes_the_predictors_events_and_refuses_forged_ones(
    release: Release,
) -> None:
    predictor = _ready(release, "/predictor")
    drift = f"http://{_ready(release, 'drift-detector').ip}:8080"
    before = _metric(drift, "trending_drift_events_total", type="request", outcome="accepted")
    plots = [str(plot) for plot in release.titles["plot"].iloc[:5]]
    status, body = post(
        f"http://{predictor.ip}:8080/v1/models/genre-classifier:predict",
        {"instances": [{"plot": plot} for plot in plots]},
    )
    assert status == 200, body
    # The predictor's payload logger sends the request event with the drift token (from the
    # Secret), and the drift detector loads the version's signed detector to score it.
    ok, note = wait_until(
        lambda: (
            (n := _metric(drift, "trending_drift_events_total", type="request", outcome="accepted"))
            > before,
            f"accepted request events: {n}",
        ),
        60,
    )
    assert ok, f"the drift detector did not count the predictor's event: {note}\n" + "\n".join(
        p.tail() for p in release.outcomes[release.pod("drift-detector").name].processes
    )
    # A forged event: a well-formed CloudEvent from another pod, without the token.
    refused = _metric(drift, "trending_drift_events_total", outcome="unauthorized")
    forged = urllib.request.Request(
        f"{drift}/",
        json.dumps({"instances": [{"plot": "forged"}]}).encode(),
        {
            "Content-Type": "application/json",
            "ce-specversion": "1.0",
            "ce-id": "forged-1",
            "ce-source": "http://attacker",
            "ce-type": "org.kubeflow.serving.inference.request",
            "ce-modelid": "genre-classifier:1",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(forged, timeout=10)
    assert error.value.code == 401
    assert _metric(drift, "trending_drift_events_total", outcome="unauthorized") == refused + 1


def _served_ref(container: Obj, ref: str) -> None:
    args = container["args"]
    args[args.index("--ref") + 1] = ref


def _renamed_arg(container: Obj, old: str, new: str) -> None:
    args = container["args"]
    assert old in args, f"{old} is not among the rendered args {args}: update this mutation"
    args[args.index(old)] = new


def _renamed_env(container: Obj, old: str, new: str) -> None:
    names = [item["name"] for item in container.get("env", [])]
    assert old in names, f"{old} is not among the rendered env {names}: update this mutation"
    container["env"][names.index(old)]["name"] = new


# A chart edit that renames what a program reads, and the name its refusal must mention.
MUTATIONS = {
    "predictor flag --ref renamed --alias": (
        "/predictor",
        lambda c: _renamed_arg(c, "--ref", "--alias"),
        "--alias",
    ),
    # Not a rename: the same predictor pointed at a version registered without the signing key.
    "predictor serving an unsigned version": (
        "/predictor",
        lambda c: _served_ref(c, "3"),  # seed(): version 3 is the unsigned one
        "is not signed",
    ),
    "transformer env TRENDING_FEATURE_SERVER_URL renamed": (
        "/transformer",
        lambda c: _renamed_env(c, "TRENDING_FEATURE_SERVER_URL", "TRENDING_FEATURE_SERVER"),
        "TRENDING_FEATURE_SERVER",
    ),
}


@pytest.mark.parametrize("release", ["kind"], indirect=True)  # one scenario shows it
@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_a_renamed_chart_argument_or_variable_fails_the_boot(
    release: Release, mutation: str
) -> None:
    """The boot check is not blind: the rendered container with one name changed does not boot."""
    suffix, mutate, named = MUTATIONS[mutation]
    mutant = copy.deepcopy(release.pod(suffix))
    mutant.name += " (mutant)"  # its own logs and volumes, not the running pod's
    mutate(mutant.containers[0])
    mutant.netns, mutant.ip = (
        release.network.add()
    )  # its own address: no probe reaches the original
    outcome = release.boot(mutant)
    assert not outcome.ok, f"the mutant booted: {outcome.report()}"
    output = "\n".join(p.tail(40) for p in outcome.processes)
    assert named in output, f"the failure does not name {named}:\n{outcome.report()}"
