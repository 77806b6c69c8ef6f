"""Feature rows into Feast's online store: converted column by column, written by the store.

``FeatureStore.write_to_online_store`` converts a frame twice (pandas to Arrow, then Arrow to
numpy to one protobuf per value through ``python_values_to_proto_values``, which asks
``pd.isnull`` of every value) before the online store's ``online_write_batch`` runs. Here the
frame's columns become Feast ``Value`` protobufs directly, one column at a time: one protobuf per
distinct value of a column (a ``Value`` is only serialized by the stores, so rows can share it),
nulls found once per column with ``Series.isna``. The rows then go, in batches, to the configured
online store's own ``online_write_batch`` (``RedisOnlineStore``, ``SqliteOnlineStore``, ...):
Feast's entity-key serialization, key layout, value encoding and event-time rule stay Feast's.

Columns of a type or dtype this module does not convert itself go through Feast's own
``python_values_to_proto_values``, after the same Arrow round trip ``write_to_online_store``
makes. tests/unit/test_online_write.py compares the protobufs with Feast's conversion byte for
byte; docs/adr/0020-feast-materialization-by-column.md records why.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from feast import FeatureView
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

# Rows per online_write_batch call (one Redis pipeline of reads, one of writes; one SQLite
# transaction): bounds the memory a large catalogue's protobufs and pipelined commands take.
# Feast's local materialization engine uses the same size; 2,000-row batches cost 0-10% more
# CPU than one 6,000-row batch, 500-row ones 5-20% more (docs/adr/0020).
WRITE_BATCH_ROWS = 10_000

OnlineRow = tuple["EntityKey", dict[str, "Value"], datetime, datetime | None]


def _scalar_converters() -> dict[Any, tuple[str, Callable[[Any], Any], Callable[[Any], bool]]]:
    """Per scalar value type: the Value field, Feast's conversion, and the dtypes it applies to.

    The conversions are those of ``feast.type_map.PYTHON_SCALAR_VALUE_TYPE_TO_PROTO_VALUE``;
    a dtype outside the listed ones goes through Feast's own conversion instead.
    """
    from feast.value_type import ValueType
    from pandas.api import types

    def numeric(dtype: Any) -> bool:
        return types.is_numeric_dtype(dtype) and not types.is_bool_dtype(dtype)

    def text(dtype: Any) -> bool:
        return types.is_object_dtype(dtype) or types.is_string_dtype(dtype)

    return {
        ValueType.INT32: ("int32_val", int, types.is_integer_dtype),
        ValueType.INT64: ("int64_val", int, numeric),
        ValueType.FLOAT: ("float_val", float, numeric),
        ValueType.DOUBLE: ("double_val", float, numeric),
        ValueType.STRING: ("string_val", str, text),
        ValueType.BOOL: ("bool_val", bool, types.is_bool_dtype),
        # Not Feast's: it turns b"" into a null when no row of the batch has longer bytes.
        ValueType.BYTES: ("bytes_val", bytes, types.is_object_dtype),
    }


def _list_converters() -> dict[Any, tuple[str, Any]]:
    """Per list value type this module converts: the Value field and its list message."""
    from feast.protos.feast.types.Value_pb2 import DoubleList, Int64List, StringList
    from feast.value_type import ValueType

    return {
        ValueType.STRING_LIST: ("string_list_val", StringList),
        ValueType.INT64_LIST: ("int64_list_val", Int64List),
        ValueType.DOUBLE_LIST: ("double_list_val", DoubleList),
    }


def column_values(series: pd.Series, value_type: Any) -> list[Value]:
    """The Feast ``Value`` of each entry of ``series``, as Feast would write it for ``value_type``.

    A missing entry (None, NaN, NaT, pd.NA) is an empty ``Value``, as in Feast. In a column of
    mostly repeated values, equal entries of one Python type share one ``Value`` object (not
    floats: -0.0 equals 0.0 but is encoded apart).

    Args:
        series: One column of feature rows.
        value_type: The field's ``feast.ValueType`` (``field.dtype.to_value_type()``).
    """
    from feast.protos.feast.types.Value_pb2 import Value

    null = Value()
    scalar = _scalar_converters().get(value_type)
    if scalar is not None and scalar[2](series.dtype):
        field, convert, _ = scalar
        values = _with_nulls_as_none(series)
        if convert is not float and len({type(v) for v in values} - {type(None)}) <= 1:
            distinct = set(values)
            if len(distinct) <= len(values) // 2:  # sharing pays when values repeat
                made = {v: null if v is None else Value(**{field: convert(v)}) for v in distinct}
                return [made[v] for v in values]
        return [null if v is None else Value(**{field: convert(v)}) for v in values]
    listed = _list_converters().get(value_type)
    if listed is not None and pd.api.types.is_object_dtype(series.dtype):
        field, list_message = listed
        empty = Value(**{field: list_message()})
        # A dict initialises the list message in place (a third cheaper than building it apart).
        return [
            null if v is None else Value(**{field: {"val": _as_list(v)}}) if len(v) else empty
            for v in _with_nulls_as_none(series)
        ]
    return _feast_column_values(series, value_type)


def _entity_values(series: pd.Series, value_type: Any) -> list[Any]:
    """A join key's entries as ``EntityKey(entity_values=...)`` takes them.

    Scalars as the dicts that initialise each ``Value`` inside the key (less than half the cost
    of building a ``Value`` and copying it in), the rest as ``column_values`` gives them.
    """
    scalar = _scalar_converters().get(value_type)
    if scalar is not None and scalar[2](series.dtype):
        field, convert, _ = scalar
        return [{} if v is None else {field: convert(v)} for v in _with_nulls_as_none(series)]
    return column_values(series, value_type)


def _as_list(value: Any) -> list[Any]:
    """A list entry (a list, tuple or numpy array, as Parquet gives it back) as a Python list."""
    return value.tolist() if isinstance(value, np.ndarray) else list(value)


def _with_nulls_as_none(series: pd.Series) -> list[Any]:
    """The entries as Python objects, with every kind of missing value as None."""
    values = series.tolist()
    missing = series.isna().to_numpy()
    if missing.any():
        values = [None if m else v for v, m in zip(values, missing, strict=True)]
    return values


def _feast_column_values(series: pd.Series, value_type: Any) -> list[Value]:
    """Feast's own conversion, after the Arrow round trip ``write_to_online_store`` makes."""
    import pyarrow as pa
    from feast.type_map import python_values_to_proto_values

    column = pa.Table.from_pandas(series.to_frame(), preserve_index=False).column(0)
    return python_values_to_proto_values(column.to_numpy(zero_copy_only=False), value_type)


