"""A map's own connection pools: copies of the client, each with a small pool on the map's event loop.

Per-row overhead matters here (thousands of requests, CPU-bound at high concurrency), so the pools skip
work that cannot change anything for an API answer: httpx wraps every response in urllib objects to look
for cookies, even when the response sets none.
"""

from __future__ import annotations

import asyncio
import copy
import threading
from typing import Any

import httpx

from . import defaults
from .client import Chat, OpenRouter


class SetCookieOnlyJar(httpx.Cookies):
    """Cookies that look at a response only when it sets one (the same result, minus ~40 µs a response)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


class MapHTTPClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` whose cookie store is a :class:`SetCookieOnlyJar`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._quiet_cookies = SetCookieOnlyJar(super().cookies)

    @property  # type: ignore[override]
    def cookies(self) -> httpx.Cookies:
        return self._quiet_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._quiet_cookies = SetCookieOnlyJar(cookies)


def private_clients(client: OpenRouter, concurrency: int) -> list[OpenRouter]:
    """Copies with the same key and settings, each with its own async pool on the map's loop (the shared
    client's pool, bound to the kernel's loop, is left alone). A pool's upkeep grows with the square of its
    connections and its requests contend for them, so each worker gets a pool of ``MAP_POOL_SIZE`` (one)."""
    if not client._owns_async_client:  # a supplied httpx.AsyncClient (tests, custom transports) is used as is
        return [client]
    shards = -(-concurrency // defaults.MAP_POOL_SIZE)
    size = -(-concurrency // shards)
    tls = httpx.create_ssl_context()  # one TLS context for every pool (building one costs milliseconds)
    return [_clone(client, size, tls) for _ in range(shards)]


def _clone(client: OpenRouter, connections: int, tls: Any) -> OpenRouter:
    clone = copy.copy(client)
    clone._client, clone._lock = None, threading.Lock()
    clone._async_client = MapHTTPClient(verify=tls, limits=httpx.Limits(
        max_connections=connections, max_keepalive_connections=connections))
    clone._async_loop = asyncio.get_running_loop()
    clone.chat = Chat(clone)
    return clone
