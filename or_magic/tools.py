"""Notebook functions as tools for ``--tools f,g``: schemas from signatures, and calls that never raise.

``function_schema(fn)`` builds the OpenAI-shaped tool definition OpenRouter expects (OPENROUTER.md §2.5): the
description is the docstring's first paragraph, the parameters come from the signature and type hints through
pydantic (so ``int``, ``list[str]``, ``Literal``, ``Enum``, ``Optional``, pydantic models, ``Annotated[…,
Field(description=…)]`` all work), with ``$ref``s inlined because not every provider follows them, and each
parameter's description taken from a Google-, NumPy- or Sphinx-style docstring. A parameter whose type cannot
travel as JSON (a DataFrame, say) is left out when it has a default and refused when it has none.

``ToolBox.run(call)`` executes one tool call from the model. Whatever goes wrong (unknown tool, arguments that
are not JSON, a missing or ill-typed argument, the tool raising) is *reported*: ``ToolRun.error`` says
``"ExceptionType: message"`` and the result text tells the model, so it can correct itself; nothing is raised
into the cell. Arguments are coerced by their hints the way pydantic's lax mode does (``"3"`` → ``3``), plus
one common model mistake: a list or object sent as a JSON string.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import functools
import inspect
import json
import re
import threading
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ToolError
from .schema import inline_refs

__all__ = ["function_schema", "ToolBox", "ToolRun", "RESULT_LIMIT"]

# what a tool raising must not turn into a tool error: the user's interrupt, and a Stop (task cancelled)
_PASS_THROUGH = (KeyboardInterrupt, asyncio.CancelledError, GeneratorExit)
RESULT_LIMIT = 20_000  # characters of a tool's result sent back to the model
_NAME_OK = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EMPTY = inspect.Parameter.empty
_UNSENDABLE = object()  # a parameter type that cannot be expressed as JSON


# ------------------------------------------------------------------------------------------- docstrings


def _doc_parts(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """(first paragraph, {parameter: description}) from Google, NumPy or Sphinx docstrings."""
    doc = inspect.getdoc(fn) or ""
    if not doc:
        return "", {}
    lines = doc.splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip():
            if summary:
                break
            continue
        if _section(line) or line.strip().startswith(":param"):
            break
        summary.append(line.strip())
    return " ".join(summary), _param_docs(lines)


_SECTIONS = ("args", "arguments", "parameters", "params", "keyword args", "keyword arguments", "other parameters")
_OTHER_SECTIONS = (
    "returns", "return", "yields", "raises", "examples", "example", "notes", "note", "see also", "attributes",
    "references", "warnings", "warning", "todo",
)  # fmt: skip
_GOOGLE_ENTRY = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ENTRY = re.compile(r"^(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::.*)?$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _header(lines: list[str], i: int) -> str | None:
    """'google' / 'numpy' when line ``i`` opens a parameters section, 'other' for other sections."""
    text = lines[i].strip()
    underlined = i + 1 < len(lines) and len(lines[i + 1].strip()) >= 3 and set(lines[i + 1].strip()) == {"-"}
    name = text.rstrip(":").strip().lower()
    if underlined and name in _SECTIONS:
        return "numpy"
    if text.endswith(":") and name in _SECTIONS:
        return "google"
    if underlined or (text.endswith(":") and name in _OTHER_SECTIONS):
        return "other"
    return None


def _section(line: str) -> bool:
    """Whether a summary line already starts a docstring section (Google style)."""
    text = line.strip()
    return text.endswith(":") and text.rstrip(":").strip().lower() in (*_SECTIONS, *_OTHER_SECTIONS)


def _param_docs(lines: list[str]) -> dict[str, str]:
    docs: dict[str, str] = {}
    for i, line in enumerate(lines):  # Sphinx: ":param name: text" / ":param int name: text"
        match = re.match(r"\s*:param\s+(?:[^:]*\s)?(\*{0,2}\w+)\s*:\s*(.*)", line)
        if match:
            text = [match.group(2).strip()]
            for more in lines[i + 1 :]:
                if not more.strip() or more.strip().startswith(":"):
                    break
                text.append(more.strip())
            docs[match.group(1).lstrip("*")] = " ".join(t for t in text if t)
    i = 0
    while i < len(lines):
        style = _header(lines, i) if lines[i].strip() else None
        if style not in ("google", "numpy"):
            i += 1
            continue
        # inspect.getdoc dedents every line but the first, so a section opening the docstring has its
        # entries at the same indent as its header
        base = _indent(lines[i]) if i else -1
        i += 2 if style == "numpy" else 1
        body: list[str] = []
        while i < len(lines):
            line = lines[i]
            if line.strip() and _indent(line) <= base and (style == "google" or _header(lines, i)):
                break
            body.append(line)
            i += 1
        entry_indent = min((_indent(b) for b in body if b.strip()), default=0)
        current: list[str] = []
        for line in body:
            if not line.strip():
                continue
            if _indent(line) == entry_indent:
                pattern = _GOOGLE_ENTRY if style == "google" else _NUMPY_ENTRY
                match = pattern.match(line.strip())
                current = [n.strip().lstrip("*") for n in match.group(1).split(",")] if match else []
                for name in current:
                    docs[name] = match.group(2).strip() if (match and style == "google") else ""
            else:
                for name in current:
                    docs[name] = (docs[name] + " " + line.strip()).strip()
    return docs


# ------------------------------------------------------------------------------------------- schemas


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
class _Param:
    name: str
    kind: Any
    annotation: Any  # _EMPTY when unannotated
    default: Any
    schema: dict[str, Any] | None  # None: not sent to the model (default used)
    adapter: Any = None  # pydantic TypeAdapter, or None for "pass as is"


def _params(fn: Callable[..., Any]) -> tuple[list[_Param], bool]:
    """The parameters the model can fill, and whether the function takes ``**kwargs``."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot read the signature of {fn!r:.60}: {exc}") from None
    hints = _hints(fn)
    params: list[_Param] = []
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
            annotation = _EMPTY
        if annotation is _EMPTY and p.default is not _EMPTY and p.default is not None:
            annotation = type(p.default) if type(p.default) in (int, float, str, bool) else _EMPTY
        schema, adapter = _param_schema(annotation)
        if schema is _UNSENDABLE:
            if p.default is _EMPTY:
                raise ValueError(
                    f"parameter `{p.name}` of {_name_of(fn)}() has type {_type_text(annotation)}, which a model "
                    "cannot send as JSON: give it a JSON-friendly type (str, int, list, a pydantic model…) or a "
                    "default"
                )
            schema = None
        params.append(_Param(p.name, p.kind, annotation, p.default, schema, adapter))
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
    if annotation is _EMPTY or annotation is Any:
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
    summary, param_docs = _doc_parts(fn.func if isinstance(fn, functools.partial) else fn)
    params, _ = _params(fn)
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
        if p.default is _EMPTY:
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


