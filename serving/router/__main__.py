"""``python -m serving.router --split_file F --http_port P``: the local stable/canary router."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import uvicorn

from serving.flags import parse_checked
from serving.router.app import create_app


def build_parser() -> argparse.ArgumentParser:
    """Flags of the router."""
    parser = argparse.ArgumentParser(prog="python -m serving.router", description=__doc__)
    parser.add_argument("--split_file", type=Path, required=True, help="Traffic split JSON file.")
    parser.add_argument("--http_port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--upstream_timeout", type=float, default=30.0)
    return parser


def main() -> None:
    """Parse flags, check the split file, serve."""
    args = parse_checked(build_parser(), above={"--upstream_timeout": 0})
    logging.basicConfig(level=logging.INFO)
    app = create_app(args.split_file, upstream_timeout=args.upstream_timeout)
    uvicorn.run(app, host=args.host, port=args.http_port, log_level="warning")


if __name__ == "__main__":
    main()
