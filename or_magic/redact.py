"""Masking secrets in state: the key in use and anything shaped like an OpenRouter key.

Applied to whatever leaves the kernel's memory (exports, cache entries) and to whatever enters it from a
file (``%chat load``, ``%chat restore``), so a key typed into a prompt or a variable never persists.
Imports nothing from the package, so every layer, the wire included, may use it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

__all__ = ["MASK", "KEY_PATTERN", "redact", "redact_text", "has_secret", "secrets_in_use"]

MASK = "[redacted]"
# sk-or-v1-<64 hex> today; any sk-or-… token long enough to be a key is treated as one
KEY_PATTERN = re.compile(r"sk-or-[A-Za-z0-9_\-]{6,}")
_MIN_SECRET = 8  # shorter "secrets" would mask ordinary words

T = TypeVar("T")


def secrets_in_use(*extra: str | None) -> tuple[str, ...]:
    """The given keys plus ``$OPENROUTER_API_KEY``, without blanks or strings too short to be keys."""
    found = [*extra, os.environ.get("OPENROUTER_API_KEY")]
    return tuple(dict.fromkeys(s for s in found if isinstance(s, str) and len(s) >= _MIN_SECRET))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every listed secret and every OpenRouter-shaped key replaced by ``MASK``."""
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET and secret in text:
            text = text.replace(secret, MASK)
    return KEY_PATTERN.sub(MASK, text) if "sk-or-" in text else text


def redact(obj: T, secrets: Iterable[str] = ()) -> T:
    """A copy of a JSON-like ``obj`` (str, dict, list, tuple, nested) with secrets masked in keys and values.

    Other values (numbers, None, objects) are returned as they are; ``obj`` itself is never modified.
    """
    listed = tuple(s for s in secrets if s)
    return _walk(obj, listed, 0)  # type: ignore[no-any-return]


def _walk(obj: Any, secrets: tuple[str, ...], depth: int) -> Any:
    if isinstance(obj, str):
        return redact_text(obj, secrets)
    if depth > 200:  # deeper than any export or request: cut rather than recurse without end
        return MASK
    if isinstance(obj, Mapping):
        return {(redact_text(k, secrets) if isinstance(k, str) else k): _walk(v, secrets, depth + 1)
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [_walk(v, secrets, depth + 1) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_walk(v, secrets, depth + 1) for v in obj)
    return obj


def has_secret(obj: Any, secrets: Iterable[str] = ()) -> bool:
    """Whether ``obj`` holds a listed secret or an OpenRouter-shaped key anywhere (for refusing input)."""
    listed = tuple(s for s in secrets if s)
    return redact(obj, listed) != obj
