"""Range checks of the services' numeric flags, reported as argparse usage errors (exit 2)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping


def parse_checked(
    parser: argparse.ArgumentParser,
    argv: list[str] | None = None,
    *,
    at_least: Mapping[str, float] | None = None,
    above: Mapping[str, float] | None = None,
) -> argparse.Namespace:
    """Parse ``argv``; refuse a flag below ``at_least[flag]`` or not above ``above[flag]``.

    Keys are flags as spelled (``"--max-versions"``). Checked after parsing, so defaults taken
    from environment variables are checked too; flags the parser lacks or left unset (None) are skipped.
    """
    args = parser.parse_args(argv)
    for flag, lowest in (at_least or {}).items():
        value = getattr(args, flag.lstrip("-").replace("-", "_"), None)
        if value is not None and value < lowest:
            parser.error(f"{flag} must be at least {lowest:g}, got {value:g}")
    for flag, bound in (above or {}).items():
        value = getattr(args, flag.lstrip("-").replace("-", "_"), None)
        if value is not None and value <= bound:
            parser.error(f"{flag} must be above {bound:g}, got {value:g}")
    return args
