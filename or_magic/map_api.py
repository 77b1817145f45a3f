"""``or_magic.map_prompt``: a map from plain Python, plus the cost ceiling and the dry run it checks first.

The estimate is an upper bound, so a budget can refuse a map whole before anything is sent: every prompt
token counted as one per UTF-8 byte (no tokenizer makes tokens shorter than a byte), every answer as long
as ``max_tokens`` allows (else the model's cap), priced from ``/models``. Rows the journal already
answered are neither counted nor sent.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import defaults
from .client import OpenRouter, build_request_body
from .mapping import MapJob, MapResult, MapRun, run_map
from .progress import NullProgress, Progress, auto_progress
from .types import ModelInfo

MESSAGE_OVERHEAD = 8  # tokens a chat template adds around one message, at most


@dataclass(frozen=True)
class MapEstimate:
    """The most the map's unanswered rows can cost; ``usd`` None when the model's prices are unknown."""

    requests: int
    prompt_tokens: int
    completion_tokens: int
    usd: float | None
    model: str


@dataclass(frozen=True)
class MapPlan:
    """A dry run: the first row's request body, how many requests would be sent, and the estimate."""

    body: dict[str, Any] | None
    requests: int
    estimate: MapEstimate


def _find(models: list[ModelInfo], model_id: str) -> ModelInfo | None:
    return next((m for m in models if m.id == model_id), None)


def estimate(run: MapRun, models: list[ModelInfo]) -> MapEstimate:
    """The cost ceiling of ``run``'s pending rows from the ``/models`` list."""
    model_id = str(run.params.get("model") or defaults.MODEL)
    info = _find(models, model_id)
    prompt = sum(len(str(m.get("content") or "").encode("utf-8")) + MESSAGE_OVERHEAD
                 for i in run.pending for m in run.messages[i])
    cap = run.params.get("max_tokens") or run.params.get("max_completion_tokens")
    if cap is None and info is not None:
        cap = info.max_completion_tokens
    completion = int(cap or 0) * len(run.pending)
    usd = None
    if info is not None and cap:
        prices = [info.price("prompt"), info.price("completion")]
        if None not in prices:
            per_request = info.price("request") or 0.0
            usd = prompt * prices[0] + completion * prices[1] + per_request * len(run.pending)
    return MapEstimate(len(run.pending), prompt, completion, usd, model_id)


def plan(client: OpenRouter, job: MapJob) -> MapPlan:
    """What the map would do, with nothing sent and nothing written (only ``/models`` is read)."""
    run = MapRun(client, job)
    first = run.pending[0] if run.pending else None
    body = build_request_body(messages=run.messages[first], **run.params) if first is not None else None
    return MapPlan(body, len(run.pending), estimate(run, client.models()))


def check_budget(client: OpenRouter, job: MapJob, budget: float | None, spent: float = 0.0) -> MapEstimate | None:
    """Refuse (``BudgetExceededError``, nothing sent) a map whose ceiling would pass ``budget``."""
    if budget is None:
        return None
    run = MapRun(client, job)
    ceiling = estimate(run, client.models())
    if ceiling.requests and (ceiling.usd is None or spent + ceiling.usd > budget):
        from .session import BudgetExceededError

        cost = "an unknown amount (no prices for this model)" if ceiling.usd is None else f"up to ${ceiling.usd:.4f}"
        raise BudgetExceededError(
            f"budget ${budget:.4f} would be exceeded: {ceiling.requests} requests to {ceiling.model} cost {cost}, "
            f"${spent:.4f} spent so far; nothing was sent",
            hint="lower max_tokens, map fewer rows, pick a cheaper model, or raise the budget")
    return ceiling


def build_job(data: Any, prompt: str, *, model: str | None = None, system: str | None = None, schema: Any = None,
              json: bool = False, temperature: float | None = None, max_tokens: int | None = None,
              params: Mapping[str, Any] | None = None, namespace: Mapping[str, Any] | None = None,
              concurrency: int = defaults.MAP_CONCURRENCY, fresh: bool = False, journal: bool = True,
              journal_dir: Any = None, max_retries: int = defaults.MAP_MAX_RETRIES, **extra: Any) -> MapJob:
    """Keyword options to a :class:`MapJob` (the magic builds its params itself and skips this)."""
    from .schema import StructuredSpec, resolve

    spec = schema if schema is None or isinstance(schema, StructuredSpec) else resolve(schema, "answer")
    body: dict[str, Any] = {"model": model or defaults.MODEL, "temperature": temperature, "max_tokens": max_tokens}
    if json and spec is None:
        body["response_format"] = {"type": "json_object"}
    body.update(params or {})
    body.update(extra)
    body = {k: v for k, v in body.items() if v is not None}
    return MapJob(data, prompt, body, system, spec, dict(namespace or {}), concurrency, fresh, journal,
                  journal_dir, max_retries)


def map_prompt(data: Any, prompt: str, *, client: OpenRouter | None = None, budget: float | None = None,
               progress: Progress | str | None = "auto", namespace: Mapping[str, Any] | None = None,
               **options: Any) -> Any:
    """Send ``prompt`` once per row of ``data`` and return a new DataFrame (see :func:`build_job` for the
    options: model, system, schema, json, temperature, max_tokens, params, concurrency, fresh, …).

    ``$name`` takes the row's fields first, then ``namespace`` (default: the caller's variables). The
    summary is in ``frame.attrs["or_magic_map"]``. Ctrl-C returns the rows finished so far.
    """
    if namespace is None:
        caller = sys._getframe(1)
        namespace = {**caller.f_globals, **caller.f_locals}
    job = build_job(data, prompt, namespace=namespace, **options)
    own = client is None
    client = client or OpenRouter()
    try:
        check_budget(client, job, budget)
        view = auto_progress() if progress == "auto" else (progress or NullProgress())
        result = run_map(client, job, view)  # type: ignore[arg-type]
    finally:
        if own:
            client.close()
    return attach_summary(result)


def attach_summary(result: MapResult) -> Any:
    """The frame, with the counts a caller may want kept in ``attrs`` (plain values only)."""
    s = result.stats
    result.frame.attrs["or_magic_map"] = {"ok": s.done, "failed": s.failed, "not_run": s.not_run,
                                          "resumed": s.resumed, "cost": s.cost, "seconds": s.elapsed,
                                          "rows_per_second": s.rate, "interrupted": s.interrupted}
    return result.frame
