"""The chat request body: which keywords are body fields, and the exact JSON ``chat.send`` posts."""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ._keywords import send_keywords

# Keyword arguments of send() that shape the HTTP request rather than the body.
TRANSPORT_FIELDS = frozenset(
    {
        "retries",
        "server_url",
        "timeout_ms",
        "http_headers",
        "http_referer",
        "x_open_router_title",
        "x_open_router_categories",
        "x_open_router_experimental_metadata",
        "x_open_router_metadata",
    }
)
# The request body's fields, in the order they are sent (response caching keys on the JSON text): the
# keywords of send() that are neither transport nor ``extra_body``, in their order there.
BODY_FIELDS: tuple[str, ...] = tuple(
    name for name in inspect.signature(send_keywords).parameters if name not in TRANSPORT_FIELDS | {"extra_body"}
)
KNOWN_PARAMS = frozenset(BODY_FIELDS) | TRANSPORT_FIELDS | {"extra_body"}


def _jsonable(value: Any, drop_none: bool) -> Any:
    """Pydantic models dumped (exclude_none), containers walked; ``drop_none`` drops None in dicts."""
    if is_model(value):
        return value.model_dump(mode="json", exclude_none=True, by_alias=True)
    if isinstance(value, Mapping):
        return {k: _jsonable(v, drop_none) for k, v in value.items() if not (drop_none and v is None)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, drop_none) for v in value]
    return value


def _messages(messages: Any) -> list[Any]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise TypeError("messages must be a list of message dicts or message models")
    out = []
    for msg in messages:
        if not (isinstance(msg, Mapping) or is_model(msg)):
            raise TypeError(f"each message must be a dict or a message model, not {type(msg).__name__}")
        out.append(_jsonable(msg, drop_none=False))  # history is sent as given (content: null included)
    return out


def build_request_body(**params: Any) -> dict[str, Any]:
    """Exactly the JSON body ``chat.send(**params)`` would POST (for ``--dry-run`` and tests).

    None values are dropped (also inside parameter dicts, but not inside messages); pydantic models are
    dumped without None fields; ``extra_body`` is merged last, a None value there removing a field.
    Transport-only arguments (``retries``, ``http_headers``, …) are accepted and ignored.
    """
    unknown = sorted(set(params) - KNOWN_PARAMS)
    if unknown:
        raise TypeError(f"send() got an unexpected keyword argument {unknown[0]!r}")
    if params.get("messages") is None:
        raise TypeError("send() missing required keyword argument: 'messages'")
    body: dict[str, Any] = {}
    for name in BODY_FIELDS:
        value = params.get(name)
        if name == "messages":
            body[name] = _messages(value)
        elif name == "stream":
            body[name] = bool(value)
        elif value is not None:
            body[name] = _jsonable(value, drop_none=True)
    extra = params.get("extra_body")
    if extra is not None:
        if not isinstance(extra, Mapping):
            raise TypeError("extra_body must be a dict")
        for name, value in extra.items():
            if value is None:
                body.pop(name, None)
            else:
                body[name] = _jsonable(value, drop_none=False)
    return body


def request_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` as keywords for ``chat.send``: fields it does not name go into ``extra_body``.

    So a request field this client has no keyword for (``--param usage={...}``, a field newer than the
    client) still reaches the body, as "any other request field" promises; a field given both ways keeps
    the ``extra_body`` value.
    """
    known = {k: v for k, v in params.items() if k in KNOWN_PARAMS}
    unknown = {k: v for k, v in params.items() if k not in KNOWN_PARAMS}
    if unknown:
        extra = known.get("extra_body")
        known["extra_body"] = {**unknown, **(dict(extra) if isinstance(extra, Mapping) else {})}
    return known


def is_model(value: Any) -> bool:
    """A pydantic model instance (duck-typed, so pydantic.main need not be imported to ask)."""
    return callable(getattr(value, "model_dump", None)) and not isinstance(value, type)


def dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
