"""Error bodies read into constructor arguments: the readable message, retry-after, availability.

Pure functions of the response (no exception classes here): :mod:`.errors` picks the class and builds it.
"""

from __future__ import annotations

import html
import http
import json
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from ._scrub import decode

_RAW_LIMIT = 500  # characters of a provider's raw message shown in str(err)
_GENERIC_MESSAGES = {"", "provider returned error", "internal server error", "upstream error", "error"}


def status_error_fields(
    status: int, body: bytes | str, headers: Mapping[str, str], now: float | None
) -> tuple[bool, dict[str, Any]]:
    """(whether the body was a JSON error object, the error's constructor arguments) for an HTTP error."""
    text = decode(body)
    payload = parse_json(text)
    common = {"status_code": status, "body": text, "headers": headers,
              "retry_after": parse_retry_after(headers, payload, status=status, now=now)}
    if not isinstance(payload, dict):
        ctype = {str(k).lower(): v for k, v in headers.items()}.get("content-type", "unknown content type")
        summary = _html_summary(text) if "<" in text[:200] else _clip(text, 200)
        message = f"HTTP {status} {_status_phrase(status)} ({ctype}): {summary or 'empty body'}"
        return False, {"message": message, **common}
    fields = _error_fields(payload)
    fields["message"] = _readable_message(fields["message"], fields["metadata"], fields["availability"], status)
    gen_id = payload.get("id") if isinstance(payload.get("id"), str) else None
    return True, {**common, "generation_id": gen_id, **fields}


def stream_error_fields(payload: Mapping[str, Any] | None, native_finish_reason: str | None) -> dict[str, Any]:
    """Constructor arguments of the StreamError for a failed 200 answer (``payload`` None: a bare
    ``finish_reason: "error"``)."""
    if not payload or not isinstance(payload.get("error"), (dict, str)):
        native = native_finish_reason or "none given"
        message = f"The generation ended with finish_reason 'error' (native reason: {native})"
        return {"message": message, "error_type": native_finish_reason}
    fields = _error_fields(dict(payload))
    status = _numeric_status(fields["code"])
    fields["message"] = _readable_message(fields["message"], fields["metadata"], fields["availability"], status)
    gen_id = payload.get("id") if isinstance(payload.get("id"), str) else None
    return {"status_code": status, "generation_id": gen_id, "retry_after": parse_retry_after(None, dict(payload)),
            **fields}


