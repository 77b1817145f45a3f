"""One-line fixes for the common error cases (``err.hint``), from status, message, type and metadata."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .errors import OpenRouterError


def _wait_phrase(seconds: float | None) -> str:
    if seconds is None:
        return "wait a moment"
    if seconds < 90:
        return f"wait {max(1, round(seconds))} s"
    if seconds < 5400:
        return f"wait about {round(seconds / 60)} min"
    return f"wait about {seconds / 3600:.1f} h"


def status_hint(err: OpenRouterError) -> str:
    """A one-line fix for the common cases, from the status, message, error type and metadata."""
    status, text = err.status_code, err.message.lower()
    etype = (err.error_type or "").lower()
    avail_code = str((err.availability or {}).get("code") or "")
    if "not a valid model" in text or avail_code == "model_not_found":
        return "Unknown model id: list the available ones with `%chat models`."
    if etype == "context_length_exceeded" or "context length" in text or "maximum context" in text:
        return "The conversation is too long for this model: shorten it, or pick a model with a longer context."
    if "reasoning.effort" in text and "reasoning.max_tokens" in text:
        return "Send reasoning effort or reasoning max_tokens, not both."
    if status == 401:
        return "Check OPENROUTER_API_KEY (or set it with `%chat key`): the key is missing, wrong or disabled."
    if status == 402:
        afford = re.search(r"can only afford (\d+)", text)
        if afford:
            return f"Add credits at openrouter.ai/settings/credits, or lower max_tokens to {afford.group(1)} or less."
        return "Add credits at openrouter.ai/settings/credits, or lower max_tokens."
    if status == 403:
        if err.metadata.get("reasons") or "flagged" in text or "moderation" in text:
            return "The input was flagged by moderation: rephrase it, or use a model without moderation."
        if err.metadata.get("patterns") or "guardrail" in text:
            return "A guardrail blocked this request: check the key's guardrail settings."
        return "Forbidden: check the key's permissions, guardrails and region."
    if status == 404:
        return "No endpoint can serve this: change the model or provider routing (see `%chat models`)."
    if status == 429:
        free = ":free" in text or "free-models" in text or "free model" in text
        tail = " or add credits to lift free-model limits" if free else " or use another model"
        return f"Rate limited: {_wait_phrase(err.retry_after)} and retry,{tail}."
    if status in (408, 504, 524):
        return "The provider timed out: retry, or use another model or provider."
    if status == 413:
        return "The request is too large: shorten the conversation or drop attachments."
    if status == 422:
        return "A parameter value is invalid: check the options sent (see `--dry-run`)."
    if status is not None and 400 <= status < 500:
        return "The request was rejected: check the model, parameters and messages (see `--dry-run`)."
    if status in (503, 529) or etype == "provider_overloaded":
        return "The provider is overloaded or unavailable: retry shortly, or use another model or provider."
    if status is not None and status >= 500:
        return "The provider or OpenRouter failed: retry, or use another model or provider."
    return ""
