"""The OpenRouter client: ``chat.send`` / ``chat.send_async``, ``models()``, ``key()``, retries, timeouts.

The surface mirrors the official SDK (``openrouter`` on PyPI), so its documented examples run with only
the import changed::

    from or_magic import OpenRouter
    with OpenRouter(api_key=..., http_referer=..., x_open_router_title=...) as client:
        res = client.chat.send(messages=[{"role": "user", "content": "Hi"}], model="openai/gpt-4o-mini")
        with client.chat.send(messages=[...], model=..., stream=True) as stream:
            for chunk in stream:
                print(chunk.choices[0].delta.content)

Where it deliberately differs (see ``shared/OPENROUTER.md`` §9): every field OpenRouter accepts is sent
(``reasoning.max_tokens``/``exclude``/``enabled``, ``top_k``, ``verbosity``, … plus ``extra_body``); responses
keep OpenRouter's extras; errors in a 200 response raise :class:`~or_magic.errors.StreamError` with the
partial output; retries are bounded for an interactive cell (2 retries, 15 s of waiting, never once a
response body is being read, since a retry re-bills the prompt); and timeouts suit LLM streaming
(10 s to connect, 300 s between bytes), never httpx's 5 s default and never unbounded.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from ._body import BODY_FIELDS, TRANSPORT_FIELDS, build_request_body, dumps, request_params
from ._flows import Flow, chat, fetch
from ._io import AsyncIO, SyncIO, adrive, drive
from ._keywords import keywords_of, send_keywords
from ._response import parse_data, parse_models
from ._retry import RetryConfig, retry_config_from
from ._stream import EventStream, EventStreamAsync
from ._transport import (
    DEFAULT_SERVER_URL,
    DEFAULT_TIMEOUT,
    USER_AGENT,
    Attribution,
    Request,
    request_headers,
    request_timeout,
)
from .errors import ConfigError, remember_secret

if TYPE_CHECKING:  # pragma: no cover
    import asyncio  # imported on first async use

    from .batches import Batches
    from .types import ChatResult, GenerationInfo, KeyInfo, ModelInfo

# The pydantic models (types, accumulate), asyncio and pydantic's BaseModel are imported on first use, not
# here: ``import or_magic.client`` stays as cheap as the official SDK's lazy import.

__all__ = [
    "OpenRouter",
    "Chat",
    "RetryConfig",
    "EventStream",
    "EventStreamAsync",
    "build_request_body",
    "DEFAULT_SERVER_URL",
    "DEFAULT_TIMEOUT",
]
# Also importable from here, as before the split: BODY_FIELDS, TRANSPORT_FIELDS, USER_AGENT, request_params.
_REEXPORTED = (BODY_FIELDS, TRANSPORT_FIELDS, USER_AGENT, request_params)


# ---------------------------------------------------------------- the client


class _Secret:
    """Holds the key so that ``repr``/``vars`` of the client never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<hidden>"


