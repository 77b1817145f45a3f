"""A stored turn as something to show: the one function history, the panel transcript and restore use.

Turns keep what the wire said in the store's shape (flat ``usage["reasoning_tokens"]``; assistant
``images`` whose ``image_url`` may be an object or a bare string), so reading that shape lives here once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import render
from .conversation import INTERRUPTED

if TYPE_CHECKING:  # pragma: no cover
    from .conversation import Turn


def stored_turn_view(turn: Turn, *, sandbox: bool = False) -> render.TurnView:
    """The renderer's view of a committed turn (no timings: the store does not keep them)."""
    usage = turn.usage or {}
    status = turn.status if turn.status == INTERRUPTED else ""
    footer = render.Footer(
        model=turn.model or "?", provider=turn.provider, prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"), reasoning_tokens=reasoning_tokens(usage),
        cost=usage.get("cost"), ttft=None, elapsed=None, tokens_per_s=None,
        status=status, sandbox=sandbox,
        finish_reason=None)
    message = turn.assistant or {}
    return render.TurnView(text=turn.text, reasoning=reasoning_text(message),
                           tool_calls=list(message.get("tool_calls") or []),
                           annotations=list(message.get("annotations") or []), footer=footer, error=None,
                           status=status)


def reasoning_tokens(usage: dict[str, Any]) -> int | None:
    """Flat ``reasoning_tokens`` (how turns store it), else the wire's ``completion_tokens_details``."""
    flat = usage.get("reasoning_tokens")
    if isinstance(flat, int):
        return flat
    details = usage.get("completion_tokens_details")
    nested = details.get("reasoning_tokens") if isinstance(details, dict) else None
    return nested if isinstance(nested, int) else None


def reasoning_text(message: dict[str, Any]) -> str:
    """The assistant's reasoning: the plain field, else the text of its reasoning details."""
    if isinstance(message.get("reasoning"), str):
        return message["reasoning"]
    parts = [d.get("text") or d.get("summary") or "" for d in message.get("reasoning_details") or []
             if isinstance(d, dict)]
    return "".join(p for p in parts if isinstance(p, str))


def turn_images(message: dict[str, Any]) -> list[str]:
    """The image URLs of an assistant message; ``image_url`` may be ``{"url": …}`` or a bare string."""
    urls = []
    for part in message.get("images") or []:
        ref = part.get("image_url") if isinstance(part, dict) else part
        url = ref.get("url") if isinstance(ref, dict) else ref
        if isinstance(url, str) and url:
            urls.append(url)
    return urls


def turn_flags(turn: Turn) -> list[str]:
    """Words that qualify a turn in a listing: stale, interrupted."""
    return [flag for flag, on in (("stale", turn.stale), ("interrupted", turn.status == INTERRUPTED)) if on]
