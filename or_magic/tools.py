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
import inspect
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ._tool_schema import EMPTY, Param, function_schema, tool_params
from .errors import ToolError

__all__ = ["function_schema", "ToolBox", "ToolRun", "RESULT_LIMIT"]

# what a tool raising must not turn into a tool error: the user's interrupt, and a Stop (task cancelled)
_PASS_THROUGH = (KeyboardInterrupt, asyncio.CancelledError, GeneratorExit)
RESULT_LIMIT = 20_000  # characters of a tool's result sent back to the model


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
    params: list[Param]
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
            params, var_kw = tool_params(fn)
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
        job = self._prepare(call)
        if isinstance(job, ToolRun):
            return job
        with job.reporting():
            job.finish(_call_blocking(job.tool.fn, job.args, job.kwargs))
        return job.outcome()

    async def arun(self, call: dict[str, Any]) -> ToolRun:
        """``run`` for an event loop: coroutine tools are awaited on it, plain functions run in a worker
        thread, so the loop (and a Stop button on it) stays responsive while a tool works."""
        job = self._prepare(call)
        if isinstance(job, ToolRun):
            return job
        with job.reporting():
            job.finish(await _call_awaited(job.tool.fn, job.args, job.kwargs))
        return job.outcome()

    def _prepare(self, call: Any) -> _Job | ToolRun:
        """The call, checked and bound, ready to run; or the failed ToolRun explaining why not."""
        start = time.perf_counter()
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
        return _Job(call_id, name, arguments, tool, args, kwargs, start)


@dataclass
class _Job:
    """One bound tool call on its way to a ToolRun (the only part ``run`` and ``arun`` do differently is
    how the function is called)."""

    call_id: str
    name: str
    arguments: dict[str, Any]
    tool: _Tool
    args: list[Any]
    kwargs: dict[str, Any]
    start: float
    run: ToolRun | None = None

    def finish(self, value: Any) -> None:
        elapsed = time.perf_counter() - self.start
        self.run = ToolRun(self.call_id, self.name, self.arguments, _bound(_result_text(value)), None, elapsed, value)

    def outcome(self) -> ToolRun:
        assert self.run is not None
        return self.run

    @contextlib.contextmanager
    def reporting(self) -> Iterator[None]:
        """Whatever the tool raises becomes the ToolRun's error, bar an interrupt or a cancelled task."""
        try:
            yield
        except _PASS_THROUGH:
            raise
        except BaseException as exc:
            kind, message = type(exc).__name__, _message(exc)
            self.run = _failed(self.call_id, self.name, self.arguments, kind, message, self.start, raised=True)


def _call_blocking(fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
    value = fn(*args, **kwargs)
    return _run_awaitable(value) if inspect.isawaitable(value) else value


async def _call_awaited(fn: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
    if inspect.iscoroutinefunction(fn):
        return await fn(*args, **kwargs)
    value = await asyncio.to_thread(fn, *args, **kwargs)
    return await value if inspect.isawaitable(value) else value


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
    missing = [p.name for p in tool.params if p.default is EMPTY and p.name not in arguments]
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


def _coerce(p: Param, value: Any) -> Any:
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
