"""Pre-send policy for one turn: replay a recorded answer, record a good one, and never let the cache cost
an answer. (The budget check is the session's: it knows the spend; the driver asks it before each request.)

A cache that cannot be read is a miss; an entry whose fields have the wrong types is a miss; a cache that
cannot be written loses only the recording: the answer is shown and kept, and the session warns once.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

from .cache import ResponseCache, request_key
from .client import build_request_body, request_params
from .errors import CacheError
from .types import ChatResult


class CacheHost(Protocol):
    """What the policy reads from the session."""

    cache_warned: bool

    @property
    def cache(self) -> ResponseCache | None: ...

    def client(self) -> Any: ...


class CachePolicy:
    """The response cache as one turn sees it: its key, the recorded answer, and recording."""

    def __init__(self, host: CacheHost, enabled: bool) -> None:
        self.host = host
        self.cache = host.cache if enabled else None
        self.key: str | None = None

    def lookup(self, params: dict[str, Any], messages: list[dict[str, Any]]) -> ChatResult | None:
        """The recorded answer to exactly this request, or None (no cache, a miss, an unusable entry)."""
        if self.cache is None:
            return None
        body = build_request_body(messages=messages, **request_params(params))
        self.key = request_key(self.host.client().server_url, body)
        try:
            recorded = self.cache.get(self.key)
            result = ChatResult.model_validate(recorded) if recorded is not None else None
        except (OSError, ValueError):  # pydantic's ValidationError is a ValueError
            return None
        if result is not None and result.usage is not None:
            result.usage.cost = 0.0  # a replay costs nothing
        return result

    def record(self, result: ChatResult, model: str | None) -> None:
        """Record a good answer; a cache that cannot be written is reported once, never raised."""
        if self.cache is None or self.key is None:
            return
        try:
            self.cache.put(self.key, result.model_dump(mode="json", exclude_none=True), model=model)
        except (CacheError, OSError) as err:
            self._warn_once(err)

    def _warn_once(self, err: BaseException) -> None:
        if self.host.cache_warned:
            return
        self.host.cache_warned = True
        print(f"or_magic: the response cache cannot be written ({err}); answers are shown and kept but not "
              "recorded. Fix ChatMagics.cache_dir, or turn the cache off with %config ChatMagics.cache = False",
              file=sys.stderr)
