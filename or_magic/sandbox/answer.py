"""One chat request answered: model choice with fallbacks, the plan, usage with caching and server tools.

Shared by ``POST /chat/completions`` and the rows of ``POST /batches`` so both bill and answer alike.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._sandbox_models import (
    DEFAULT_MODEL,
    MODELS,
    USER_ID,
    Ask,
    Folded,
    HttpError,
    Plan,
    completion_body,
    last_user_text,
    new_generation_id,
    plan_for,
    usage,
)
from . import caching, more_models


@dataclass
class Answer:
    """A planned answer, ready to stream or to fold into one body."""

    model: str
    plan: Plan
    folded: Folded
    usage: dict[str, Any]
    gen_id: str
    created: int
    cache_discount: float = 0.0

    def body(self) -> dict[str, Any]:
        return completion_body(self.folded, self.usage, self.gen_id, self.created, self.model)


def refusal(status: int, message: str) -> HttpError:
    """An error response the server itself gives (bad JSON, unknown model)."""
    body = {"error": {"code": status, "message": message}, "user_id": USER_ID}
    return HttpError(status, json.dumps(body).encode())


def candidates(body: dict[str, Any]) -> list[str]:
    """The primary model, then the ``models`` fallbacks, in order and without repeats."""
    models = [m for m in body.get("models") or [] if isinstance(m, str)]
    primary = body.get("model") if isinstance(body.get("model"), str) else None
    ordered = [primary] if primary else []
    ordered += [m for m in models if m not in ordered]
    return ordered or [DEFAULT_MODEL]


def _plan(model: str, ask: Ask) -> Plan:
    tool = more_models.web_search_tool(ask.body)
    if tool is not None and model in more_models.WEB_TOOL_MODELS:
        return more_models.web_search_plan(ask, tool)
    return plan_for(model, ask)


def _server_tool_usage(result: dict[str, Any], plan: Plan, body: dict[str, Any]) -> None:
    if plan.searches and more_models.web_search_tool(body) is not None:
        result["server_tool_use_details"] = {
            "tool_calls_requested": plan.searches,
            "tool_calls_executed": plan.searches,
            "web_search_requests": plan.searches,
        }


def answer(body: Any, has_auth: bool, tally: Callable[[str], int], cache: caching.PromptCache) -> Answer | HttpError:
    """The answer to a chat request body, or the HTTP error it gets before any streaming."""
    if not isinstance(body, dict):
        return refusal(400, "Invalid JSON in request body")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return refusal(400, 'Input required: specify "prompt" or "messages"')
    models = candidates(body)
    unknown = next((m for m in models if m not in MODELS), None)
    if unknown is not None:
        return refusal(400, f"{unknown} is not a valid model ID")
    ask = Ask(body, last_user_text(messages), has_auth, tally)
    for model in models:  # fallbacks: the next model runs when one fails before streaming
        plan = _plan(model, ask)
        if plan.error is None:
            break
    if plan.error is not None:
        return plan.error
    created = int(time.time())
    folded = Folded(plan.steps)
    usage_ = usage(model, body, folded, plan)
    _server_tool_usage(usage_, plan, body)
    discount = caching.apply(usage_, model, *cache.use(model, body))
    return Answer(model, plan, folded, usage_, new_generation_id(created), created, discount)
