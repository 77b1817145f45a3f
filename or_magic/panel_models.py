"""The panel's model picker note: what a typed or chosen model id is, checked against ``/models``.

Pure functions (no widgets), so the note can be tested without a kernel.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .types import ModelInfo

# OpenRouter accepts these after a listed id (OPENROUTER.md §model); routers and ~…-latest aliases resolve
# server-side, so none of them is in /models and none deserves a warning.
VARIANT_SUFFIXES = (":free", ":nitro", ":floor", ":online", ":exacto", ":thinking", ":extended")
ROUTERS = ("openrouter/auto", "openrouter/free")
_ALIAS = re.compile(r"^~[\w.-]+/[\w.:-]+-latest$")
BAD_ID = re.compile(r"\s")


def model_note(model_id: str, models: Sequence[ModelInfo] | None) -> tuple[str, str]:
    """``(level, text)`` describing ``model_id`` against the ``/models`` list.

    level is "ok" (known: name, context and price), "info" (variant, router, alias, or no list to check
    against), "warn" (not listed: close matches offered, still sent as typed) or "error" (cannot be sent).
    """
    mid = model_id.strip()
    if not mid:
        return "error", "choose a model (type an id such as openai/gpt-4o-mini, or pick one from the list)"
    if BAD_ID.search(mid):
        return "error", f"{mid!r} is not a model id: ids contain no spaces (e.g. openai/gpt-4o-mini)"
    if mid in ROUTERS:
        return "info", f"{mid}: OpenRouter's router picks the model for each request"
    if _ALIAS.match(mid):
        return "info", f"{mid}: an alias OpenRouter resolves to the newest version"
    if not models:
        return "info", f"{mid}: not checked (the model list is not loaded)"
    by_id = {m.id: m for m in models if m.id}
    if mid in by_id:
        return "ok", describe_model(by_id[mid])
    base, sep, suffix = mid.rpartition(":")
    if sep and f":{suffix}" in VARIANT_SUFFIXES and base in by_id:
        return "ok", f"variant :{suffix} of " + describe_model(by_id[base])
    matches = close_models(mid, models)
    hint = f" Did you mean {', '.join(matches)}?" if matches else ""
    return "warn", (f"{mid} is not in OpenRouter's model list ({len(by_id)} models); it will be sent as "
                    f"typed, and a wrong id fails with 400.{hint}")


def close_models(text: str, models: Sequence[ModelInfo], n: int = 3) -> list[str]:
    """Ids close to ``text``: by whole id, by the part after the slash, or by display name."""
    keys: dict[str, str] = {}
    for m in models:
        if not m.id:
            continue
        keys.setdefault(m.id.lower(), m.id)
        keys.setdefault(m.id.split("/", 1)[-1].lower(), m.id)
        if m.name:
            keys.setdefault(m.name.lower(), m.id)
    found: list[str] = []
    for key in difflib.get_close_matches(text.lower(), list(keys), n=n * 3, cutoff=0.6):
        if keys[key] not in found:
            found.append(keys[key])
    return found[:n]


def describe_model(m: ModelInfo) -> str:
    """One line: name, context length, price per million tokens in and out."""
    parts = [m.name or m.id or "?"]
    if m.context_length:
        parts.append(f"context {m.context_length:,} tokens")
    pricing = m.pricing or {}
    try:
        prompt, completion = float(pricing.get("prompt", "")), float(pricing.get("completion", ""))
    except ValueError:
        pass
    else:
        if prompt < 0 or completion < 0:  # routers such as openrouter/auto say -1: the routed model's price
            parts.append("price of the model it routes to")
        else:
            parts.append("free" if prompt == completion == 0 else
                         f"${prompt * 1e6:.2f}/M in · ${completion * 1e6:.2f}/M out")
    return " · ".join(parts)


__all__ = ["model_note", "close_models", "describe_model", "BAD_ID"]
