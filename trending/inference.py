"""The inference request contract: what a client may send, checked before any model runs.

Serving adapters (KServe predictor, transformer) turn these errors into 4xx answers.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trending.schema import MAX_PLOT_CHARS

DEFAULT_MAX_INSTANCES = 64


class InvalidRequestError(ValueError):
    """A request the client must fix; the message says how."""


class TitleInput(BaseModel):
    """One title to classify: a plot and optional reviews (and an optional id to echo back)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title_id: str | None = Field(None, max_length=200)
    plot: str = Field(min_length=1, max_length=MAX_PLOT_CHARS)
    reviews: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("reviews")
    @classmethod
    def _reviews_are_text(cls, value: list[str]) -> list[str]:
        return [r for r in (v.strip() for v in value) if r]


def _describe(error: ValidationError, index: int) -> str:
    first = error.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "instance"
    hint = {
        "string_too_short": "must not be empty or whitespace",
        "missing": "is required",
        "string_type": "must be a string",
        "extra_forbidden": "is not a known field (use title_id, plot, reviews)",
    }.get(first["type"], first["msg"])
    return f"instances[{index}].{field} {hint}"


def parse_instances(instances: Any, *, max_instances: int = DEFAULT_MAX_INSTANCES) -> list[TitleInput]:
    """Validate V1 ``instances``: a non-empty list of plot strings or ``{plot, reviews?, title_id?}``."""
    if not isinstance(instances, list):
        raise InvalidRequestError(
            'body must be {"instances": [...]} with a list of plot strings or {"plot": ...} objects'
        )
    if not instances:
        raise InvalidRequestError("instances is empty: send at least one title")
    if len(instances) > max_instances:
        raise InvalidRequestError(
            f"{len(instances)} instances in one request; the limit is {max_instances}: split the batch"
        )
    titles = []
    for i, item in enumerate(instances):
        if isinstance(item, str):
            item = {"plot": item}
        if not isinstance(item, dict):
            raise InvalidRequestError(
                f"instances[{i}] is {type(item).__name__}: send a plot string or a {{\"plot\": ...}} object"
            )
        try:
            titles.append(TitleInput.model_validate(item))
        except ValidationError as exc:
            raise InvalidRequestError(_describe(exc, i)) from None
    return titles


def parse_v1_body(body: Any, *, max_instances: int = DEFAULT_MAX_INSTANCES) -> list[TitleInput]:
    """Validate a whole V1 body ``{"instances": [...]}``."""
    if not isinstance(body, dict) or "instances" not in body:
        raise InvalidRequestError(
            'body must be a JSON object {"instances": [...]} (plot strings or {"plot": ...} objects)'
        )
    return parse_instances(body["instances"], max_instances=max_instances)


def texts_from_bytes(values: list[Any], *, max_instances: int = DEFAULT_MAX_INSTANCES) -> list[TitleInput]:
    """Validate the elements of a V2 BYTES tensor: each one plot, UTF-8."""
    plots = []
    for i, value in enumerate(values):
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidRequestError(f"element {i} of the input tensor is not valid UTF-8") from None
        if not isinstance(value, str):
            raise InvalidRequestError(f"element {i} of the input tensor must be text (BYTES)")
        plots.append(value)
    return parse_instances(plots, max_instances=max_instances)
