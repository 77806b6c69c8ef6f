"""Helpers shared by the CLI commands: settings and clear failures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from pydantic import ValidationError
from rich.console import Console

from trending.settings import Settings

console = Console()
# soft_wrap: an error stays one line in a pod's log, whatever the width.
errors = Console(stderr=True, soft_wrap=True)


def load_settings() -> Settings:
    """Build settings from the environment, or exit with what to fix."""
    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            errors.print(f"[red]invalid setting[/red] TRENDING_{field.upper()}: {error['msg']}")
        raise typer.Exit(2) from None


@contextmanager
def failures_as_messages(*kinds: type[Exception]) -> Iterator[None]:
    """Turn expected errors into one red line and exit code 1 instead of a traceback."""
    try:
        yield
    except kinds as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