def _clip(text: str, limit: int = _RAW_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _find_message(obj: Any, depth: int = 0) -> str | None:
    """The most message-like string inside a provider's raw error object."""
    if depth > 5:
        return None
    if isinstance(obj, str):
        return obj.strip() or None
    if isinstance(obj, list):
        for item in obj:
            found = _find_message(item, depth + 1)
            if found:
                return found
        return None
    if not isinstance(obj, dict):
        return None
    for key in ("message", "error_message", "detail", "error_description", "msg", "error", "errors"):
        if key in obj:
            value = obj[key]
            found = value.strip() if isinstance(value, str) else _find_message(value, depth + 1)
            if found:
                return found
    return None


def _raw_message(raw: Any) -> str | None:
    """The provider's own words from ``metadata.raw`` (a plain string, a JSON string, or an object)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        text = raw.strip()
        if text[:1] in ("{", "["):
            try:
                found = _find_message(json.loads(text))
            except ValueError:
                found = None
            if found:
                return _clip(found)
        return _clip(text) if text else None
    found = _find_message(raw)
    if found:
        return _clip(found)
    try:
        return _clip(json.dumps(raw))
    except (TypeError, ValueError):
        return _clip(str(raw))


def _readable_message(
    message: str | None, metadata: Mapping[str, Any], availability: Mapping[str, Any] | None, status: int | None
) -> str:
    """Turn OpenRouter's error object into a sentence a person can act on."""
    msg = (message or "").strip()
    raw = _raw_message(metadata.get("raw"))
    if raw:
        if msg.lower() in _GENERIC_MESSAGES:
            who = metadata.get("provider_name")
            msg = f"{who or 'Provider'} returned error: {raw}"
        elif raw not in msg:
            msg = f"{msg}: {raw}"
    reasons = metadata.get("reasons")
    if isinstance(reasons, list) and reasons and "flagged for" not in msg:
        msg += f" (flagged for: {', '.join(map(str, reasons))})"
    if availability:
        msg = _with_availability(msg, availability)
    if not msg:
        phrase = _status_phrase(status)
        msg = f"HTTP {status} {phrase}".strip() if status else "Unknown error"
    return msg


def _with_availability(msg: str, availability: Mapping[str, Any]) -> str:
    code = availability.get("code")
    constraint = availability.get("constraint")
    detail = constraint.get("detail") if isinstance(constraint, Mapping) else None
    if not msg and code:
        msg = str(code).replace("_", " ").capitalize()
    extra = [str(x) for x in (code if code and str(code) not in msg else None, detail) if x]
    fallbacks = availability.get("fallback_models")
    if isinstance(fallbacks, list) and fallbacks:
        extra.append("try: " + ", ".join(map(str, fallbacks[:3])))
    return f"{msg} [{'; '.join(extra)}]" if extra else msg


def _status_phrase(status: int | None) -> str:
    try:
        return http.HTTPStatus(status).phrase if status else ""
    except ValueError:
        return {524: "Edge Network Timeout", 529: "Provider Overloaded"}.get(status or 0, "")


def _html_summary(text: str) -> str:
    """A readable line from an HTML error page: its title, else its text."""
    match = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
    if match and match.group(1).strip():
        return _clip(html.unescape(match.group(1)), 200)
    stripped = re.sub(r"<(script|style)\b.*?</\1>|<[^>]+>", " ", text, flags=re.I | re.S)
    return _clip(html.unescape(stripped), 200)


def _as_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and number >= 0 else None  # not NaN, not negative


def parse_retry_after(
    headers: Mapping[str, str] | None,
    payload: Any = None,
    *,
    status: int | None = None,
    now: float | None = None,
) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms``, ``Retry-After`` (seconds or an HTTP
    date), the body's ``availability.retry_after``, or (429 only) the rate-limit reset time."""
    h = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    now = time.time() if now is None else now
    if "retry-after-ms" in h and (ms := _as_float(h["retry-after-ms"])) is not None:
        return ms / 1000
    if "retry-after" in h:
        value = h["retry-after"].strip()
        seconds = _as_float(value)
        if seconds is not None:
            return seconds
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    error = payload.get("error") if isinstance(payload, dict) else None
    availability = _availability(payload, error if isinstance(error, dict) else {})
    if availability and (seconds := _as_float(availability.get("retry_after"))) is not None:
        return seconds
    if status == 429:
        return _ratelimit_reset(h, error, now)
    return None


def _ratelimit_reset(h: Mapping[str, str], error: Any, now: float) -> float | None:
    """Seconds until ``X-RateLimit-Reset`` (epoch ms), from the headers or ``error.metadata.headers``."""
    reset = h.get("x-ratelimit-reset")
    if reset is None and isinstance(error, dict):
        meta_headers = (error.get("metadata") or {}).get("headers")
        if isinstance(meta_headers, dict):
            reset = {str(k).lower(): v for k, v in meta_headers.items()}.get("x-ratelimit-reset")
    stamp = _as_float(reset)
    if stamp is None:
        return None
    if stamp > 1e11:  # milliseconds since the epoch
        stamp /= 1000
    return max(0.0, stamp - now)


def _availability(payload: Any, error: Mapping[str, Any]) -> dict[str, Any] | None:
    """The 2026 availability object, wherever it sits (error, error.metadata or top level)."""
    meta = error.get("metadata") if isinstance(error.get("metadata"), dict) else {}
    for holder in (error, meta, payload if isinstance(payload, dict) else {}):
        value = holder.get("availability")
        if isinstance(value, dict):
            return value
    return None


def _error_fields(payload: Any) -> dict[str, Any]:
    """Constructor arguments from a JSON error body or chunk (any of the shapes seen in the wild)."""
    if not isinstance(payload, dict):
        return {"message": _clip(json.dumps(payload), 300) if payload is not None else ""}
    error = payload.get("error")
    message: str | None = None
    if isinstance(error, str):
        message, error = error, {}
    elif not isinstance(error, dict):
        error = payload if ("message" in payload or "detail" in payload) else {}
    if message is None:
        raw_message = error.get("message", error.get("detail"))
        message = raw_message if isinstance(raw_message, str) else (json.dumps(raw_message) if raw_message else "")
    metadata = error.get("metadata") if isinstance(error.get("metadata"), dict) else {}
    availability = _availability(payload, error)
    provider = metadata.get("provider_name")
    error_type = metadata.get("error_type") or error.get("error_type") or payload.get("error_type")
    if error_type is None and isinstance(error.get("type"), str):
        error_type = error["type"]
    return {
        "code": error.get("code"),
        "metadata": metadata,
        "provider_name": provider if isinstance(provider, str) else None,
        "error_type": error_type if isinstance(error_type, str) else None,
        "user_id": payload.get("user_id"),
        "availability": availability,
        "message": message,
    }


def _numeric_status(code: Any) -> int | None:
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.isdigit():
        return int(code)
    return None


def parse_json(text: str) -> Any:
    stripped = text.lstrip()
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None
