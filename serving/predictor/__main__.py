"""``python -m serving.predictor``: serve a genre bundle with the KServe ModelServer."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import kserve

from serving.predictor.model import GenreClassifierModel
from trending.inference import DEFAULT_MAX_INSTANCES


def build_parser() -> argparse.ArgumentParser:
    """KServe's server flags plus where the bundle comes from."""
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser], description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--bundle_dir", type=Path, help="A bundle folder (e.g. /mnt/models).")
    source.add_argument("--registry_uri", help="Registry root: file:///dir or s3://bucket/prefix.")
    parser.add_argument("--ref", default="production", help="Alias or version to serve from the registry.")
    parser.add_argument("--cache_dir", type=Path, default=Path("/tmp/trending-bundles"))  # noqa: S108
    parser.add_argument("--max_instances", type=int, default=DEFAULT_MAX_INSTANCES)
    return parser


def main() -> None:
    """Parse flags, load the model once, serve."""
    args = build_parser().parse_args()
    model = GenreClassifierModel(
        args.model_name,
        bundle_dir=args.bundle_dir,
        registry_uri=args.registry_uri,
        ref=args.ref,
        cache_dir=args.cache_dir,
        max_instances=args.max_instances,
    )
    model.load()
    logging.getLogger("trending").info(
        "serving %s version %s (%s)", model.name, model.version, model.predictor.manifest.model_family
    )
    kserve.ModelServer(http_port=args.http_port, grpc_port=args.grpc_port).start([model])


if __name__ == "__main__":
    main()
