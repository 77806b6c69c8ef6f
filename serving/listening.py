"""Where a service listens: bind first, then say which ports it got.

A service asked for port 0 gets a free port from the system at bind time, so two services started
at once can never be handed the same number (picking a "free" number first and binding it later
races with every other process doing the same). The process that started the service learns the
ports from the ``--port_file`` it passed: :func:`announce_ports` writes it, atomically, once every
socket is bound.

    config = uvicorn.Config(app, host=settings.host, port=settings.port)
    sock = listen(config)
    announce_ports(settings.port_file, http=bound_port(sock))
    uvicorn.Server(config).run(sockets=[sock])

:func:`serve_app` does exactly that for the project's FastAPI services.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import uvicorn

log = logging.getLogger("trending.listening")


def listen(config: uvicorn.Config) -> socket.socket:
    """Bind ``config.host:config.port`` as uvicorn would and start listening; the socket.

    Connections made from here on wait in the backlog until the server accepts them.

    Raises:
        SystemExit: The address cannot be bound (uvicorn logs why), e.g. a fixed port in use.
    """
    sock = config.bind_socket()
    sock.listen(config.backlog)
    return sock


def bound_port(sock: socket.socket) -> int:
    """The port ``sock`` is bound to (the system's choice when port 0 was asked for)."""
    return int(sock.getsockname()[1])


def announce_ports(port_file: Path | None, **ports: int) -> None:
    """Log the bound ports and, when ``port_file`` is given, write them there as one JSON object.

    The file appears complete or not at all (written beside it, then renamed), so a reader that
    finds it can parse it.
    """
    log.info("listening: %s", ", ".join(f"{name} {port}" for name, port in ports.items()))
    if port_file is None:
        return
    port_file.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=port_file.parent, prefix=f".{port_file.name}.")
    with os.fdopen(fd, "w") as out:
        json.dump(ports, out)
    os.replace(partial, port_file)


def serve_app(
    app: Any, *, host: str, port: int, port_file: Path | None, log_level: str = "warning"
) -> None:
    """Serve the ASGI ``app`` on ``host:port`` (0: a free port) until SIGTERM/SIGINT.

    The bound port is announced (see :func:`announce_ports`) before the first request is read.
    """
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level)
    sock = listen(config)
    announce_ports(port_file, http=bound_port(sock))
    uvicorn.Server(config).run(sockets=[sock])
