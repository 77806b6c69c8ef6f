"""``python -m serving.router --split_file F --http_port P``: the local stable/canary router.

Local only (the demo and ``trending canary`` on this machine): on a cluster KServe splits the
traffic itself (docs/adr/0009-canary.md).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import Field, SecretStr

from serving.listening import serve_app
from serving.router.app import build_router
from serving.settings import ServiceSettings, exit_with, load_settings, settings_parser

PROG = "python -m serving.router"


class RouterSettings(ServiceSettings):
    """The split file and where the router listens."""

    split_file: Path = Field(description="Traffic split JSON file.")
    http_port: int = Field(8080, ge=0, description="HTTP port.")
    upstream_timeout: float = Field(30.0, gt=0, description="Seconds to wait for a predictor.")
    token_file: Path | None = Field(
        None, description="File holding the bearer token of /feedback and /shadow/events."
    )
    router_token: SecretStr | None = Field(
        None, description="The bearer token of /feedback and /shadow/events (no flag)."
    )


def _token(settings: RouterSettings) -> str:
    if settings.token_file is not None:
        try:
            return settings.token_file.read_text().strip()
        except OSError as exc:
            exit_with(PROG, f"cannot read the router token file {settings.token_file}: {exc}")
    if settings.router_token is not None:
        return settings.router_token.get_secret_value().strip()
    exit_with(
        PROG,
        "give --token_file FILE or TRENDING_ROUTER_TOKEN: the bearer token /feedback and "
        "/shadow/events require (16+ characters)",
    )


def parse(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> RouterSettings:
    """The settings from ``argv`` and ``environ`` (default: the process's); exit 2 on error."""
    parser = settings_parser(RouterSettings, prog=PROG, description=__doc__)
    return load_settings(RouterSettings, parser, argv, environ)[1]


def main(argv: list[str] | None = None) -> None:
    """Parse flags, check the split file, serve."""
    settings = parse(argv)
    logging.basicConfig(level=logging.INFO)
    try:
        app = build_router(
            settings.split_file, _token(settings), upstream_timeout=settings.upstream_timeout
        )
    except ValueError as exc:
        exit_with(PROG, str(exc))
    serve_app(app, host=settings.host, port=settings.http_port, port_file=settings.port_file)


if __name__ == "__main__":
    main()
