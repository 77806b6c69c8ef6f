"""Start local service processes (model servers, routers) and stop them reliably."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TypeVar

import httpx

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServiceFailedError(RuntimeError):
    """A service process exited or did not become ready in time."""


@contextmanager
def running_process(
    command: list[str], ready_url: str, log_path: Path, timeout: float = 90.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until the block ends; wait until ``ready_url`` answers 200 first.

    Output goes to ``log_path``; an early exit or a timeout raises ServiceFailedError with the
    log's tail. The process is terminated (then killed) however the block ends.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    name = Path(command[0]).name if command[0] != sys.executable else " ".join(command[1:3])
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise ServiceFailedError(f"{name} exited with {process.returncode}:\n{tail}")
                try:
                    if httpx.get(ready_url, timeout=1.0).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise ServiceFailedError(
                        f"{name} not ready after {timeout:.0f} s; see {log_path}"
                    )
                time.sleep(0.2)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def running_service(
    module: str, args: list[str], ready_url: str, log_path: Path, timeout: float = 90.0
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """Run ``python -m <module> <args>`` with this interpreter, as ``running_process`` does."""
    return running_process([sys.executable, "-m", module, *args], ready_url, log_path, timeout)


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