def _naive_utc(series: pd.Series) -> list[datetime]:
    """Event times as naive UTC datetimes, as Feast's conversion hands them to the stores."""
    times = pd.DatetimeIndex(series)
    if times.tz is not None:
        times = times.tz_convert("UTC").tz_localize(None)
    return times.to_pydatetime().tolist()


def online_rows(frame: pd.DataFrame, view: FeatureView) -> list[OnlineRow]:
    """What ``online_write_batch`` takes for ``frame``: entity key, values, event/created time.

    Args:
        frame: One row per entity: the view's join keys, its timestamp field(s) and features,
            named as in the view's batch source (its ``field_mapping`` is applied here).
        view: The feature view, from the registry.

    Raises:
        ValueError: The view has no entity columns (a view not read from the registry).
        KeyError: ``frame`` lacks a join key, a feature or the timestamp field.
    """
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey

    source = view.batch_source
    if source.field_mapping:
        frame = frame.rename(columns=source.field_mapping)
    join_keys = {c.name: c.dtype.to_value_type() for c in view.entity_columns}
    if not join_keys:
        raise ValueError(
            f"feature view {view.name} has no entity columns: read it from the registry "
            "(FeatureStore.get_feature_view after apply), not from the repository's module"
        )
    missing = sorted(
        {*join_keys, source.timestamp_field, *(f.name for f in view.features)} - set(frame.columns)
    )
    if missing:
        raise KeyError(f"the rows for feature view {view.name} lack column(s) {missing}")
    names = [f.name for f in view.features]
    columns = [column_values(frame[f.name], f.dtype.to_value_type()) for f in view.features]
    key_names = list(join_keys)
    key_columns = [_entity_values(frame[k], t) for k, t in join_keys.items()]
    keys = [EntityKey(join_keys=key_names, entity_values=v) for v in zip(*key_columns, strict=True)]
    # Each row has one value per name by construction; strict=True would double this step.
    values = [dict(zip(names, row, strict=False)) for row in zip(*columns, strict=True)]
    event_times = _naive_utc(frame[source.timestamp_field])
    created = source.created_timestamp_column
    created_times = _naive_utc(frame[created]) if created else [None] * len(frame)
    return list(zip(keys, values, event_times, created_times, strict=True))


def batches(frame: pd.DataFrame, rows: int) -> Iterator[pd.DataFrame]:
    """``frame`` in consecutive slices of at most ``rows`` rows."""
    for start in range(0, len(frame), rows):
        yield frame.iloc[start : start + rows]


class OnlineWriter:
    """Writes feature rows through the configured online store class's ``online_write_batch``.

    One online store instance per writer, so its client (a Redis connection pool, a SQLite
    connection) is reused from batch to batch and run to run.

    Args:
        config: The Feast ``RepoConfig`` (``FeatureStore.config``).
        batch_rows: Rows per ``online_write_batch`` call.
    """

    def __init__(self, config: Any, batch_rows: int = WRITE_BATCH_ROWS) -> None:
        from feast.infra.online_stores.helpers import get_online_store_from_config

        if batch_rows < 1:
            raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
        self.config = config
        self.batch_rows = batch_rows
        self.online_store = get_online_store_from_config(config.online_store)

    def write(self, view: FeatureView, frame: pd.DataFrame) -> int:
        """Write ``frame`` (one row per entity) into ``view``'s online table; the rows written.

        The online store keeps its own rule on top: Redis keeps a stored row whose event time
        (in whole seconds, non-zero) is not older than the new one, as in every Feast write.
        """
        with cyclic_gc_paused():
            for batch in batches(frame, self.batch_rows):
                rows = online_rows(batch, view)
                self.online_store.online_write_batch(self.config, view, rows, None)
        return len(frame)


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector for a bounded batch of work; resume it afterwards.

    Materializing allocates some 30 container objects per row (protobufs, dicts, tuples, the
    Redis client's command buffers, the frames' Python objects), none of them in a reference
    cycle: reference counting frees them. Those allocations set off the collector's full passes,
    each of which walks every object of the process (~200,000 in a pipeline step: pandas,
    pyarrow, Feast): up to ~130 ms a pass here, as much as converting 6,000 rows. Nested uses
    leave the collector to the outermost one.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