# ------------------------------------------------------------------------------------------- running


@dataclass
class ToolRun:
    """One executed tool call: what was asked, what came back (or what went wrong), and how long it took."""

    call_id: str
    name: str
    arguments: dict[str, Any] | None
    result: str
    error: str | None = None
    elapsed: float = 0.0
    value: Any = dataclasses.field(default=None, repr=False)  # the Python return value, for display

    @property
    def ok(self) -> bool:
        return self.error is None

    def message(self) -> dict[str, Any]:
        """The tool-result message for the next request."""
        return {"role": "tool", "tool_call_id": self.call_id, "content": self.result}


@dataclass
class _Tool:
    fn: Callable[..., Any]
    schema: dict[str, Any]
    params: list[_Param]
    var_kw: bool


class ToolBox:
    """A set of notebook functions offered to the model, and the executor of its calls."""

    def __init__(self, fns: list[Callable[..., Any]]) -> None:
        self._tools: dict[str, _Tool] = {}
        for fn in fns:
            schema = function_schema(fn)
            name = schema["function"]["name"]
            if name in self._tools:
                raise ValueError(f"two tools are named {name!r}: tool names must be unique")
            params, var_kw = _params(fn)
            self._tools[name] = _Tool(fn, schema, params, var_kw)

    @property
    def schemas(self) -> list[dict[str, Any]]:
        return [tool.schema for tool in self._tools.values()]

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def run(self, call: dict[str, Any]) -> ToolRun:
        """Execute one OpenAI-shaped tool call; problems are reported in the ToolRun, never raised.

        A coroutine function is run to completion on a private event loop (in a helper thread when the
        caller's thread already runs one, as a Jupyter kernel's does). Anything the tool raises, ``SystemExit``
        included, is the tool's error; only an interrupt (KeyboardInterrupt) goes on up.
        """
        start = time.perf_counter()
        prepared = self._prepare(call, start)
        if isinstance(prepared, ToolRun):
            return prepared
        call_id, name, arguments, tool, args, kwargs = prepared
        try:
            value = tool.fn(*args, **kwargs)
            if inspect.isawaitable(value):
                value = _run_awaitable(value)
        except _PASS_THROUGH:
            raise
        except BaseException as exc:
            return _failed(call_id, name, arguments, type(exc).__name__, _message(exc), start, raised=True)
        return _succeeded(call_id, name, arguments, value, start)

    async def arun(self, call: dict[str, Any]) -> ToolRun:
        """``run`` for an event loop: coroutine tools are awaited on it, plain functions run in a worker
        thread, so the loop (and a Stop button on it) stays responsive while a tool works."""
        start = time.perf_counter()
        prepared = self._prepare(call, start)
        if isinstance(prepared, ToolRun):
            return prepared
        call_id, name, arguments, tool, args, kwargs = prepared
        try:
            if inspect.iscoroutinefunction(tool.fn):
                value = await tool.fn(*args, **kwargs)
            else:
                value = await asyncio.to_thread(tool.fn, *args, **kwargs)
                if inspect.isawaitable(value):
                    value = await value
        except _PASS_THROUGH:
            raise
        except BaseException as exc:
            return _failed(call_id, name, arguments, type(exc).__name__, _message(exc), start, raised=True)
        return _succeeded(call_id, name, arguments, value, start)

    def _prepare(self, call: Any, start: float) -> Any:
        """(call id, name, arguments, tool, args, kwargs), or the failed ToolRun explaining why not."""
        call_id, name, raw = _call_fields(call)
        arguments: dict[str, Any] | None = None
        try:
            tool = self._tools.get(name)
            if tool is None:
                offered = ", ".join(self._tools) or "none"
                raise ToolError("UnknownTool", f"there is no tool named {name!r} (available: {offered})")
            arguments = _parse_arguments(raw)
            args, kwargs = _bind(tool, arguments)
        except ToolError as exc:
            return _failed(call_id, name, arguments, exc.kind, str(exc), start)
        except Exception as exc:  # a bug here must not escape into the cell either
            return _failed(call_id, name, arguments, type(exc).__name__, _message(exc), start)
        return call_id, name, arguments, tool, args, kwargs


