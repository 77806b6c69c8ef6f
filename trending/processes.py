"""Start local service processes (model servers, routers) and stop them reliably."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServiceFailedError(RuntimeError):
    """A service process exited or did not become ready in time."""


@contextmanager
def running_service(
    module: str, args: list[str], ready_url: str, log_path: Path, timeout: float = 90.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``python -m <module> <args>`` until the block ends; wait until ``ready_url`` answers 200."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", module, *args], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise ServiceFailedError(f"{module} exited with {process.returncode}:\n{tail}")
                try:
                    if httpx.get(ready_url, timeout=1.0).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise ServiceFailedError(f"{module} not ready after {timeout:.0f} s; see {log_path}")
                time.sleep(0.2)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