class OpenRouter:
    """An OpenRouter client with one shared connection pool (sync and async), like the official SDK's.

    ``api_key`` may be a string, a callable returning one, or None to read ``OPENROUTER_API_KEY`` at
    request time. ``server_url`` defaults to ``OPENROUTER_BASE_URL``, else the public API root.
    ``sleep``/``async_sleep``/``clock`` are injectable for tests.
    """

    def __init__(
        self,
        api_key: str | Callable[[], str] | None = None,
        *,
        http_referer: str | None = None,
        x_open_router_title: str | None = None,
        x_open_router_categories: str | Sequence[str] | None = None,
        server_url: str | None = None,
        client: httpx.Client | None = None,
        async_client: httpx.AsyncClient | None = None,
        retry_config: RetryConfig | None = None,
        timeout_ms: int | None = None,
        timeout: httpx.Timeout | None = None,
        sleep: Callable[[float], None] | None = None,
        async_sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if isinstance(api_key, str):
            remember_secret(api_key)
        self._api_key: _Secret | Callable[[], str] | None = _Secret(api_key) if isinstance(api_key, str) else api_key
        self.http_referer = http_referer
        self.x_open_router_title = x_open_router_title
        self.x_open_router_categories = x_open_router_categories
        self._server_url = server_url
        self.retry_config = retry_config or RetryConfig()
        self.timeout_ms = timeout_ms
        self._timeout = timeout
        self._client = client
        self._owns_client = client is None
        self._async_client = async_client
        self._owns_async_client = async_client is None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._sleep = sleep or time.sleep
        self._async_sleep = async_sleep
        self._clock = clock or time.time
        self._random = random.random
        self._lock = threading.Lock()
        self._models_cache: dict[tuple[str, str | None], list[ModelInfo]] = {}
        self.chat = Chat(self)

    # ------------------------------------------------------------ configuration

    @property
    def server_url(self) -> str:
        """The API root in use: the argument, else ``OPENROUTER_BASE_URL``, else the public one."""
        return (self._server_url or os.environ.get("OPENROUTER_BASE_URL") or DEFAULT_SERVER_URL).rstrip("/")

    def _resolve_key(self, required: bool = True) -> str | None:
        """The API key, read now (the environment may have changed since construction)."""
        source = self._api_key
        if source is None:
            key = os.environ.get("OPENROUTER_API_KEY")
        elif isinstance(source, _Secret):
            key = source.get()
        else:
            key = source()
        key = (key or "").strip()
        if not key:
            if required:
                raise ConfigError("No OpenRouter API key: set OPENROUTER_API_KEY or pass api_key=...")
            return None
        remember_secret(key)
        return key

    def _owns(self, http: httpx.Client | httpx.AsyncClient) -> bool:
        return (http is self._client and self._owns_client) or (http is self._async_client and self._owns_async_client)

    def _sync_http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self._timeout or DEFAULT_TIMEOUT)
            return self._client

    def _async_http(self) -> httpx.AsyncClient:
        """The async client; one we own is remade if the running event loop changed (asyncio.run twice)."""
        import asyncio

        loop = asyncio.get_running_loop()
        with self._lock:
            if self._owns_async_client and (self._async_client is None or self._async_loop is not loop):
                self._async_client = httpx.AsyncClient(timeout=self._timeout or DEFAULT_TIMEOUT)
                self._async_loop = loop
            assert self._async_client is not None
            return self._async_client

    def _prepare(
        self,
        http: httpx.Client | httpx.AsyncClient,
        method: str,
        path: str,
        *,
        stream: bool = False,
        body: Any = None,
        params: dict[str, str] | None = None,
        key_required: bool = True,
        overrides: Mapping[str, Any] | None = None,
    ) -> Request:
        """One request as data: URL, headers (key read now), timeout and retry policy (a call's own win)."""
        o = overrides or {}
        mine = Attribution(self.http_referer, self.x_open_router_title, self.x_open_router_categories)
        headers = request_headers(stream=stream, key=self._resolve_key(required=key_required), mine=mine, overrides=o)
        if body is not None:
            headers["Content-Type"] = "application/json"
        supplied = http.timeout if not self._owns(http) else None
        timeout_ms = o.get("timeout_ms") if o.get("timeout_ms") is not None else self.timeout_ms
        return Request(
            method=method,
            url=f"{(o.get('server_url') or self.server_url).rstrip('/')}{path}",
            headers=headers,
            timeout=request_timeout(self._timeout, timeout_ms, supplied),
            retry=retry_config_from(o.get("retries"), self.retry_config),
            content=dumps(body) if body is not None else None,
            params=params,
        )

    # ------------------------------------------------------------ running a flow (the only sync/async split)

    def _run(self, flow: Callable[..., Flow[Any]], *args: Any, **kwargs: Any) -> Any:
        """``flow(request, ...)`` with blocking I/O; ``kwargs`` describe the request."""
        http = self._sync_http()
        io = SyncIO(http, self._sleep, self._clock, self._random)
        return drive(flow(self._prepare(http, **kwargs), *args), io)

    async def _arun(self, flow: Callable[..., Flow[Any]], *args: Any, **kwargs: Any) -> Any:
        """``flow(request, ...)`` with awaited I/O."""
        http = self._async_http()
        io = AsyncIO(http, self._asleep, self._clock, self._random)
        return await adrive(flow(self._prepare(http, **kwargs), *args), io)

    async def _asleep(self, seconds: float) -> None:
        if self._async_sleep is not None:
            await self._async_sleep(seconds)
        else:
            import asyncio

            await asyncio.sleep(seconds)

    @staticmethod
    def _chat_request(params: dict[str, Any]) -> dict[str, Any]:
        body = build_request_body(**params)
        return {"method": "POST", "path": "/chat/completions", "stream": body["stream"], "body": body,
                "overrides": params}

    def _chat(self, params: dict[str, Any]) -> ChatResult | EventStream:
        request = self._chat_request(params)
        return self._run(chat, request["stream"], **request)

    async def _chat_async(self, params: dict[str, Any]) -> ChatResult | EventStreamAsync:
        request = self._chat_request(params)
        return await self._arun(chat, request["stream"], **request)

    # ------------------------------------------------------------ other endpoints

    def _models_query(self, output_modalities: str | None, refresh: bool) -> tuple[Any, dict[str, Any] | None]:
        """The cache key, and the request to make unless the cache answers (``None`` then)."""
        cache_key = (self.server_url, output_modalities)
        if not refresh and cache_key in self._models_cache:
            return cache_key, None
        params = {"output_modalities": output_modalities} if output_modalities else None
        return cache_key, {"method": "GET", "path": "/models", "params": params, "key_required": False}

    def _models_store(self, cache_key: Any, answer: tuple[bytes, httpx.Headers] | None) -> list[ModelInfo]:
        if answer is not None:
            self._models_cache[cache_key] = parse_models(*answer)
        return list(self._models_cache[cache_key])

    def models(self, *, output_modalities: str | None = "all", refresh: bool = False) -> list[ModelInfo]:
        """``GET /models`` (all output modalities by default, so image models are listed), cached."""
        cache_key, request = self._models_query(output_modalities, refresh)
        return self._models_store(cache_key, request and self._run(fetch, **request))

    async def models_async(self, *, output_modalities: str | None = "all", refresh: bool = False) -> list[ModelInfo]:
        """Async twin of :meth:`models` (same cache)."""
        cache_key, request = self._models_query(output_modalities, refresh)
        return self._models_store(cache_key, request and await self._arun(fetch, **request))

    def known_model(self, model_id: str) -> ModelInfo | None:
        """The model's entry in an already-loaded ``/models`` list (a ``:variant``: its base's); never a request."""
        by_id = {m.id: m for (url, _), listing in self._models_cache.items() if url == self.server_url
                 for m in listing if m.id}
        return by_id.get(model_id) or by_id.get(model_id.rpartition(":")[0])

    def key(self) -> KeyInfo:
        """``GET /key``: limits and usage of the key in use (for a credits display)."""
        return _parse_key(*self._run(fetch, method="GET", path="/key"))

    async def key_async(self) -> KeyInfo:
        """Async twin of :meth:`key`."""
        return _parse_key(*await self._arun(fetch, method="GET", path="/key"))

    # ------------------------------------------------------------ generations and batches (OPENROUTER.md §11)

    @property
    def batches(self) -> Batches:
        """The Batch API (``create``, ``get``, ``list``, ``delete``, ``cancel``, ``wait``; ``*_async`` twins)."""
        from .batches import Batches

        with self._lock:
            if "_batches_api" not in self.__dict__:
                self.__dict__["_batches_api"] = Batches(self)
            return self.__dict__["_batches_api"]

    def _call(self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
              retries: RetryConfig | None = None) -> tuple[bytes, httpx.Headers]:
        """One JSON request with the usual retries (or ``retries``); the body and headers of the answer."""
        return self._run(fetch, method=method, path=path, body=body, params=params, overrides={"retries": retries})

    async def _call_async(self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
                          retries: RetryConfig | None = None) -> tuple[bytes, httpx.Headers]:
        """Async twin of :meth:`_call`."""
        return await self._arun(fetch, method=method, path=path, body=body, params=params,
                                overrides={"retries": retries})

    def generation(self, generation_id: str) -> GenerationInfo:
        """``GET /generation?id=``: what a generation billed (also for a stream that was cut).

        Right after a stream ends the server may not know it yet: a ``NotFoundResponseError`` then is
        normal, and the caller retries a few times with a delay.
        """
        return _parse_generation(*self._call("GET", "/generation", params={"id": generation_id}))

    async def generation_async(self, generation_id: str) -> GenerationInfo:
        """Async twin of :meth:`generation`."""
        return _parse_generation(*await self._call_async("GET", "/generation", params={"id": generation_id}))

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the sync httpx client if this object created it (a supplied one is left open)."""
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None

    async def aclose_loop_pool(self) -> None:
        """Close the async pool made for the running event loop (a loop about to end: a compare's)."""
        import asyncio

        if self._owns_async_client and self._async_client is not None and \
                self._async_loop is asyncio.get_running_loop():
            await self._async_client.aclose()
            self._async_client = None

    async def aclose(self) -> None:
        """Close the httpx clients this object created."""
        if self._owns_async_client and self._async_client is not None:
            await self._async_client.aclose()
            self._async_client = None
        self.close()

    def __enter__(self) -> OpenRouter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> OpenRouter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        if isinstance(self._api_key, _Secret):
            key = "given"
        elif self._api_key is not None:
            key = "callable"
        else:
            key = "from OPENROUTER_API_KEY" if os.environ.get("OPENROUTER_API_KEY") else "missing"
        return f"OpenRouter(server_url={self.server_url!r}, api_key={key})"


class Chat:
    """``client.chat``: ``send`` and ``send_async``, keyword for keyword like the official SDK.

    Both take exactly the keywords of :func:`~or_magic._keywords.send_keywords` (one list, so they cannot drift apart).
    """

    def __init__(self, sdk: OpenRouter) -> None:
        self._sdk = sdk

    build_request_body = staticmethod(build_request_body)

    @keywords_of(send_keywords)
    def send(self, params: dict[str, Any]) -> ChatResult | EventStream:
        """Create a chat completion: a :class:`ChatResult`, or with ``stream=True`` an :class:`EventStream`.

        Every body field OpenRouter accepts is a keyword (see ``build_request_body``); ``extra_body`` adds
        any other. ``retries``/``server_url``/``timeout_ms``/``http_headers`` and the attribution headers
        override the client's settings for this call.
        """
        return self._sdk._chat(params)

    @keywords_of(send_keywords)
    async def send_async(self, params: dict[str, Any]) -> ChatResult | EventStreamAsync:
        """Awaitable twin of :meth:`send`; streams are :class:`EventStreamAsync`."""
        return await self._sdk._chat_async(params)

    def __repr__(self) -> str:
        return f"Chat({self._sdk!r})"


def _parse_key(body: bytes, headers: httpx.Headers) -> KeyInfo:
    from .types import KeyInfo

    return parse_data(KeyInfo, body, headers, "the key info")


def _parse_generation(body: bytes, headers: httpx.Headers) -> GenerationInfo:
    from .types import GenerationInfo

    return parse_data(GenerationInfo, body, headers, "the generation")