def _call_fields(call: Any) -> tuple[str, str, Any]:
    if not isinstance(call, dict):
        return "", "", None
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    return str(call.get("id") or ""), str(function.get("name") or ""), function.get("arguments")


def _parse_arguments(raw: Any) -> dict[str, Any]:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str):
        raise ToolError("TypeError", f"arguments must be a JSON object, got {type(raw).__name__}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ToolError("JSONDecodeError", f"the arguments are not valid JSON ({exc}): {raw[:200]!r}") from None
    if not isinstance(value, dict):
        raise ToolError("TypeError", f"arguments must be a JSON object, got {json.dumps(value)[:100]}")
    return value


def _bind(tool: _Tool, arguments: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """Positional and keyword arguments for the call, validated and coerced parameter by parameter."""
    known = {p.name: p for p in tool.params}
    unexpected = [k for k in arguments if k not in known or known[k].schema is None]
    if unexpected and not tool.var_kw:
        allowed = ", ".join(p.name for p in tool.params if p.schema is not None) or "none"
        raise ToolError(
            "TypeError", f"unexpected argument {', '.join(map(repr, unexpected))} (parameters: {allowed})"
        )
    missing = [p.name for p in tool.params if p.default is _EMPTY and p.name not in arguments]
    if missing:
        raise ToolError("TypeError", f"missing required argument {', '.join(map(repr, missing))}")
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for p in tool.params:
        if p.name not in arguments or p.schema is None:
            if p.kind is inspect.Parameter.POSITIONAL_ONLY:
                args.append(p.default)
            continue
        value = _coerce(p, arguments[p.name])
        if p.kind is inspect.Parameter.POSITIONAL_ONLY:
            args.append(value)
        else:
            kwargs[p.name] = value
    if tool.var_kw:
        kwargs.update({k: v for k, v in arguments.items() if k not in known})
    return args, kwargs


def _coerce(p: _Param, value: Any) -> Any:
    if p.adapter is None:
        return value
    from pydantic import ValidationError

    try:
        return p.adapter.validate_python(value)
    except ValidationError as exc:
        if isinstance(value, str):  # a list/object sent as a JSON string, a common model slip
            try:
                decoded = json.loads(value)
            except ValueError:
                decoded = None
            if isinstance(decoded, (list, dict)):
                try:
                    return p.adapter.validate_python(decoded)
                except ValidationError:
                    pass
        problem = exc.errors(include_url=False)[0]
        loc = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem.get("loc", ()))
        shown = json.dumps(value, default=str)[:80]
        raise ToolError("ValidationError", f"argument `{p.name}{loc}`: {problem.get('msg')} (got {shown})") from None


def _run_awaitable(awaitable: Any) -> Any:
    async def wrap() -> Any:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wrap())
    box: dict[str, Any] = {}

    def worker() -> None:
        try:
            box["value"] = asyncio.run(wrap())
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=worker, name="or_magic-tool", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return "<unprintable message>"


