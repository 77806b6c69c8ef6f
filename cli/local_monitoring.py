"""Prometheus and Alertmanager as local processes: the one place that finds and starts them.

Two uses. The demo, the closed-loop integration test and the loop benchmark run the repository's
Prometheus, rules and Alertmanager configs rewired for loopback (:func:`running_monitoring`), so
all run exactly the shipped rules and routing with only addresses, intervals and timers changed.
The local canary stack runs a bare Prometheus scraping the router (:func:`running_prometheus`).
Both build Prometheus's command line with :func:`prometheus_command`.

Both programs listen on ``127.0.0.1:0``: the system picks a free port as they bind, and
``cli.processes.running_program`` reads it from their listening socket. Alertmanager starts first,
so Prometheus's config can name the port it got.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import yaml

from cli.processes import RunningService, running_program

# Debian's package installs Alertmanager as prometheus-alertmanager; upstream tarballs as alertmanager.
ALERTMANAGER_NAMES = ("prometheus-alertmanager", "alertmanager")
INSTALL_HINT = "apt-get install -y prometheus prometheus-alertmanager (Debian packages)"
# The repository's Prometheus config, rules and Alertmanager config.
MONITORING = Path(__file__).resolve().parents[1] / "monitoring"


class MonitoringBinariesMissingError(RuntimeError):
    """Prometheus or Alertmanager is not on PATH; the message says what to install."""


def prometheus_binary(which: Callable[[str], str | None] = shutil.which) -> str | None:
    """Path of the ``prometheus`` executable on PATH, or None."""
    return which("prometheus")


def find_monitoring_binaries(
    which: Callable[[str], str | None] = shutil.which,
) -> dict[str, str]:
    """Paths of the ``prometheus`` and ``alertmanager`` executables on PATH.

    Alertmanager is looked up as ``prometheus-alertmanager`` (Debian) first, then ``alertmanager``.
    Raises MonitoringBinariesMissingError naming what is missing and how to install it.
    """
    found = {
        "prometheus": prometheus_binary(which),
        "alertmanager": next(filter(None, map(which, ALERTMANAGER_NAMES)), None),
    }
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise MonitoringBinariesMissingError(
            f"{' and '.join(missing)} not found on PATH: {INSTALL_HINT}"
        )
    return {name: str(path) for name, path in found.items()}


def write_alertmanager_config(
    monitoring_dir: Path,
    out_dir: Path,
    trigger: str,
    token_file: Path,
    *,
    alert_timers: dict[str, str] | None = None,
) -> Path:
    """Write the repository's alertmanager.yml rewired to the local trigger; return its path.

    Args:
        monitoring_dir: The repository's ``monitoring/`` folder.
        out_dir: Where the rewired copy goes.
        trigger: ``host:port`` of the retrain trigger.
        token_file: The retrain trigger's bearer token, read by Alertmanager.
        alert_timers: Overrides of the retrain route's group_wait / group_interval / repeat_interval.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    alertmanager = yaml.safe_load((monitoring_dir / "alertmanager.yml").read_text())
    route = alertmanager["route"]["routes"][0]
    route.update(alert_timers or {})
    receiver = next(r for r in alertmanager["receivers"] if r["name"] == route["receiver"])
    webhook = receiver["webhook_configs"][0]
    webhook["url"] = f"http://{trigger}/alerts"
    webhook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    path = out_dir / "alertmanager.yml"
    path.write_text(yaml.safe_dump(alertmanager))
    return path


