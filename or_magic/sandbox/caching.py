"""Prompt caching in the sandbox, by whole-message prefixes.

``sandbox/anthropic`` caches explicitly: only a request with top-level ``cache_control: {"type":
"ephemeral"}`` (breakpoint: the whole prompt) or a ``cache_control`` marker on a message or one of its parts
(breakpoint: the end of the last marked message) writes a prefix (``cache_write_tokens``, billed at
``input_cache_write``); a later request whose messages start with a written prefix reads it
(``cached_tokens``, billed at ``input_cache_read``). ``sandbox/openai`` caches implicitly: every prefix is
kept, reads need no marker, writes are free and not reported. Prefixes shorter than ``MIN_TOKENS`` are not
cached (as real providers ignore short prompts); entries live ``ttl`` ("5m" default, "1h").
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

from .._sandbox_models import MODELS, count_tokens, message_text

MIN_TOKENS = 64
EXPLICIT = frozenset({"sandbox/anthropic"})
IMPLICIT = frozenset({"sandbox/openai"})
_TTL = {"5m": 300.0, "1h": 3600.0}


def _unmarked(value: Any) -> Any:
    """``value`` without ``cache_control`` keys, so moving a marker does not change the prefix."""
    if isinstance(value, dict):
        return {k: _unmarked(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_unmarked(v) for v in value]
    return value


def _message_tokens(message: Any) -> int:
    """As the sandbox counts prompt tokens: 4 per message, its text, 85 per non-text part."""
    if not isinstance(message, dict):
        return 0
    parts = message.get("content") if isinstance(message.get("content"), list) else []
    return (
        4
        + count_tokens(message_text(message.get("content")))
        + 85 * sum(1 for p in parts if isinstance(p, dict) and p.get("type") != "text")
    )


def _marked(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    parts = message.get("content") if isinstance(message.get("content"), list) else []
    return "cache_control" in message or any(isinstance(p, dict) and "cache_control" in p for p in parts)


def _breakpoint(body: dict[str, Any], messages: list[Any]) -> tuple[int, float]:
    """(messages covered by the explicit breakpoint, ttl seconds); 0 when nothing asks for caching."""
    top = body.get("cache_control")
    if isinstance(top, dict) and top.get("type") == "ephemeral":
        return len(messages), _TTL.get(str(top.get("ttl")), _TTL["5m"])
    marked = [i for i, message in enumerate(messages) if _marked(message)]
    return (marked[-1] + 1 if marked else 0), _TTL["5m"]


class PromptCache:
    """Which message prefixes each caching model has stored, until when."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], float] = {}

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()

    def use(self, model: str, body: dict[str, Any]) -> tuple[int, int]:
        """(cached tokens read, tokens written) for this request, storing what it writes."""
        messages = body.get("messages") if isinstance(body.get("messages"), list) else []
        if model not in EXPLICIT | IMPLICIT or not messages:
            return 0, 0
        sizes, keys, total = [0], [""], 0
        for i, message in enumerate(messages):
            total += _message_tokens(message)
            sizes.append(total)
            keys.append(hashlib.sha256(json.dumps(_unmarked(messages[: i + 1]), sort_keys=True).encode()).hexdigest())
        stop, ttl = (len(messages), _TTL["5m"]) if model in IMPLICIT else _breakpoint(body, messages)
        now = time.monotonic()
        with self._lock:
            hit = max((k for k in range(1, stop + 1) if self._entries.get((model, keys[k]), 0) > now), default=0)
            for k in range(1, stop + 1) if model in IMPLICIT else [stop] if stop else []:
                if sizes[k] >= MIN_TOKENS:
                    self._entries[(model, keys[k])] = now + ttl
        cached = sizes[hit]
        written = 0 if model in IMPLICIT or sizes[stop] < MIN_TOKENS else max(0, sizes[stop] - cached)
        return cached, written


def apply(usage: dict[str, Any], model: str, cached: int, written: int) -> float:
    """Bill cached and written prompt tokens at the model's cache prices, in place; returns the discount."""
    if not cached and not written:
        return 0.0
    pricing = MODELS[model]["pricing"]
    price = float(pricing["prompt"])
    plain = max(0, usage["prompt_tokens"] - cached - written)
    prompt_cost = plain * price + cached * float(pricing.get("input_cache_read", price))
    prompt_cost += written * float(pricing.get("input_cache_write", price))
    details = usage["cost_details"]
    before = details["upstream_inference_prompt_cost"]
    usage["cost"] = round(usage["cost"] - before + prompt_cost, 12)
    details["upstream_inference_prompt_cost"] = round(prompt_cost, 12)
    details["upstream_inference_cost"] = round(prompt_cost + details["upstream_inference_completions_cost"], 12)
    usage["prompt_tokens_details"].update(cached_tokens=cached, cache_write_tokens=written)
    return round(usage["prompt_tokens"] * price - prompt_cost, 12)
