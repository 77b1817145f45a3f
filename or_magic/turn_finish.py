"""Finishing a turn: what it shows (view, footer), what it keeps (the committed turn) and what it saves
(output metadata for restore). Pure functions of the steps that ran, so the sync and async drivers, and a
cell or the panel, end every turn the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from . import render
from .accumulate import ChatAccumulator
from .conversation import Pending, Turn, TurnStatus
from .errors import OpenRouterError
from .features import cache_saving

if TYPE_CHECKING:  # pragma: no cover
    from .types import ModelInfo

METADATA_KEY = "or_magic"  # the cell output metadata key holding a turn, for %chat restore
USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens", "reasoning_tokens", "cost",
                "cached_tokens", "cache_write_tokens", "cache_discount")


def error_view(err: BaseException) -> render.ErrorView:
    """The fields an error card shows, taken from a typed error (or any exception)."""
    if isinstance(err, OpenRouterError):
        return render.ErrorView(kind=type(err).__name__, status=err.status_code, message=err.message,
                                provider=err.provider_name, detail=_detail(err), hint=err.hint or None,
                                generation_id=err.generation_id, retry_after=err.retry_after)
    return render.ErrorView(kind=type(err).__name__, status=None, message=str(err), provider=None,
                            detail=None, hint=None, generation_id=None, retry_after=None)


def _detail(err: OpenRouterError) -> str | None:
    """The useful part of the error beyond its message (str() already digs into metadata.raw)."""
    text = str(err)
    return text if text and text != err.message else None


def join(parts: Iterable[str | None]) -> str:
    return "\n\n".join(p for p in parts if p)


def has_answer(accs: list[ChatAccumulator]) -> bool:
    """Whether anything worth keeping arrived: answer text or an image (reasoning alone is not an answer)."""
    return any(a.text or a.images for a in accs)


def sum_usage(accs: list[ChatAccumulator]) -> dict[str, Any]:
    """Tokens and cost over every step of a turn, as a flat dict (``reasoning_tokens`` at the top level,
    whether the API nested it in ``completion_tokens_details`` or not): what turns store and views read."""
    total: dict[str, Any] = {}
    for acc in accs:
        if acc.usage is None:
            continue
        usage = acc.usage.model_dump(exclude_none=True)
        details = usage.get("completion_tokens_details")
        if isinstance(details, dict) and details.get("reasoning_tokens") is not None:
            usage["reasoning_tokens"] = details["reasoning_tokens"]
        prompt_details = usage.get("prompt_tokens_details")
        if isinstance(prompt_details, dict):  # prompt caching: read from / written to the provider's cache
            usage.update({k: prompt_details[k] for k in ("cached_tokens", "cache_write_tokens")
                          if prompt_details.get(k)})
        for key in USAGE_FIELDS:
            if isinstance(usage.get(key), (int, float)) and not isinstance(usage.get(key), bool):
                total[key] = total.get(key, 0) + usage[key]
    return total


def turn_usage(accs: list[ChatAccumulator], info: ModelInfo | None) -> dict[str, Any]:
    """:func:`sum_usage` plus ``cache_saved``: what the prompt cache saved, priced from ``/models``."""
    usage = sum_usage(accs)
    saved = cache_saving(usage, info)
    if saved is not None:
        usage["cache_saved"] = saved
    return usage


def tool_call_rows(tool_runs: list[Any], accs: list[ChatAccumulator]) -> list[dict[str, Any]]:
    """Each tool call with what came of it (the tool card), then calls requested but never run."""
    calls = [_tool_run_dict(r) for r in tool_runs]
    if accs and accs[-1].tool_calls and len(calls) < sum(len(a.tool_calls) for a in accs):
        calls += list(accs[-1].tool_calls)  # requested but not executed (--max-steps, or no tools)
    return calls


def _tool_run_dict(tool_run: Any) -> dict[str, Any]:
    return {"id": tool_run.call_id, "type": "function",
            "function": {"name": tool_run.name, "arguments": _json_text(tool_run.arguments)},
            "result": tool_run.result, "error": tool_run.error}


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def footer(accs: list[ChatAccumulator], *, model: str, status: str, t0: float, first_token: float | None,
           cached: bool, sandbox: bool, info: ModelInfo | None = None) -> render.Footer:
    """The footer line: model, provider, tokens, cost, prompt cache, time to first token, speed, status."""
    elapsed = time.monotonic() - t0
    usage = turn_usage(accs, info)
    last = accs[-1] if accs else None
    ttft = first_token - t0 if first_token is not None and len(accs) <= 1 else None
    completion = usage.get("completion_tokens")
    rate = completion / (elapsed - ttft) if completion and ttft is not None and elapsed - ttft > 0.05 else None
    return render.Footer(
        model=(last.model if last and last.model else model), provider=last.provider if last else None,
        prompt_tokens=usage.get("prompt_tokens"), completion_tokens=completion,
        reasoning_tokens=usage.get("reasoning_tokens"), cost=usage.get("cost"),
        cached_tokens=usage.get("cached_tokens"), cache_write_tokens=usage.get("cache_write_tokens"),
        cache_saved=usage.get("cache_saved"),
        ttft=ttft, elapsed=elapsed, tokens_per_s=rate, status=str(TurnStatus.CACHED) if cached else status,
        sandbox=sandbox, finish_reason=last.finish_reason if last else None)


def make_turn(prompt: Any, accs: list[ChatAccumulator], extra: list[dict[str, Any]], *, status: TurnStatus,
              model: str, params: dict[str, Any], cached: bool, info: ModelInfo | None = None) -> Turn:
    """The turn to commit. Tool calls never run (--max-steps, an interrupt) are dropped from the assistant
    message: a tool call must be followed by its result, or the next request is invalid."""
    last = accs[-1]
    assistant = last.message()
    assistant.pop("tool_calls", None)
    return Turn(user=prompt, assistant=assistant, text=join(a.text for a in accs), status=status,
                model=last.model or model, provider=last.provider, usage=turn_usage(accs, info), params=dict(params),
                extra=list(extra), cached=cached)


def metadata(pending: Pending, turn: Turn | None) -> dict[str, Any] | None:
    """The turn's essentials, saved in the output's metadata so a restart can rebuild the thread."""
    if turn is None:
        return None
    data = asdict(turn)
    data["status"] = str(turn.status)
    data["assistant"] = {k: v for k, v in data["assistant"].items() if k != "images"}
    return {METADATA_KEY: {"version": 1, "thread": pending.thread.name,
                           "system": pending.thread.system, "turn": data}}
