"""A notebook function as a tool definition: its parameters, their JSON schemas and pydantic validators."""

from __future__ import annotations

import enum
import functools
import inspect
import json
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._tool_doc import doc_parts
from .schema import inline_refs

_NAME_OK = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
EMPTY = inspect.Parameter.empty
_UNSENDABLE = object()  # a parameter type that cannot be expressed as JSON


def _name_of(fn: Callable[..., Any]) -> str:
    target = fn.func if isinstance(fn, functools.partial) else fn
    name = getattr(target, "__name__", None)
    if not name or name == "<lambda>":
        raise ValueError(
            f"a tool needs a name, and {fn!r:.60} has none: define it with `def name(...)` instead of lambda"
        )
    if not _NAME_OK.match(name):
        raise ValueError(f"tool name {name!r} must be 1-64 characters of letters, digits, '_' or '-'")
    return name


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    target = fn.func if isinstance(fn, functools.partial) else fn
    if not inspect.isroutine(target) and not inspect.isclass(target):
        target = type(target).__call__  # a callable instance: the hints of its __call__
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception:  # one unresolvable forward reference: resolve the others one by one
        pass
    hints: dict[str, Any] = {}
    namespace = getattr(target, "__globals__", {})
    for name, annotation in (getattr(target, "__annotations__", None) or {}).items():
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, namespace)  # what get_type_hints does, per name
            except Exception:
                continue
        hints[name] = annotation
    return hints


@dataclass
class Param:
    name: str
    kind: Any
    annotation: Any  # EMPTY when unannotated
    default: Any
    schema: dict[str, Any] | None  # None: not sent to the model (default used)
    adapter: Any = None  # pydantic TypeAdapter, or None for "pass as is"


def tool_params(fn: Callable[..., Any]) -> tuple[list[Param], bool]:
    """The parameters the model can fill, and whether the function takes ``**kwargs``."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot read the signature of {fn!r:.60}: {exc}") from None
    hints = _hints(fn)
    params: list[Param] = []
    has_var_kw = False
    variadic_only = bool(signature.parameters)
    for p in signature.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            continue
        if p.kind is p.VAR_KEYWORD:
            has_var_kw = True
            continue
        variadic_only = False
        annotation = hints.get(p.name, p.annotation)
        if isinstance(annotation, str):  # an unresolved string annotation: treat as unannotated
            annotation = EMPTY
        if annotation is EMPTY and p.default is not EMPTY and p.default is not None:
            annotation = type(p.default) if type(p.default) in (int, float, str, bool) else EMPTY
        schema, adapter = _param_schema(annotation)
        if schema is _UNSENDABLE:
            if p.default is EMPTY:
                raise ValueError(
                    f"parameter `{p.name}` of {_name_of(fn)}() has type {_type_text(annotation)}, which a model "
                    "cannot send as JSON: give it a JSON-friendly type (str, int, list, a pydantic model…) or a "
                    "default"
                )
            schema = None
        params.append(Param(p.name, p.kind, annotation, p.default, schema, adapter))
    if variadic_only:
        raise ValueError(
            f"{_name_of(fn)}() only takes *args/**kwargs, so a model cannot know what to pass: give it named, "
            "annotated parameters (e.g. `def f(city: str, days: int = 3)`)"
        )
    return params, has_var_kw


def _type_text(annotation: Any) -> str:
    return getattr(annotation, "__qualname__", None) or repr(annotation)


@functools.lru_cache(maxsize=512)
def _adapter(annotation: Any) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(annotation)


def _param_schema(annotation: Any) -> tuple[Any, Any]:
    """(JSON schema or _UNSENDABLE, adapter) for one parameter's annotation."""
    if annotation is EMPTY or annotation is Any:
        return {}, None
    try:
        adapter = _adapter(annotation)
        schema = adapter.json_schema()
    except TypeError:  # unhashable annotation (rare): no caching
        try:
            from pydantic import TypeAdapter

            adapter = TypeAdapter(annotation)
            schema = adapter.json_schema()
        except Exception:
            return _UNSENDABLE, None
    except Exception:  # pydantic cannot build a schema: arbitrary classes, DataFrames…
        return _UNSENDABLE, None
    return _clean(inline_refs(schema)), adapter


def _clean(schema: Any, *, top: bool = True) -> Any:
    """Drop pydantic's auto titles (noise for the model), keep everything else."""
    if isinstance(schema, list):
        return [_clean(s, top=False) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in ("properties", "$defs") and isinstance(value, dict):
            out[key] = {k: _clean(v, top=False) for k, v in value.items()}
        elif key in ("enum", "const", "default", "examples", "required"):
            out[key] = value
        else:
            out[key] = _clean(value, top=False)
    return out


def _json_default(value: Any) -> Any:
    """Defaults as JSON (enums by value, models dumped); None when not representable."""
    if isinstance(value, enum.Enum):
        return value.value
    try:
        from pydantic import BaseModel

        if isinstance(value, BaseModel):
            return value.model_dump(mode="json")
    except ImportError:  # pragma: no cover
        pass
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return None
    return value


def function_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    """The tool definition for ``fn``: ``{"type": "function", "function": {name, description, parameters}}``."""
    if not callable(fn):
        raise TypeError(f"a tool must be a function, not {type(fn).__name__}")
    name = _name_of(fn)
    summary, param_docs = doc_parts(fn.func if isinstance(fn, functools.partial) else fn)
    params, _ = tool_params(fn)
    properties: dict[str, Any] = {}
    required: list[str] = []
    defs: dict[str, Any] = {}
    for p in params:
        if p.schema is None:
            continue
        schema = dict(p.schema)
        defs.update(schema.pop("$defs", {}))
        if p.name in param_docs and param_docs[p.name] and "description" not in schema:
            schema["description"] = param_docs[p.name]
        if p.default is EMPTY:
            required.append(p.name)
        else:
            default = _json_default(p.default)
            if default is not None or p.default is None:
                schema["default"] = default
        properties[p.name] = schema
    parameters: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    if defs:
        parameters["$defs"] = defs
    function: dict[str, Any] = {"name": name}
    if summary:
        function["description"] = summary
    function["parameters"] = parameters
    return {"type": "function", "function": function}