def _failed(
    call_id: str, name: str, arguments: Any, kind: str, message: str, start: float, *, raised: bool = False
) -> ToolRun:
    error = f"{kind}: {message}" if message else kind
    what = f"the tool `{name}` raised" if raised else f"calling `{name or '?'}` failed:"
    result = _bound(f"Error: {what} {error}")
    parsed = arguments if isinstance(arguments, dict) else None
    return ToolRun(call_id, name, parsed, result, error, time.perf_counter() - start)


def _succeeded(call_id: str, name: str, arguments: dict[str, Any], value: Any, start: float) -> ToolRun:
    return ToolRun(call_id, name, arguments, _bound(_result_text(value)), None, time.perf_counter() - start, value)


def _result_text(value: Any) -> str:
    """A str as is; JSON for JSON-able values (pydantic models and dataclasses dumped); else str()."""
    if isinstance(value, str):
        return value
    try:
        from pydantic import BaseModel

        if isinstance(value, BaseModel):
            return value.model_dump_json()
    except ImportError:  # pragma: no cover
        pass
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        with contextlib.suppress(Exception):
            value = dataclasses.asdict(value)
    if isinstance(value, enum.Enum):
        value = value.value
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        pass
    try:
        return str(value)
    except Exception as exc:
        return f"<the result could not be converted to text: {type(exc).__name__}: {_message(exc)}>"


def _bound(text: str) -> str:
    if len(text) <= RESULT_LIMIT:
        return text
    note = f"\n… [truncated: {len(text) - RESULT_LIMIT:,} more characters]"
    return text[: RESULT_LIMIT - len(note)] + note
