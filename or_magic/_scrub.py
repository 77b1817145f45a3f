"""Keeping the API key out of everything an error carries: text, JSON-like objects, headers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_DROP_HEADERS = {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"}
_KEY_RE = re.compile(r"\bsk-[A-Za-z0-9][A-Za-z0-9_\-]{10,}|(?i:\bbearer)\s+[A-Za-z0-9._~+/=\-]{8,}")
_SECRETS: set[str] = set()


def remember_secret(secret: str | None) -> None:
    """Register the key in use, so it is scrubbed even if it does not look like ``sk-or-…``."""
    if secret and len(secret) >= 8:
        _SECRETS.add(secret)


def scrub(text: str) -> str:
    """Remove anything that looks like an API key (or is the registered key) from ``text``."""
    if not text:
        return text
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    if "sk-" in text or "earer" in text or "EARER" in text:
        text = _KEY_RE.sub("[redacted]", text)
    return text


def scrub_obj(obj: Any) -> Any:
    """``scrub`` applied to every string inside a JSON-like object (returns a new object)."""
    if isinstance(obj, str):
        return scrub(obj)
    if isinstance(obj, Mapping):
        return {scrub(str(k)): scrub_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [scrub_obj(v) for v in obj]
    return obj


def safe_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Response headers, lower-cased, without credentials."""
    if not headers:
        return {}
    items = headers.multi_items() if hasattr(headers, "multi_items") else headers.items()
    out: dict[str, str] = {}
    for key, value in items:
        name = str(key).lower()
        if name not in _DROP_HEADERS:
            out[name] = scrub(str(value))
    return out



def decode(body: str | bytes | None) -> str:
    """A body as text, whatever it arrived as (undecodable bytes replaced, never raised)."""
    if body is None:
        return ""
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body).decode("utf-8", "replace")
    return str(body)
