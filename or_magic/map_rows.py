"""Rows in, one prompt per row, a DataFrame out: the pure part of a map (no network, no display).

A DataFrame gives one row per record, its columns as ``$column``; a Series or a list gives ``$item``; every
row also has ``$index``, its label. Row fields shadow the notebook's variables and the usual ``$name`` rules
of :func:`or_magic.context.interpolate` hold (math, code and ``\\$`` are left alone).
"""

from __future__ import annotations

import hashlib
import json
from collections import ChainMap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .context import interpolate

NOT_RUN = "not run"  # the error of a row that was never answered (interrupted, or refused before sending)


@dataclass(frozen=True)
class Row:
    """One input row: its position, its label (the index value) and the names its prompt can use."""

    position: int
    label: Any
    fields: Mapping[str, Any]


@dataclass
class RowOutcome:
    """What became of one row. ``status`` is "ok", "failed" or "not run"; ``resumed`` when read back from
    the journal instead of sent."""

    status: str = "not run"
    text: str | None = None
    value: Any = None  # the parsed structured answer, with a schema
    error: str = NOT_RUN
    cost: float | None = None
    model: str | None = None
    resumed: bool = False
    attempts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def pandas() -> Any:
    """pandas, or one readable error saying how to get it."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas ships in the test extra
        raise ImportError("a map returns a pandas DataFrame: install it with: pip install 'or_magic[data]'") from None
    return pd


def rows_of(data: Any) -> list[Row]:
    """The rows of a DataFrame, a Series, or a list/tuple; anything else is a TypeError."""
    pd = pandas()
    if isinstance(data, pd.DataFrame):
        columns = [str(c) for c in data.columns]
        return [
            Row(i, label, {"index": label, **dict(zip(columns, values, strict=True))})
            for i, (label, values) in enumerate(zip(data.index, data.itertuples(index=False, name=None), strict=True))
        ]
    if isinstance(data, pd.Series):
        return [Row(i, label, {"index": label, "item": value}) for i, (label, value) in enumerate(data.items())]
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        return [Row(i, i, {"index": i, "item": value}) for i, value in enumerate(data)]
    raise TypeError(f"a map needs a DataFrame, a Series or a list, not {type(data).__name__}")


def prompt_for(template: str, row: Row, namespace: Mapping[str, Any]) -> str:
    """The row's user message: ``$name`` from the row first, then from the notebook."""
    return interpolate(template, ChainMap(dict(row.fields), dict(namespace)))


def messages_for(system: str | None, prompt: str) -> list[dict[str, Any]]:
    """A one-shot request: the system prompt (if any) and this row's message, nothing from a thread."""
    user = [{"role": "user", "content": prompt}]
    return [{"role": "system", "content": system}, *user] if system else user


def canonical(value: Any) -> str:
    """Stable JSON text for hashing (sorted keys, non-JSON values by ``str``)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------------------ the result


def schema_fields(schema: Any) -> list[str] | None:
    """The top-level property names of an object schema (one column each), else None."""
    if schema is None:
        return None
    props = (schema.schema or {}).get("properties")
    return list(props) if isinstance(props, dict) and props else None


def _as_mapping(value: Any) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    dump = getattr(value, "model_dump", None)
    return dump() if callable(dump) else {}


def _answer_columns(outcomes: list[RowOutcome], fields: list[str] | None, taken: set[str]) -> dict[str, list]:
    if fields is None:
        return {"answer": [o.value if o.value is not None else o.text for o in outcomes]}
    columns: dict[str, list] = {}
    for name in fields:
        column = name if name not in taken else f"{name}_answer"
        columns[column] = [_as_mapping(o.value).get(name) if o.status == "ok" else None for o in outcomes]
    return columns


def result_frame(data: Any, outcomes: list[RowOutcome], fields: list[str] | None = None) -> Any:
    """The input's columns and index, in order, plus the answer column(s), ``error``, ``cost``, ``model``.

    With an object schema, one column per field (a field named like an input column gets ``_answer``
    appended); otherwise ``answer`` holds the text (or the parsed value of a non-object schema).
    """
    pd = pandas()
    if isinstance(data, pd.DataFrame):
        frame = data.copy(deep=False)
    elif isinstance(data, pd.Series):
        frame = data.to_frame(name=str(data.name) if data.name is not None else "item")
    else:
        frame = pd.DataFrame({"item": list(data)})
    taken = {str(c) for c in frame.columns}
    added = _answer_columns(outcomes, fields, taken)
    added["error"] = [o.error for o in outcomes]
    added["cost"] = [o.cost if o.cost is not None else float("nan") for o in outcomes]
    added["model"] = [o.model for o in outcomes]
    extra = pd.DataFrame(added, index=frame.index)
    clash = [c for c in extra.columns if c in taken]
    if clash:
        extra = extra.rename(columns={c: f"{c}_" for c in clash})
    return pd.concat([frame, extra], axis=1)
