"""``trending deploy``, ``trending canary status|promote|rollback``, ``trending shadow start|stop``.

Adapters (kubernetes client, the local stack) are imported inside command bodies, so importing
this module pulls in no serving code (docs/adr/0002-import-direction.md). The lead wires
``deploy``, ``canary_app`` and ``shadow_app`` into the main CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import console, failures_as_messages, load_settings
from serving.router.split import Upstream, read_split, write_split
from trending.registry import Registry, RegistryError
from trending.rollout.canary import CanaryPolicyError, load_policy
from trending.rollout.deploy import (
    DeployError,
    inference_service_from_manifest,
    mode_annotation,
    resolve_mode,
    to_yaml,
    with_canary,
)
from trending.settings import Settings

canary_app = typer.Typer(
    help="Watch, promote or roll back the running canary.", no_args_is_help=True
)
shadow_app = typer.Typer(
    help="Mirror traffic to a candidate (answers compared, never returned).", no_args_is_help=True
)
ACTOR = "trending-cli"
DEFAULT_SPLIT = Path(".trending/canary/split.json")
_ERRORS = (RegistryError, DeployError, CanaryPolicyError, ValueError)


def _registry(settings: Settings) -> Registry:
    return Registry.from_uri(settings.resolved_registry_uri, settings.model_name)


def deploy(
    version: Annotated[str, typer.Argument(help="Registry version (or alias) to roll out.")],
    canary: Annotated[
        int, typer.Option(help="The canary's share of the traffic, in percent.", min=0, max=100)
    ],
    mode: Annotated[
        str | None,
        typer.Option(
            help="serverless|knative|standard|rawdeployment when the object has no "
            "deploymentMode annotation (the chart always sets it)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the changed InferenceService, apply nothing.")
    ] = False,
    from_manifest: Annotated[
        Path | None,
        typer.Option(
            help="With --dry-run: start from this rendered manifest "
            "(helm template ... > isvc.yaml) instead of the live object."
        ),
    ] = None,
    name: Annotated[str, typer.Option(help="InferenceService name.")] = "genre-classifier",
    namespace: Annotated[str, typer.Option()] = "default",
) -> None:
    """Roll out VERSION as the canary on the InferenceService the chart rendered.

    Only the canary changes: Standard mode gets a spec.canary entry (a copy of the stable
    predictor pinned to VERSION), Knative a new revision pinned to VERSION with
    canaryTrafficPercent. The chart renders everything else; the canary controller takes the
    rollout from here (it steps, promotes or rolls back).
    """
    settings = load_settings()
    with failures_as_messages(*_ERRORS):
        if from_manifest is not None and not dry_run:
            raise DeployError(
                "--from-manifest only works with --dry-run; without it the live InferenceService "
                "is changed"
            )
        registry = _registry(settings)
        record = registry.show(registry.resolve(version))
        if from_manifest is not None:
            try:
                text = from_manifest.read_text()
            except OSError as exc:
                raise DeployError(f"cannot read {from_manifest}: {exc.strerror}") from None
            live = inference_service_from_manifest(text, name)
            resolved = resolve_mode(annotation=mode_annotation(live), configured=mode)
            typer.echo(to_yaml([with_canary(live, resolved, record.version, canary)]), nl=False)
            return
        from serving.canary.actuators import KServeActuator
        from serving.canary.kube import KubeInferenceServiceApi, KubeUnavailableError

        try:
            api = KubeInferenceServiceApi()
            live = api.get(name, namespace)
            resolved = api.detect_mode(live, mode)
        except KubeUnavailableError as exc:
            raise DeployError(str(exc)) from None
        changed = with_canary(live, resolved, record.version, canary)
        if dry_run:
            typer.echo(to_yaml([changed]), nl=False)
            return
        # The alias first: a controller that sees the canary in the object but no alias would
        # remove it; one that sees the alias first rolls the canary out itself.
        registry.set_canary(record.version, actor=ACTOR, reason=f"deployed with {canary}% traffic")
        try:
            KServeActuator(api, name, namespace, resolved).start_canary(record.version, canary)
        except KubeUnavailableError as exc:
            raise DeployError(
                f"{exc}; the canary alias is set, the controller will roll it out"
            ) from None
        console.print(f"{name} ({resolved}): canary v{record.version} at {canary}%")


@canary_app.command("status")
def status(
    split_file: Annotated[Path, typer.Option(help="Local router split file.")] = DEFAULT_SPLIT,
    last: Annotated[int, typer.Option(help="Decisions to show.")] = 5,
) -> None:
    """Aliases, the local split (if any) and the latest canary decisions with their evidence."""
    settings = load_settings()
    with failures_as_messages(*_ERRORS):
        registry = _registry(settings)
        aliases = registry.aliases()
        for alias in ("production", "canary"):
            record = aliases.get(alias)
            console.print(f"{alias}: {record.version if record else '-'}")
        if split_file.is_file():
            split = read_split(split_file)
            console.print(
                f"router: stable v{split.stable.version}, canary "
                f"{f'v{split.canary.version}' if split.canary else '-'} at "
                f"{split.canary_percent}%, shadow "
                f"{f'v{split.shadow.version}' if split.shadow else '-'}"
            )
        decisions = [e for e in registry.events() if e.kind == "canary_decision"][-last:]
        for event in decisions:
            checks = ", ".join(
                f"{c['name']}={c['status']}" for c in event.details.get("checks", [])
            )
            console.print(
                f"{event.at:%H:%M:%S} v{event.version} {event.details.get('action')} "
                f"at {event.details.get('traffic_percent')}%: {checks}"
            )


@canary_app.command("promote")
def promote(
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "manual promotion",
    split_file: Annotated[Path, typer.Option()] = DEFAULT_SPLIT,
) -> None:
    """Promote the canary now: production alias moves to it, the router (if local) sends it all traffic."""
    settings = load_settings()
    with failures_as_messages(*_ERRORS):
        registry = _registry(settings)
        version = registry.resolve("canary")
        if split_file.is_file():
            from serving.canary.actuators import LocalSplitActuator

            LocalSplitActuator(split_file).promote()
        registry.promote(version, actor=ACTOR, reason=reason)
        registry.clear_canary(actor=ACTOR, reason=f"version {version} promoted: {reason}")
        console.print(f"version {version} is production")


@canary_app.command("rollback")
def rollback(
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "manual rollback",
    split_file: Annotated[Path, typer.Option()] = DEFAULT_SPLIT,
) -> None:
    """Stop the canary now: all traffic back to stable, canary alias cleared."""
    settings = load_settings()
    with failures_as_messages(*_ERRORS):
        registry = _registry(settings)
        if split_file.is_file():
            from serving.canary.actuators import LocalSplitActuator

            LocalSplitActuator(split_file).rollback()
        registry.clear_canary(actor=ACTOR, reason=reason)
        console.print(f"canary stopped; production stays {registry.resolve('production')}")


@shadow_app.command("start")
def shadow_start(
    version: Annotated[int, typer.Argument(help="Candidate version.")],
    url: Annotated[str, typer.Option(help="Model server serving VERSION.")],
    percent: Annotated[int, typer.Option(help="Share of requests mirrored.")] = 100,
    split_file: Annotated[Path, typer.Option()] = DEFAULT_SPLIT,
) -> None:
    """Mirror PERCENT % of the router's stable traffic to VERSION (compared, never returned)."""
    with failures_as_messages(*_ERRORS):
        split = read_split(split_file)
        write_split(
            split_file,
            split.model_copy(
                update={"shadow": Upstream(version=version, url=url), "shadow_percent": percent}
            ),
        )
        console.print(f"shadowing {percent}% of traffic to v{version}")