def write_prometheus_config(
    monitoring_dir: Path,
    out_dir: Path,
    targets: dict[str, str],
    alertmanager: str,
    *,
    drift_alert_for: str,
    interval: str = "1s",
) -> Path:
    """Write rules.yml and prometheus.yml rewired for loopback into ``out_dir``; return the latter.

    Args:
        monitoring_dir: The repository's ``monitoring/`` folder.
        out_dir: Where the rewired copies go.
        targets: ``host:port`` per scrape job name (``drift``, ``trigger``, ``predictor``...);
            the repository's jobs without a target are left out.
        alertmanager: ``host:port`` of Alertmanager.
        drift_alert_for: ``for`` of the DriftDetected alert (5m in production).
        interval: Scrape and rule evaluation interval.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rules = yaml.safe_load((monitoring_dir / "rules" / "trending.rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "DriftDetected":
                rule["for"] = drift_alert_for
    (out_dir / "rules.yml").write_text(yaml.safe_dump(rules))

    prometheus = yaml.safe_load((monitoring_dir / "prometheus.yml").read_text())
    prometheus["global"].update(scrape_interval=interval, evaluation_interval=interval)
    prometheus["rule_files"] = [str(out_dir / "rules.yml")]
    alerting = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]
    alerting["targets"] = [alertmanager]
    prometheus["scrape_configs"] = [
        {**job, "static_configs": [{"targets": [targets[job["job_name"]]]}]}
        for job in prometheus["scrape_configs"]
        if job["job_name"] in targets
    ]
    path = out_dir / "prometheus.yml"
    path.write_text(yaml.safe_dump(prometheus))
    return path


def alertmanager_command(binary: str, config: Path, state_dir: Path) -> list[str]:
    """Alertmanager on ``127.0.0.1:0`` with ``config``, its data in ``state_dir/alertmanager``."""
    return [
        binary,
        f"--config.file={config}",
        f"--storage.path={state_dir / 'alertmanager'}",
        "--web.listen-address=127.0.0.1:0",
        "--cluster.listen-address=",  # no gossip port: one instance, one listening port
    ]


def prometheus_command(binary: str, config: Path, state_dir: Path) -> list[str]:
    """Prometheus on ``127.0.0.1:0`` with ``config``, its data in ``state_dir/prometheus``."""
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={state_dir / 'prometheus'}",
        "--web.listen-address=127.0.0.1:0",
    ]


@contextmanager
def running_monitoring(
    binaries: dict[str, str],
    targets: dict[str, str],
    token_file: Path,
    workdir: Path,
    *,
    drift_alert_for: str,
    interval: str = "1s",
    alert_timers: dict[str, str] | None = None,
    log_dir: Path | None = None,
    monitoring_dir: Path = MONITORING,
) -> Iterator[dict[str, RunningService]]:
    """Run Alertmanager, then Prometheus, until the block ends; yield both by name.

    Configs and data go to ``workdir``, logs (``alertmanager.log``, ``prometheus.log``) to
    ``log_dir`` (default: ``workdir``). Each is ready (``/-/ready`` answers 200) before the block
    starts; both are stopped however it ends.

    Args:
        binaries: From :func:`find_monitoring_binaries`.
        targets: ``host:port`` per scrape job; ``trigger`` is also Alertmanager's webhook.
        token_file: The retrain trigger's bearer token, read by Alertmanager.
        workdir: Configs, data folders and logs.
        drift_alert_for: ``for`` of the DriftDetected alert (5m in production).
        interval: Scrape and rule evaluation interval.
        alert_timers: Overrides of the retrain route's timers.
        log_dir: Where the logs go (default: ``workdir``).
        monitoring_dir: The repository's ``monitoring/`` folder.
    """
    log_dir = log_dir or workdir
    with ExitStack() as stack:
        config = write_alertmanager_config(
            monitoring_dir, workdir, targets["trigger"], token_file, alert_timers=alert_timers
        )
        alertmanager = stack.enter_context(
            running_program(
                alertmanager_command(binaries["alertmanager"], config, workdir),
                log_dir / "alertmanager.log",
                ready_path="/-/ready",
            )
        )
        config = write_prometheus_config(
            monitoring_dir,
            workdir,
            targets,
            alertmanager.address,
            drift_alert_for=drift_alert_for,
            interval=interval,
        )
        prometheus = stack.enter_context(
            running_program(
                prometheus_command(binaries["prometheus"], config, workdir),
                log_dir / "prometheus.log",
                ready_path="/-/ready",
            )
        )
        yield {"alertmanager": alertmanager, "prometheus": prometheus}


@contextmanager
def running_prometheus(
    targets: dict[str, str], workdir: Path, *, scrape_interval: str = "1s", timeout: float = 60.0
) -> Iterator[str]:
    """Run a bare Prometheus scraping ``{job: host:port}`` until the block ends; yield its URL.

    Raises:
        MonitoringBinariesMissingError: No ``prometheus`` binary (the message says what to
            install).
        ServiceFailedError: It exited or did not become ready.
    """
    binary = prometheus_binary()
    if binary is None:
        raise MonitoringBinariesMissingError(f"prometheus not found on PATH: {INSTALL_HINT}")
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]}
            for job, target in targets.items()
        ],
    }
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    command = prometheus_command(binary, config_path, workdir)
    log = workdir / "prometheus.log"
    with running_program(command, log, ready_path="/-/ready", timeout=timeout) as prometheus:
        yield prometheus.url
