"""The inference request contract: what a client may send, checked before any model runs.

Serving adapters (KServe predictor, transformer) turn these errors into 4xx answers: every
``InvalidRequestError`` carries the HTTP status and a short ``kind`` for the error metric, and a
message that says what to fix.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trending.data.schema import MAX_PLOT_CHARS

# Deeper than any valid request (V2's [N, 1] data is 5 levels), shallow enough that no parser
# downstream (Python's json, pydantic, KServe's) can hit its recursion limit.
MAX_JSON_DEPTH = 32

DEFAULT_MAX_INSTANCES = 64
DEFAULT_MAX_PAYLOAD_BYTES = 1 << 20  # 1 MiB: 64 instances of long plots plus reviews fit.
MAX_TITLE_ID_CHARS = 200


class InvalidRequestError(ValueError):
    """A request the client must fix; the message says how.

    Attributes:
        status: The HTTP status the adapters answer with.
        kind: A short label for the ``trending_errors_total`` metric.
    """

    status = 400
    kind = "invalid_input"


class InvalidJSONError(InvalidRequestError):
    """The body is not UTF-8 JSON."""

    kind = "invalid_json"


class PayloadTooLargeError(InvalidRequestError):
    """The body is larger than the server's cap."""

    status = 413
    kind = "payload_too_large"


class UnknownTitleError(InvalidRequestError):
    """A title id the feature store does not know."""

    status = 404
    kind = "unknown_title"


class TitleInput(BaseModel):
    """One title to classify: a plot and optional reviews (and an optional id to echo back)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title_id: str | None = Field(None, max_length=MAX_TITLE_ID_CHARS)
    plot: str = Field(min_length=1, max_length=MAX_PLOT_CHARS)
    reviews: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("reviews")
    @classmethod
    def _reviews_are_text(cls, value: list[str]) -> list[str]:
        return [r for r in (v.strip() for v in value) if r]


class TitleIdInput(BaseModel):
    """One title to classify by id: the transformer looks its features up in Feast."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title_id: str = Field(min_length=1, max_length=MAX_TITLE_ID_CHARS)


_HINTS = {
    "string_too_short": "must not be empty or whitespace",
    "string_too_long": "is too long",
    "too_long": "has too many items",
    "missing": "is required",
    "string_type": "must be a string",
    "list_type": "must be a list of strings",
    "extra_forbidden": "is not a known field",
}


def _describe(error: ValidationError, index: int, fields: str) -> str:
    first = error.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "instance"
    hint = _HINTS.get(first["type"], first["msg"])
    if first["type"] == "extra_forbidden":
        hint = f"{hint} (use {fields})"
    if first["type"] in ("string_too_long", "too_long"):
        hint = f"{hint}: {first['msg'].lower()}"
    return f"instances[{index}].{field} {hint}"