@shadow_app.command("stop")
def shadow_stop(split_file: Annotated[Path, typer.Option()] = DEFAULT_SPLIT) -> None:
    """Stop mirroring."""
    with failures_as_messages(*_ERRORS):
        split = read_split(split_file)
        write_split(split_file, split.model_copy(update={"shadow": None}))
        console.print("shadow stopped")


def run_local_canary(
    settings: Settings,
    *,
    canary_version: int,
    stable_version: int | None = None,
    policy_path: Path | None = None,
    policy_overrides: dict[str, Any] | None = None,
    workdir: Path | None = None,
    rate_per_second: float = 20.0,
    shadow_percent: int = 50,
    canary_max_instances: int | None = None,
) -> Any:
    """Run a whole local canary for the demo: servers, router, Prometheus, traffic, controller.

    Args:
        settings: Platform settings (registry, model name, home).
        canary_version: The candidate.
        stable_version: Defaults to the production alias.
        policy_path: Canary policy YAML (defaults when None).
        policy_overrides: Keys replacing the policy's (e.g. short windows for a demo).
        workdir: Logs and Prometheus data (default ``<home>/canary``).
        rate_per_second: Synthetic request rate.
        shadow_percent: Share of stable requests mirrored to the canary for agreement evidence.
        canary_max_instances: Inject a fault (0 = the canary rejects every request).

    Returns:
        ``serving.canary.controller.CanaryOutcome`` (result "promoted" or "rolled_back").
    """
    from cli.local_canary import TrafficGenerator, local_canary_stack
    from serving.canary.actuators import LocalSplitActuator
    from serving.canary.controller import run_canary
    from trending.data.synthetic import generate_titles
    from trending.monitoring.prom import PrometheusClient

    policy = load_policy(policy_path)
    if policy_overrides:
        policy = policy.model_validate({**policy.model_dump(), **policy_overrides})
    registry = _registry(settings)
    stable = stable_version if stable_version is not None else registry.resolve("production")
    registry.set_canary(canary_version, actor=ACTOR, reason="local canary")
    workdir = workdir or settings.home / "canary"
    titles = generate_titles(200, seed=settings.seed + 1)
    records = [
        {
            "title_id": r.title_id,
            "plot": r.plot,
            "reviews": list(r.reviews),
            "genres": list(r.genres),
        }
        for r in titles.itertuples()
    ]
    caps = {canary_version: canary_max_instances} if canary_max_instances is not None else None
    with local_canary_stack(
        model=settings.model_name,
        registry_uri=settings.resolved_registry_uri,
        versions=[stable, canary_version],
        workdir=workdir,
        max_instances=caps,
    ) as stack:
        stack.route(stable, canary_version, shadow_percent=shadow_percent)
        traffic = TrafficGenerator(
            stack.router_url,
            settings.model_name,
            records,
            rate_per_second=rate_per_second,
            send_feedback=True,
            token=stack.token,
        ).start()
        try:
            return run_canary(
                registry=registry,
                actuator=LocalSplitActuator(stack.split_file),
                prometheus=PrometheusClient(stack.prometheus_url),
                policy=policy,
                stable_version=stable,
                canary_version=canary_version,
            )
        finally:
            traffic.stop()
