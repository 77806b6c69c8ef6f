"""``python -m serving.canary``: run one canary of a model to promotion or rollback.

Locally: ``--split_file`` (the router's split). On KServe: ``--inference_service NAME
--namespace NS [--mode standard|knative]`` (mode detected from the cluster when omitted).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from prometheus_client import start_http_server

from serving.canary.actuators import KServeActuator, LocalSplitActuator, TrafficActuator
from serving.canary.controller import ControllerMetrics, run_canary
from trending.monitoring.prom import PrometheusClient
from trending.registry import Registry, RegistryError
from trending.rollout.canary import CanaryPolicyError, load_policy
from trending.rollout.deploy import DeployError


def build_parser() -> argparse.ArgumentParser:
    """Flags of the controller (defaults from TRENDING_* environment variables)."""
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model_name", default=env("TRENDING_MODEL_NAME", "genre-classifier"))
    parser.add_argument("--registry_uri", default=env("TRENDING_REGISTRY_URI"))
    parser.add_argument("--prometheus_url", default=env("TRENDING_PROMETHEUS_URL"))
    parser.add_argument("--policy", type=Path, default=None, help="Canary policy YAML.")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--split_file", type=Path, help="Local router split file.")
    target.add_argument("--inference_service", default=env("TRENDING_INFERENCE_SERVICE"))
    parser.add_argument("--namespace", default=env("TRENDING_NAMESPACE", "default"))
    parser.add_argument("--mode", default=None, help="standard|knative (default: detect).")
    parser.add_argument("--metrics_port", type=int, default=0, help="Expose controller metrics.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the canary; exit 0 when promoted, 3 when rolled back, 2 on bad input."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not args.registry_uri or not args.prometheus_url:
        print("error: give --registry_uri and --prometheus_url (or TRENDING_REGISTRY_URI / "
              "TRENDING_PROMETHEUS_URL)", file=sys.stderr)  # fmt: skip
        return 2
    try:
        policy = load_policy(args.policy)
        actuator: TrafficActuator
        if args.split_file:
            actuator = LocalSplitActuator(args.split_file)
        elif args.inference_service:
            from serving.canary.kube import KubeInferenceServiceApi

            api = KubeInferenceServiceApi()
            mode = api.detect_mode(args.inference_service, args.namespace, args.mode)
            actuator = KServeActuator(api, args.inference_service, args.namespace, mode)
        else:
            print(
                "error: give --split_file (local) or --inference_service (KServe)", file=sys.stderr
            )
            return 2
        metrics = ControllerMetrics()
        if args.metrics_port:
            start_http_server(args.metrics_port, registry=metrics.registry)
        outcome = run_canary(
            registry=Registry.from_uri(args.registry_uri, args.model_name),
            actuator=actuator,
            prometheus=PrometheusClient(args.prometheus_url),
            policy=policy,
            metrics=metrics,
        )
    except (CanaryPolicyError, DeployError, RegistryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"version {outcome.canary_version}: {outcome.result}")
    return 0 if outcome.result == "promoted" else 3


if __name__ == "__main__":
    sys.exit(main())
