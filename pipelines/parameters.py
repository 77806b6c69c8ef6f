"""The pipelines' run parameters, declared once: name, type, default and what each one means.

Both pipelines share most of their parameters (the environment, the models' parameters, the
search budget, the gate); each one is declared here once, and ``with_parameters`` gives a
pipeline body exactly the parameters it lists, as the signature KFP reads (so the compiled IR
carries each one's name, type, default and description). The continuous-training pipeline hands
every parameter it shares with the training pipeline through ``passed_on``.

The names and defaults are a contract: the chart's settings (TRENDING_PIPELINE_PARAMS), the CLI
and recurring runs set parameters by name, and ``pipelines.cluster.pipeline_defaults`` fills the
environment ones at compile time.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

REQUIRED = inspect.Parameter.empty


@dataclass(frozen=True)
class PipelineParameter:
    """One run parameter of a pipeline.

    Attributes:
        name: The parameter's name in the IR (and in ``--param name=value``).
        annotation: Its type: str, int, float or bool.
        description: What it means (the KFP UI shows it).
        default: Its default; ``REQUIRED`` when a run (or the compile step) must supply it.
    """

    name: str
    annotation: type
    description: str
    default: Any = REQUIRED


# Where the data, the features and the registry live (defaults from the settings at compile time).
ENVIRONMENT = (
    PipelineParameter("data_uri", str, "Data store root (file:///dir or s3://bucket/prefix)."),
    PipelineParameter("feature_repo", str, "The Feast repository folder."),
    PipelineParameter("feast_dir", str, "Feast's local state folder ('' = scratch per step)."),
    PipelineParameter("registry_uri", str, "Model registry root (file:///dir or s3://...)."),
    PipelineParameter(
        "feature_store_yaml", str, "The Feast environment file.", "feature_store.yaml"
    ),
    PipelineParameter("model_name", str, "Registered model name.", "genre-classifier"),
)
# Which titles a training run reads (the continuous-training pipeline picks a window instead).
DATA = (
    PipelineParameter(
        "source",
        str,
        "Where the titles come from: snapshot, window, file, tmdb or synthetic.",
        "snapshot",
    ),
    PipelineParameter(
        "source_params_json",
        str,
        'JSON parameters of the source (e.g. {"snapshot_id": ...}).',
        "{}",
    ),
    PipelineParameter(
        "max_reject_rate", float, "Share of rows validation may reject before failing.", 0.2
    ),
)
# Why a retraining runs and on which window of the data.
RETRAINING = (
    PipelineParameter(
        "reason", str, "Why it runs: drift, schedule, data_volume or performance.", "schedule"
    ),
    PipelineParameter(
        "window", str, "Training data window: growing, fixed or drift_selected.", "growing"
    ),
    PipelineParameter("window_days", int, "Length of a fixed window (days).", 90),
    PipelineParameter(
        "drift_since", str, "Drift onset (ISO time) for a drift_selected window.", ""
    ),
    PipelineParameter("alert_group", str, "The Alertmanager group that asked for the run.", ""),
)
# How the candidates are trained, judged and monitored.
TRAINING = (
    PipelineParameter(
        "xgboost_params_json", str, "JSON parameters of the XGBoost family (over defaults).", "{}"
    ),
    PipelineParameter(
        "bert_params_json", str, "JSON parameters of the BERT family (over defaults).", "{}"
    ),
    PipelineParameter(
        "search_trials",
        int,
        "Seeded hyper-parameter search trials for XGBoost on the training split; 0 keeps the "
        "defaults (the best of the recorded search). Parameters set in xgboost_params_json "
        "are not searched.",
        0,
    ),
    PipelineParameter("gate_policy_json", str, "JSON GatePolicy fields (over defaults).", "{}"),
    PipelineParameter("robustness_cases", int, "Texts per robustness check.", 200),
    PipelineParameter("drift_backend", str, "Drift detector backend: scipy or alibi.", "scipy"),
)
REASON = PipelineParameter(
    "reason", str, "Why this run exists, for the event log.", "training pipeline"
)
SEED = PipelineParameter("seed", int, "Seed of the split, the search and every model.", 7)


def parameters(
    *groups: tuple[PipelineParameter, ...] | PipelineParameter,
    defaults: Mapping[str, Any] | None = None,
) -> tuple[PipelineParameter, ...]:
    """The parameters of one pipeline, in order, with some defaults replaced.

    Raises:
        ValueError: A name given twice, or a default for a parameter not listed.
    """
    listed: list[PipelineParameter] = []
    for group in groups:
        listed += [group] if isinstance(group, PipelineParameter) else list(group)
    names = [p.name for p in listed]
    if duplicated := sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"pipeline parameters listed twice: {duplicated}")
    defaults = dict(defaults or {})
    if unknown := sorted(set(defaults) - set(names)):
        raise ValueError(f"defaults for parameters the pipeline does not have: {unknown}")
    return tuple(replace(p, default=defaults[p.name]) if p.name in defaults else p for p in listed)


def with_parameters(
    declared: tuple[PipelineParameter, ...], *, returns: Any
) -> Callable[[Callable[[dict[str, Any]], Any]], Callable[..., Any]]:
    """Give a pipeline body (which takes the arguments as one dict) the declared parameters.

    The returned function has the parameters as its signature and an ``Args:`` docstring, which
    is what ``@dsl.pipeline`` reads; KFP calls it with one value per parameter.
    """
    signature = inspect.Signature(
        [
            inspect.Parameter(
                p.name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=p.default,
                annotation=p.annotation,
            )
            for p in declared
        ],
        return_annotation=returns,
    )

    def decorate(body: Callable[[dict[str, Any]], Any]) -> Callable[..., Any]:
        def pipeline_function(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return body(dict(bound.arguments))

        pipeline_function.__signature__ = signature  # type: ignore[attr-defined]
        pipeline_function.__name__ = body.__name__
        pipeline_function.__qualname__ = body.__qualname__
        pipeline_function.__module__ = body.__module__
        args = "\n".join(f"    {p.name}: {p.description}" for p in declared)
        pipeline_function.__doc__ = f"{inspect.cleandoc(body.__doc__ or '')}\n\nArgs:\n{args}\n"
        return pipeline_function

    return decorate


def passed_on(arguments: Mapping[str, Any], to: tuple[PipelineParameter, ...]) -> dict[str, Any]:
    """The ``arguments`` whose names are parameters in ``to`` (what a pipeline hands an inner one)."""
    names = {p.name for p in to}
    return {k: v for k, v in arguments.items() if k in names}
