"""Load generation and machine figures shared by the HTTP benchmarks (serving, transformer).

A minimal asyncio HTTP/1.1 client (pre-built requests, keep-alive) so that the generator takes
as little of the 2 CPUs as possible from the servers it measures; an open-loop constant-rate
generator (latency from each request's scheduled send time: no coordinated omission) and a
closed-loop saturating one; and what every results file records next to its figures: the load
average, ``uptime``, each phase's CPU steal share and a process's CPU seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (NaN for no values)."""
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def summary_ms(seconds: list[float]) -> dict[str, float]:
    """Count, p50/p90/p99 and max of durations given in seconds, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p90_ms": round(percentile(ms, 90), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(max(ms), 3) if ms else float("nan"),
    }


def v1_requests(port: int, model: str, bodies: list[dict]) -> list[bytes]:
    """Raw HTTP/1.1 ``POST /v1/models/<model>:predict`` requests, one per JSON body."""
    out = []
    for payload in bodies:
        body = json.dumps(payload).encode()
        head = (
            f"POST /v1/models/{model}:predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        out.append(head + body)
    return out


class Connection:
    """One keep-alive HTTP/1.1 connection that sends a prepared request and reads the answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


# asyncio's timers have 1 ms resolution (epoll): a plain ``asyncio.sleep`` until a send time
# wakes up to 1 ms late (0.7 ms at the median, measured), and that lateness would count as server
# latency. So the generator sleeps until SPIN_BEFORE ahead of each send, then yields to the loop
# (answers still being read) until the send time.
SPIN_BEFORE = 0.0012


async def until(when: float) -> None:
    """Return at ``time.perf_counter() >= when``, within microseconds, keeping the loop running."""
    delay = when - time.perf_counter()
    if delay > SPIN_BEFORE:
        await asyncio.sleep(delay - SPIN_BEFORE)
    while time.perf_counter() < when:
        await asyncio.sleep(0)


async def constant_rate(port: int, requests: list[bytes], rate: float, seconds: float, conns: int):
    """Open loop: request i is due at start + i / rate; its latency counts from then.

    Returns:
        (latencies in seconds, non-200 answers, achieved requests/s).
    """
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(conns):
        pool.put_nowait(await Connection.open(port))
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter() + 0.05
    total = int(rate * seconds)

    async def one(i: int, scheduled: float) -> None:
        nonlocal errors
        conn = await pool.get()
        try:
            status = await conn.request(requests[i % len(requests)])
        finally:
            pool.put_nowait(conn)
        latencies.append(time.perf_counter() - scheduled)
        errors += status != 200

    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        await until(scheduled)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait().close()
    return latencies, errors, total / elapsed


async def saturate(port: int, requests: list[bytes], seconds: float, conns: int):
    """Closed loop: ``conns`` connections each send the next request as soon as one is answered.

    Returns:
        (answered requests/s, non-200 answers).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    done = errors = 0

    async def worker(offset: int) -> None:
        nonlocal done, errors
        conn = await Connection.open(port)
        i = offset
        while loop.time() < deadline:
            errors += await conn.request(requests[i % len(requests)]) != 200
            done += 1
            i += conns
        conn.close()

    start = loop.time()
    await asyncio.gather(*(worker(k) for k in range(conns)))
    return done / (loop.time() - start), errors


def machine(load_at_start: list[float] | None = None) -> dict[str, object]:
    """Python, platform, CPUs and the load average (``uptime``) now, and at start if given."""
    info: dict[str, object] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    if load_at_start is not None:
        info["load_average_at_start"] = load_at_start
    info["load_average_at_end"] = load_average()
    return info


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used so far (Linux ``/proc``; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_ticks() -> tuple[int, int]:
    """(stolen, total) CPU ticks of the whole machine so far (Linux ``/proc/stat``; 0s elsewhere).

    Stolen ticks are time the hypervisor ran someone else while this VM had work: its share over
    a phase says how much of a latency tail the machine, not the server, caused.
    """
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return fields[7], sum(fields[:8])  # user nice system idle iowait irq softirq steal


def steal_share(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """Share of the machine's CPU time stolen between two ``machine_cpu_ticks`` readings."""
    total = after[1] - before[1]
    return round((after[0] - before[0]) / total, 3) if total > 0 else None


class Phase:
    """Load, steal and (optionally) processes' CPU over one measured phase.

    ``with Phase(pids) as phase: ...`` then ``phase.figures()``: the load average at its start
    and end, the machine's CPU steal share, and each given process's CPU seconds during it.
    """

    def __init__(self, pids: dict[str, int] | None = None) -> None:
        self.pids = pids or {}

    def __enter__(self) -> Phase:
        self.load_at_start = load_average()
        self.cpu_before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.ticks = machine_cpu_ticks()
        return self

    def __exit__(self, *exc: object) -> None:
        self.steal = steal_share(self.ticks, machine_cpu_ticks())
        self.cpu = {
            name: round(cpu_seconds(pid) - self.cpu_before[name], 3)
            for name, pid in self.pids.items()
        }
        self.load_at_end = load_average()

    def figures(self) -> dict[str, object]:
        """What a results file records next to the phase's own figures."""
        out: dict[str, object] = {
            "cpu_steal_share": self.steal,
            "load_average": {"at_start": self.load_at_start, "at_end": self.load_at_end},
        }
        if self.cpu:
            out["process_cpu_seconds"] = self.cpu
        return out


def uptime() -> str:
    """``uptime``'s line (load averages over 1, 5, 15 minutes), or the load average alone."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
