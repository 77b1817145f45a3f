"""Parsed ``%%chat`` options -> the request body's parameters, each checked against its accepted range.

Besides the body fields (model, sampling, reasoning, the web tool, provider routing, JSON mode, ``--param``)
it holds the small checks other options share: a model id, a comma-separated list, a Python variable name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError

from . import defaults as D

#: ``--param`` names refused: a key on the magic line would be saved in the notebook.
_KEY_NAMES = {"api_key", "api-key", "key", "apikey", "authorization", "token"}


@dataclass
class Defaults:
    """The notebook-wide defaults a cell's options fall back on (``ChatMagics`` config, panel sliders)."""

    model: str = D.MODEL
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    system: str | None = None
    stream: bool = True


def request_params(ns: Any, defaults: Defaults) -> dict[str, Any]:
    """The request body's parameters: model, sampling, reasoning, web, routing, JSON mode, then ``--param``."""
    params: dict[str, Any] = {"model": model_id(ns.model or defaults.model)}
    if ns.models:
        params["models"] = split_list(ns.models, "--models")
    _set_sampling(params, ns, defaults)
    _set_reasoning(params, ns)
    _set_web(params, ns)
    provider: dict[str, Any] = {}
    if ns.provider_order:
        provider["order"] = split_list(ns.provider_order, "--provider-order")
    if ns.sort:
        provider["sort"] = ns.sort
    if provider:
        params["provider"] = provider
    if ns.json:
        params["response_format"] = {"type": "json_object"}
    for item in ns.param or []:
        key, value = _param(item)
        _merge(params, key, value)
    if not params.get("model"):
        raise UsageError("no model: pass -m MODEL or set %config ChatMagics.model")
    return params


def _set_sampling(params: dict[str, Any], ns: Any, defaults: Defaults) -> None:
    """Temperature, top p, max tokens, seed and stop sequences, each checked against its range."""
    _set_number(params, "temperature", ns.temperature, defaults.temperature, *D.TEMPERATURE_RANGE)
    _set_number(params, "top_p", ns.top_p, defaults.top_p, *D.TOP_P_RANGE)
    max_tokens = ns.max_tokens if ns.max_tokens is not None else defaults.max_tokens
    if max_tokens is not None:
        if max_tokens < 1:
            raise UsageError(f"--max-tokens must be at least 1 (got {max_tokens})")
        params["max_tokens"] = max_tokens
    if ns.seed is not None:
        params["seed"] = ns.seed
    if ns.stop:
        stops = [s for s in ns.stop]
        if len(stops) > D.MAX_STOP_SEQUENCES:
            raise UsageError(f"--stop accepts at most {D.MAX_STOP_SEQUENCES} sequences")
        params["stop"] = stops


def _set_reasoning(params: dict[str, Any], ns: Any) -> None:
    """``--reasoning EFFORT`` or ``--reasoning-tokens N``: one or the other, as OpenRouter requires."""
    if ns.reasoning and ns.reasoning_tokens is not None:
        raise UsageError("use --reasoning or --reasoning-tokens, not both (OpenRouter rejects both together)")
    if ns.reasoning:
        params["reasoning"] = {"effort": ns.reasoning}
    elif ns.reasoning_tokens is not None:
        if ns.reasoning_tokens < 1:
            raise UsageError("--reasoning-tokens must be a positive number of tokens")
        params["reasoning"] = {"max_tokens": ns.reasoning_tokens}


def _set_web(params: dict[str, Any], ns: Any) -> None:
    """``--web``/``--web-results N``: the web-search server tool in ``tools`` (function tools join it later)."""
    results = getattr(ns, "web_results", None)
    if results is not None and not D.WEB_RESULTS_RANGE[0] <= results <= D.WEB_RESULTS_RANGE[1]:
        low, high = D.WEB_RESULTS_RANGE
        raise UsageError(f"--web-results must be within {low}..{high} (got {results})")
    if ns.web or results is not None:
        from .features import web_tool

        params["tools"] = [web_tool(results)]


def _set_number(params: dict[str, Any], name: str, value: float | None, default: float | None,
                low: float, high: float) -> None:
    chosen = value if value is not None else default
    if chosen is None:
        return
    if not low <= chosen <= high:
        flag = "--" + name.replace("_", "-")
        raise UsageError(f"{flag} must be within {low:g}..{high:g} (got {chosen:g})")
    params[name] = chosen


def _param(item: str) -> tuple[str, Any]:
    """``key=value`` with a JSON value (a bare word that is not JSON is taken as a string)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"--param expects key=value with a JSON value (got {item!r})")
    if key.lower() in _KEY_NAMES:
        raise UsageError("API keys are not accepted as options (they would be saved in the notebook); "
                         "use %chat key")
    if key in {"messages", "stream"}:
        raise UsageError(f"--param {key}=… is not allowed: the cell body is the message and "
                         "--no-stream controls streaming")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        if raw[:1] in "[{\"":
            raise UsageError(f"--param {key}: invalid JSON value {raw!r}") from None
        value = raw
    return key, value


def _merge(params: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b=value`` into nested dicts; objects merge into what the named options already set."""
    *parents, last = dotted.split(".")
    target = params
    for part in parents:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    if isinstance(value, dict) and isinstance(target.get(last), dict):
        target[last] = {**target[last], **value}
    else:
        target[last] = value


def model_id(model: str) -> str:
    model = model.strip()
    if not model or any(c.isspace() for c in model):
        raise UsageError(f"invalid model id {model!r}: expected something like 'openai/gpt-4o-mini'")
    return model


def split_list(text: str, flag: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise UsageError(f"{flag} needs a comma-separated list")
    return items


def identifier(name: str, flag: str = "--out") -> str:
    if not name.isidentifier():
        raise UsageError(f"{flag} needs a Python variable name (got {name!r})")
    return name