def decode_json_body(raw: bytes, *, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> Any:
    """Check a request body's size and encoding and parse it as JSON.

    Args:
        raw: The request body.
        max_bytes: The largest body accepted.

    Returns:
        The parsed JSON value.

    Raises:
        PayloadTooLargeError: The body is larger than ``max_bytes``.
        InvalidJSONError: The body is not UTF-8 or not JSON.
    """
    check_payload_size(len(raw), max_bytes)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidJSONError(
            f"the body is not valid UTF-8 (byte {exc.start}): send JSON encoded as UTF-8"
        ) from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidJSONError(f"the body is not valid JSON ({exc}): send a JSON object") from None


def parse_json_strictly(raw: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    r"""Parse a request body as strict JSON: UTF-8, finite numbers, valid Unicode, bounded depth.

    Python's ``json`` accepts ``NaN``/``Infinity``/``1e999`` (values no JSON response can
    carry back) and lone surrogates (``"\ud800"``, which no UTF-8 encoder can write), and it
    recurses once per nesting level (``RecursionError`` near 1,000 levels). This parser
    refuses all of them up front with a message for the client.

    Raises:
        InvalidJSONError: Saying what is wrong and where.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if isinstance(exc.__cause__, UnicodeDecodeError) or "UTF-8" in exc.msg:
            raise InvalidJSONError(
                "the body is not valid UTF-8: send JSON encoded as UTF-8 (without a byte order "
                "mark)"
            ) from None
        raise InvalidJSONError(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}; "
            "send a JSON object (numbers finite, no NaN or Infinity; strings valid Unicode)"
        ) from None
    check_json_value(value, max_depth=max_depth)
    return value


def check_json_value(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse nesting deeper than ``max_depth`` and non-finite numbers (iteratively).

    Raises:
        InvalidJSONError: Naming the limit or the offending number.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise InvalidJSONError(
                    f"the body nests arrays or objects more than {max_depth} levels deep: "
                    "send a flat request"
                )
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidJSONError("the body has a number out of range: send finite numbers")


def check_payload_size(size: int, max_bytes: int) -> None:
    """Raise ``PayloadTooLargeError`` when a body of ``size`` bytes exceeds ``max_bytes``."""
    if size > max_bytes:
        raise PayloadTooLargeError(
            f"the request body has more than {max_bytes} bytes (the server's limit): "
            "send fewer instances per request or shorter texts"
        )


Instance = TypeVar("Instance", TitleInput, TitleIdInput)


def _validate_each(
    items: list[Any], model: type[Instance], field: str, fields: str
) -> list[Instance]:
    """Validate each item (a ``field`` string or an object) as ``model``."""
    valid = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            item = {field: item}
        if not isinstance(item, dict):
            raise InvalidRequestError(
                f"instances[{i}] is {type(item).__name__}: "
                f'send a {field} string or a {{"{field}": ...}} object'
            )
        try:
            valid.append(model.model_validate(item))
        except ValidationError as exc:
            raise InvalidRequestError(_describe(exc, i, fields)) from None
    return valid


def _check_instances_list(instances: Any, max_instances: int, example: str) -> list[Any]:
    if not isinstance(instances, list):
        raise InvalidRequestError(f'body must be {{"instances": [...]}} with a list of {example}')
    if not instances:
        raise InvalidRequestError("instances is empty: send at least one title")
    if len(instances) > max_instances:
        raise InvalidRequestError(
            f"{len(instances)} instances in one request; the limit is {max_instances}: "
            "split the batch"
        )
    return instances


def parse_instances(
    instances: Any, *, max_instances: int = DEFAULT_MAX_INSTANCES
) -> list[TitleInput]:
    """Validate V1 ``instances``: plot strings or ``{plot, reviews?, title_id?}`` objects.

    Raises:
        InvalidRequestError: Naming the first bad instance and field.
    """
    items = _check_instances_list(instances, max_instances, 'plot strings or {"plot": ...} objects')
    return _validate_each(items, TitleInput, "plot", "title_id, plot, reviews")


def parse_v1_body(body: Any, *, max_instances: int = DEFAULT_MAX_INSTANCES) -> list[TitleInput]:
    """Validate a whole V1 body ``{"instances": [...]}``."""
    if not isinstance(body, dict) or "instances" not in body:
        raise InvalidRequestError(
            'body must be a JSON object {"instances": [...]} '
            '(plot strings or {"plot": ...} objects)'
        )
    return parse_instances(body["instances"], max_instances=max_instances)


def parse_title_ids(body: Any, *, max_instances: int = DEFAULT_MAX_INSTANCES) -> list[str]:
    """Validate a transformer body ``{"instances": [{"title_id": ...}, ...]}`` (or id strings).

    Raises:
        InvalidRequestError: Naming the first bad instance.
    """
    if not isinstance(body, dict) or "instances" not in body:
        raise InvalidRequestError(
            'body must be a JSON object {"instances": [{"title_id": "..."}]} to ask by title id'
        )
    items = _check_instances_list(
        body["instances"], max_instances, '{"title_id": ...} objects or title id strings'
    )
    return [t.title_id for t in _validate_each(items, TitleIdInput, "title_id", "title_id")]


def texts_from_bytes(
    values: list[Any], *, max_instances: int = DEFAULT_MAX_INSTANCES
) -> list[TitleInput]:
    """Validate the elements of a V2 BYTES tensor: each one plot, UTF-8."""
    if not isinstance(values, list):
        raise InvalidRequestError("the input tensor's data must be a flat list of plot texts")
    plots = []
    for i, value in enumerate(values):
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidRequestError(
                    f"element {i} of the input tensor is not valid UTF-8: encode plots as UTF-8"
                ) from None
        if not isinstance(value, str):
            raise InvalidRequestError(
                f"element {i} of the input tensor is {type(value).__name__}: "
                "each element must be one plot text (BYTES)"
            )
        plots.append(value)
    titles = parse_instances(plots, max_instances=max_instances)
    return titles


def parse_v2_input(
    datatype: str, shape: Sequence[Any], data: Any, *, max_instances: int = DEFAULT_MAX_INSTANCES
) -> list[TitleInput]:
    """Validate one Open Inference Protocol input tensor: BYTES of shape ``[N]`` (or ``[N, 1]``).

    Raises:
        InvalidRequestError: Saying which part of the tensor to fix.
    """
    if datatype != "BYTES":
        raise InvalidRequestError(
            f"the input tensor's datatype is {datatype}: send one BYTES tensor of plot texts"
        )
    values = list(data) if isinstance(data, list | tuple | np.ndarray) else data
    if isinstance(values, list) and values and isinstance(values[0], list | np.ndarray):
        values = [v for row in values for v in row]  # [N, 1] arrives nested from some clients
    titles = texts_from_bytes(values, max_instances=max_instances)
    dims = [d for d in shape] if isinstance(shape, list | tuple) else None
    n = len(titles)
    if dims is None or dims not in ([n], [n, 1]):
        raise InvalidRequestError(
            f"the input tensor has shape {shape} but {n} elements: use shape [{n}]"
        )
    return titles


def prediction_rows(
    titles: Sequence[TitleInput],
    scores: np.ndarray,
    chosen: np.ndarray,
    genres: Sequence[str],
) -> list[dict[str, Any]]:
    """V1 prediction objects: the title id (if sent), the chosen genres, all scores.

    Args:
        titles: The validated inputs (for the echoed ``title_id``).
        scores: Scores, shape (titles, genres).
        chosen: Multi-hot genres above their thresholds, same shape.
        genres: Column names of ``scores``.
    """
    rows = []
    for title, row, row_on in zip(titles, scores.tolist(), chosen.tolist(), strict=True):
        out: dict[str, Any] = {"title_id": title.title_id} if title.title_id else {}
        out["genres"] = [g for g, on in zip(genres, row_on, strict=True) if on]
        out["scores"] = {g: round(s, 6) for g, s in zip(genres, row, strict=True)}
        rows.append(out)
    return rows
