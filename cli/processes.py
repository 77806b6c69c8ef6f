"""Start local service processes (model servers, routers, Prometheus) and stop them reliably.

Nothing here picks a port number. Every process is asked for port 0 and the system gives it a free
port when it binds, so two processes started at once cannot be handed the same one; the caller
then learns the port the process actually got:

- the project's services (``python -m serving.<name>``) write their bound ports to the
  ``--port_file`` that :func:`running_service` passes them (``serving.listening``);
- other programs (Prometheus, Alertmanager) are found listening by their sockets
  (:func:`listening_ports`), which :func:`running_program` reads.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx

T = TypeVar("T")
LOOPBACK = "127.0.0.1"
# Finds the ports of a started process: {name: port} once it listens, None while it does not yet.
PortFinder = Callable[[subprocess.Popen[bytes]], dict[str, int] | None]


class ServiceFailedError(RuntimeError):
    """A service process exited or did not become ready in time."""


@dataclass(frozen=True)
class RunningService:
    """A started process, ready, and the loopback ports it listens on (``http`` first)."""

    process: subprocess.Popen[bytes]
    ports: dict[str, int]

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    @property
    def address(self) -> str:
        """``127.0.0.1:<http port>`` (a Prometheus scrape target, a predictor host)."""
        return f"{LOOPBACK}:{self.ports['http']}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<http port>``."""
        return f"http://{self.address}"


def flags(**values: object) -> list[str]:
    """Command-line flags of a ``python -m serving.<name>`` program, one per keyword.

    ``flags(model_name="m", http_port=0)`` is ``["--model_name", "m", "--http_port", "0"]``
    (the programs' flags are their settings' field names); None values are left out.
    """
    return [
        part
        for name, value in values.items()
        if value is not None
        for part in (f"--{name}", str(value))
    ]


def port_file_reader(path: Path) -> PortFinder:
    """A :data:`PortFinder` reading the JSON object a service writes to ``path`` once bound."""

    def read(_: subprocess.Popen[bytes]) -> dict[str, int] | None:
        try:
            ports = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        return {str(name): int(port) for name, port in ports.items()}

    return read


def listening_ports(process: subprocess.Popen[bytes]) -> dict[str, int] | None:
    """``{"http": port}`` of the one TCP port ``process`` listens on; None while it listens on none.

    For programs that cannot say which port they bound (Prometheus and Alertmanager log it, but
    not in a stable format): the kernel's socket table says.

    Raises:
        ServiceFailedError: It listens on more than one port (which one is HTTP is unknown).
    """
    import psutil

    try:
        proc = psutil.Process(process.pid)
        # psutil >= 6 calls it net_connections; older releases connections.
        connections = getattr(proc, "net_connections", proc.connections)(kind="tcp")
    except psutil.NoSuchProcess:
        return None
    ports = sorted({c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN})
    if len(ports) > 1:
        raise ServiceFailedError(f"process {process.pid} listens on {ports}: expected one port")
    return {"http": ports[0]} if ports else None


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_program(
    command: list[str],
    log_path: Path,
    *,
    ready_path: str,
    find_ports: PortFinder = listening_ports,
    timeout: float = 90.0,
) -> Iterator[RunningService]:
    """Run ``command`` (told to listen on port 0) until the block ends; yield it once ready.

    Waits until ``find_ports`` reports its ports, then until ``http://127.0.0.1:<http
    port><ready_path>`` answers 200. Output goes to ``log_path``; an early exit or a timeout raises
    ServiceFailedError with the log's tail. The process is terminated (then killed) however the
    block ends.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    name = Path(command[0]).name if command[0] != sys.executable else " ".join(command[1:3])
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            ports: dict[str, int] | None = None
            while True:
                if process.poll() is not None:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise ServiceFailedError(f"{name} exited with {process.returncode}:\n{tail}")
                ports = ports or find_ports(process)
                if ports is not None and _answers(f"http://{LOOPBACK}:{ports['http']}{ready_path}"):
                    break
                if time.monotonic() > deadline:
                    where = f"port {ports['http']}" if ports else "no port bound yet"
                    raise ServiceFailedError(
                        f"{name} not ready after {timeout:.0f} s ({where}); see {log_path}"
                    )
                time.sleep(0.2)
            yield RunningService(process, ports)
        finally:
            _stop(process)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def running_service(
    module: str,
    args: list[str],
    log_path: Path,
    *,
    ready_path: str = "/readyz",
    timeout: float = 90.0,
) -> Iterator[RunningService]:
    """Run ``python -m <module> <args>`` on loopback with this interpreter until the block ends.

    The service is also told ``--host 127.0.0.1 --port_file <a temporary file>``. ``args`` ask
    for port 0 (``--port 0``, or ``--http_port 0 --grpc_port 0`` for a KServe server); the
    service writes the ports it bound to the port file, and the yielded :class:`RunningService`
    carries them. Otherwise as :func:`running_program`.
    """
    with tempfile.TemporaryDirectory(prefix="trending-ports-") as scratch:
        port_file = Path(scratch) / "ports.json"
        command = [sys.executable, "-m", module, *args, "--host", LOOPBACK]
        command += ["--port_file", str(port_file)]
        with running_program(
            command,
            log_path,
            ready_path=ready_path,
            find_ports=port_file_reader(port_file),
            timeout=timeout,
        ) as service:
            yield service


def wait_until(what: str, check: Callable[[], T], timeout: float, every: float = 0.25) -> T:
    """Call ``check`` every ``every`` seconds until it returns something truthy; return that.

    A connection error counts as "not yet" (a service may still be starting). After ``timeout``
    seconds a TimeoutError names ``what`` and the last value seen.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
        except httpx.TransportError as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}"
            )
        time.sleep(every)
