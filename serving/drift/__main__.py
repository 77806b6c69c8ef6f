"""``python -m serving.drift``: the drift-detector service.

Every flag has an environment default, so the Helm chart configures it through env.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import uvicorn

from serving.drift.app import DriftService, bundle_loader, create_app, registry_loader
from serving.flags import parse_checked
from trending.monitoring.drift import DriftError, DriftMonitor


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line flags (defaults from TRENDING_* environment variables)."""
    parser = argparse.ArgumentParser(prog="python -m serving.drift", description=__doc__)
    parser.add_argument("--host", default=_env("TRENDING_DRIFT_HOST", "0.0.0.0"))  # noqa: S104
    parser.add_argument(
        "--port", type=int, default=int(_env("TRENDING_DRIFT_PORT", "8080") or 8080)
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--bundle",
        type=Path,
        default=_env("TRENDING_DRIFT_BUNDLE"),
        help="a bundle folder whose drift/ detector scores every version (local runs)",
    )
    parser.add_argument(
        "--registry-uri",
        default=_env("TRENDING_REGISTRY_URI"),
        help="registry to fetch each version's bundle from (file:// or s3://)",
    )
    parser.add_argument("--model-name", default=_env("TRENDING_MODEL_NAME", "genre-classifier"))
    parser.add_argument(
        "--alias",
        default=_env("TRENDING_REGISTRY_ALIAS", "production"),
        help="version assumed for events without ce-modelversion (registry mode)",
    )
    parser.add_argument("--default-version", default=_env("TRENDING_DRIFT_DEFAULT_VERSION"))
    parser.add_argument(
        "--window-size", type=int, default=int(_env("TRENDING_DRIFT_WINDOW_SIZE", "1000") or 1000)
    )
    parser.add_argument(
        "--min-window", type=int, default=int(_env("TRENDING_DRIFT_MIN_WINDOW", "100") or 100)
    )
    parser.add_argument(
        "--interval", type=float, default=float(_env("TRENDING_DRIFT_INTERVAL", "10") or 10)
    )
    parser.add_argument(
        "--max-versions", type=int, default=int(_env("TRENDING_DRIFT_MAX_VERSIONS", "4") or 4)
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(_env("TRENDING_DRIFT_CACHE_DIR", "/tmp/trending-drift") or "."),  # noqa: S108
    )
    return parse_checked(
        parser,
        argv,
        at_least={"--window-size": 2, "--min-window": 2, "--max-versions": 1, "--port": 0},
        above={"--interval": 0},
    )


def main(argv: list[str] | None = None) -> None:
    """Load the detector source, then serve until stopped."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    default_version = args.default_version
    try:
        if args.bundle is not None:
            loader = bundle_loader(args.bundle)
        elif args.registry_uri:
            loader = registry_loader(args.registry_uri, args.cache_dir)
            if default_version is None:
                from trending.registry import Registry, RegistryError

                try:
                    registry = Registry.from_uri(args.registry_uri, args.model_name)
                    default_version = str(registry.resolve(args.alias))
                    loader(args.model_name, default_version)  # fail early on a bad bundle
                except RegistryError as exc:
                    logging.warning(
                        "alias %s not resolvable yet (%s); events need ce-modelversion",
                        args.alias,
                        exc,
                    )
        else:
            sys.exit("give --bundle DIR or --registry-uri URI (or TRENDING_REGISTRY_URI)")
        monitor = DriftMonitor(
            loader,
            window_size=args.window_size,
            min_window=args.min_window,
            max_versions=args.max_versions,
        )
    except DriftError as exc:
        sys.exit(f"drift service cannot start: {exc}")
    service = DriftService(
        monitor, model_name=args.model_name, default_version=default_version, interval=args.interval
    )
    uvicorn.run(create_app(service), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
