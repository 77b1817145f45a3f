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

import contextlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NoReturn

import httpx
from pydantic_core import ValidationError

from . import defaults
from ._version import __version__
from .errors import (
    APIConnectionError,
    APITimeoutError,
    ConfigError,
    OpenRouterError,
    ResponseValidationError,
    StreamError,
    make_status_error,
    make_stream_error,
    remember_secret,
    safe_headers,
    scrub,
)
from .sse import aiter_sse_data, iter_sse_data

if TYPE_CHECKING:  # pragma: no cover
    import asyncio  # imported on first async use

    from pydantic import BaseModel

    from .accumulate import ChatAccumulator
    from .batches import Batches
    from .types import ChatResult, ChatStreamChunk, GenerationInfo, KeyInfo, ModelInfo

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

logger = logging.getLogger("or_magic")

DEFAULT_SERVER_URL = "https://openrouter.ai/api/v1"
DEFAULT_TIMEOUT = httpx.Timeout(connect=defaults.CONNECT_TIMEOUT, read=defaults.READ_TIMEOUT, write=30.0,
                                pool=10.0)
USER_AGENT = f"or_magic/{__version__}"
_HTTPX_DEFAULT_TIMEOUT = httpx.Timeout(5.0)

# The request body's fields, in the order they are sent (response caching keys on the JSON text).
BODY_FIELDS: tuple[str, ...] = (
    "messages",
    "model",
    "models",
    "provider",
    "plugins",
    "route",
    "user",
    "session_id",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "max_completion_tokens",
    "max_tokens",
    "metadata",
    "presence_penalty",
    "reasoning",
    "response_format",
    "seed",
    "stop",
    "stream",
    "stream_options",
    "temperature",
    "tool_choice",
    "tools",
    "top_p",
    "debug",
    "image_config",
    "modalities",
    "cache_control",
    "parallel_tool_calls",
    "service_tier",
    "stop_server_tools_when",
    "trace",
    "top_k",
    "repetition_penalty",
    "min_p",
    "top_a",
    "verbosity",
    "prediction",
)
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
_KNOWN_PARAMS = frozenset(BODY_FIELDS) | TRANSPORT_FIELDS | {"extra_body"}


# ---------------------------------------------------------------- retry policy


@dataclass(frozen=True)
class RetryConfig:
    """When and how long to retry. Only failures before a response body is read are retried.

    ``max_wait`` is the total time (seconds) the retries may sleep: a server asking for a longer wait
    (``Retry-After``) gets its typed error raised at once, with ``retry_after`` set, instead of a cell
    that blocks silently. ``jitter`` is the fraction by which a computed backoff is randomly shortened.
    """

    max_retries: int = defaults.MAX_RETRIES
    max_wait: float = 15.0
    initial_interval: float = 0.5
    max_interval: float = 8.0
    jitter: float = 0.25
    retry_connection_errors: bool = True
    status_codes: frozenset[int] = frozenset({408, 429, 500, 502, 503, 524, 529})

    def __post_init__(self) -> None:
        object.__setattr__(self, "status_codes", frozenset(self.status_codes))

    @classmethod
    def none(cls) -> RetryConfig:
        """No retries at all."""
        return cls(max_retries=0, retry_connection_errors=False)

    def backoff(self, attempt: int, rand: float) -> float:
        """Exponential backoff for retry number ``attempt`` (0-based), shortened by up to ``jitter``."""
        base = min(self.initial_interval * (2**attempt), self.max_interval)
        return base * (1.0 - self.jitter * rand)


def _retry_config(value: RetryConfig | int | None, default: RetryConfig) -> RetryConfig:
    if value is None:
        return default
    if isinstance(value, RetryConfig):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return replace(default, max_retries=value)
    raise TypeError(f"retries must be a RetryConfig, an int or None, not {type(value).__name__}")


def _retry_delay(cfg: RetryConfig, attempt: int, waited: float, err: OpenRouterError, rand: float) -> float | None:
    """Seconds to sleep before the next attempt, or None to give up and raise ``err``."""
    if attempt >= cfg.max_retries:
        return None
    remaining = cfg.max_wait - waited
    if err.retry_after is not None:
        return err.retry_after if err.retry_after <= remaining else None
    if remaining <= 0:
        return None
    return min(cfg.backoff(attempt, rand), remaining)


def _status_retryable(err: OpenRouterError, cfg: RetryConfig) -> bool:
    if err.status_code not in cfg.status_codes:
        return False
    return not (err.availability and err.availability.get("retryable") is False)


# Transport failures that prove the server never had the whole request, so a retry cannot bill twice. Any
# failure while reading (a read timeout, a reset, a dropped connection) is not among them: by then the server
# may be generating, and billing, the answer. (httpcore discards pooled connections the server has closed
# before reusing them, so a stale keep-alive connection rarely shows up as a read error.)
_RETRYABLE_TRANSPORT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
)


def _transport_error(
    exc: Exception, timeout: httpx.Timeout, url: str, partial: ChatAccumulator | None = None
) -> APIConnectionError:
    """Translate an httpx transport exception into ours, naming the timeout that fired."""
    host = httpx.URL(url).host or url
    timeouts = {
        httpx.ConnectTimeout: ("connect", timeout.connect, f"Could not connect to {host}"),
        httpx.ReadTimeout: ("read", timeout.read, f"No data from {host}"),
        httpx.WriteTimeout: ("write", timeout.write, f"Could not send the request to {host}"),
        httpx.PoolTimeout: ("pool", timeout.pool, "No free connection in the pool"),
    }
    for cls, (which, value, what) in timeouts.items():
        if isinstance(exc, cls):
            message = f"{what} within {value:g} s ({which} timeout)"
            return APITimeoutError(message, partial=partial)
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"Timed out talking to {host}: {exc}", partial=partial)
    if isinstance(exc, httpx.ConnectError):
        return APIConnectionError(f"Could not connect to {host}: {exc}", partial=partial)
    if partial is not None and partial.chunks:
        return APIConnectionError(f"The connection to {host} dropped mid-stream: {exc}", partial=partial)
    return APIConnectionError(f"Connection to {host} failed: {exc or type(exc).__name__}", partial=partial)


# ---------------------------------------------------------------- request body


def _jsonable(value: Any, drop_none: bool) -> Any:
    """Pydantic models dumped (exclude_none), containers walked; ``drop_none`` drops None in dicts."""
    if _is_model(value):
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
        if not (isinstance(msg, Mapping) or _is_model(msg)):
            raise TypeError(f"each message must be a dict or a message model, not {type(msg).__name__}")
        out.append(_jsonable(msg, drop_none=False))  # history is sent as given (content: null included)
    return out


def build_request_body(**params: Any) -> dict[str, Any]:
    """Exactly the JSON body ``chat.send(**params)`` would POST (for ``--dry-run`` and tests).

    None values are dropped (also inside parameter dicts, but not inside messages); pydantic models are
    dumped without None fields; ``extra_body`` is merged last, a None value there removing a field.
    Transport-only arguments (``retries``, ``http_headers``, …) are accepted and ignored.
    """
    unknown = sorted(set(params) - _KNOWN_PARAMS)
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
    known = {k: v for k, v in params.items() if k in _KNOWN_PARAMS}
    unknown = {k: v for k, v in params.items() if k not in _KNOWN_PARAMS}
    if unknown:
        extra = known.get("extra_body")
        known["extra_body"] = {**unknown, **(dict(extra) if isinstance(extra, Mapping) else {})}
    return known


def _is_model(value: Any) -> bool:
    """A pydantic model instance (duck-typed, so pydantic.main need not be imported to ask)."""
    return callable(getattr(value, "model_dump", None)) and not isinstance(value, type)


def _as_chunk(result: ChatResult) -> ChatStreamChunk:
    from .accumulate import result_to_chunk

    return result_to_chunk(result)


def _dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# ---------------------------------------------------------------- plumbing shared by sync and async


class _Secret:
    """Holds the key so that ``repr``/``vars`` of the client never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<hidden>"


@dataclass
class _Request:
    method: str
    url: str
    headers: dict[str, str]
    timeout: httpx.Timeout
    retry: RetryConfig
    content: bytes | None = None
    params: dict[str, str] | None = None


def _is_event_stream(response: httpx.Response, streaming: bool = False) -> bool:
    """Pick the parser from the response, like the SDK: SSE if it says so, or if a streaming request got
    anything but JSON (a proxy may drop the content type)."""
    ctype = response.headers.get("content-type", "")
    return "event-stream" in ctype or (streaming and "json" not in ctype)


def _validation_error(
    what: str, body: str | bytes, exc: Exception, partial: ChatAccumulator | None, headers: Any
) -> ResponseValidationError:
    first = exc.errors()[0] if isinstance(exc, ValidationError) and exc.errors() else None
    detail = first.get("msg", str(exc)) if first else str(exc)
    err = ResponseValidationError(f"{what}: {detail}", body=body, headers=headers, partial=partial)
    err.cause = scrub(str(exc))  # the parse error's text (its input may echo the key), not the object
    return err


def _parse_result(body: bytes, headers: httpx.Headers) -> ChatResult:
    """A non-streaming body as a ChatResult, or the StreamError it really is (error-only 200 bodies,
    ``choices[].error``, ``finish_reason: "error"``)."""
    from .accumulate import ChatAccumulator
    from .types import ChatResult

    try:
        result = ChatResult.model_validate_json(body)
    except ValidationError as exc:
        payload = _loads(body)
        if isinstance(payload, dict) and "error" in payload:
            raise make_stream_error(payload, headers=headers, body=body) from exc
        raise _validation_error("Could not parse the response", body, exc, None, headers) from None
    extra = result.model_extra or {}
    failed = next((c for c in result.choices if c.error is not None or c.finish_reason == "error"), None)
    if extra.get("error") is None and failed is None:
        return result
    partial = ChatAccumulator.from_result(result) if result.choices else None
    if extra.get("error") is not None:
        raise make_stream_error(_loads(body), partial=partial, headers=headers, body=body)
    assert failed is not None
    if failed.error is not None:
        payload = {"error": failed.error.model_dump(exclude_none=True), "id": result.id}
        raise make_stream_error(payload, partial=partial, headers=headers, body=body)
    raise make_stream_error(
        None, partial=partial, headers=headers, body=body, native_finish_reason=failed.native_finish_reason
    )


def _loads(data: str | bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _chunk_failure(chunk: ChatStreamChunk, data: str) -> bool | None:
    """True if the chunk carries an error; False if it only has finish_reason "error"; None if fine."""
    if chunk.error is not None:
        return True
    for choice in chunk.choices:
        if choice.error is not None:
            return True
        if choice.finish_reason == "error":
            return False
    return None


def _chunk_error(chunk: ChatStreamChunk, data: str, acc: ChatAccumulator, headers: Any) -> StreamError:
    payload = _loads(data)
    if chunk.error is None:  # the error sits on a choice
        err = next(c.error for c in chunk.choices if c.error is not None)
        payload = {"error": err.model_dump(exclude_none=True), "id": chunk.id}
    return make_stream_error(payload, partial=acc, headers=headers, body=data)


def _bad_chunk(data: str, exc: ValidationError, acc: ChatAccumulator, headers: Any) -> OpenRouterError:
    """A chunk that failed validation: an odd error shape (StreamError) or garbage (validation error)."""
    payload = _loads(data)
    if isinstance(payload, dict) and "error" in payload:
        return make_stream_error(payload, partial=acc, headers=headers, body=data)
    return _validation_error("Malformed stream chunk", data, exc, acc, headers)


def _finish_error(acc: ChatAccumulator, headers: Any) -> StreamError:
    return make_stream_error(None, partial=acc, headers=headers, native_finish_reason=acc.native_finish_reason)


# ---------------------------------------------------------------- event streams


class EventStream:
    """The chunks of a streaming chat call: an iterator and a context manager.

    ``close()`` closes the HTTP response, which is how a generation is cancelled. Every yielded chunk is
    also folded into ``accumulator``. Failures raise typed errors whose ``partial`` is that accumulator:
    an error chunk -> StreamError (its content is folded in first), a dropped connection ->
    APIConnectionError / APITimeoutError, an unparseable payload -> ResponseValidationError.
    """

    def __init__(
        self,
        response: httpx.Response,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        preloaded: list[ChatStreamChunk] | None = None,
    ) -> None:
        self.response = response
        self.headers = safe_headers(response.headers)
        self.generation_id: str | None = response.headers.get("x-generation-id")
        from .accumulate import ChatAccumulator

        self.accumulator = ChatAccumulator()
        self._timeout = timeout
        self._preloaded = preloaded
        self._closed = False
        self._iter = self._chunks()

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> ChatStreamChunk:
        return next(self._iter)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading and close the connection (cancels the generation where the provider supports it)."""
        self._closed = True
        with contextlib.suppress(ValueError):  # closed from another thread mid-iteration: the response suffices
            self._iter.close()
        self.response.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            with contextlib.suppress(Exception):  # best effort, maybe at interpreter teardown
                self.response.close()

    def _chunks(self) -> Iterator[ChatStreamChunk]:
        acc, headers = self.accumulator, self.headers
        if self.generation_id is None and self._preloaded:
            self.generation_id = self._preloaded[0].id
        if self._preloaded is not None:
            for chunk in self._preloaded:
                acc.add(chunk)
                yield chunk
            return
        from .types import ChatStreamChunk

        validate = ChatStreamChunk.model_validate_json
        finish_error = False
        try:
            for data in iter_sse_data(self.response.iter_bytes()):
                if self._closed:  # closed from another thread
                    return
                try:
                    chunk = validate(data)
                except ValidationError as exc:
                    raise _bad_chunk(data, exc, acc, headers) from None
                acc.add(chunk)
                failure = _chunk_failure(chunk, data)
                if failure is not None:
                    if failure:
                        raise _chunk_error(chunk, data, acc, headers)
                    finish_error = True
                if self.generation_id is None:
                    self.generation_id = chunk.id
                yield chunk
        except (httpx.TransportError, httpx.StreamError) as exc:
            if self._closed:
                return
            raise _transport_error(exc, self._timeout, str(self.response.url), acc) from exc
        except Exception:
            if self._closed:  # closed from another thread mid-read: whatever the read raised is moot
                return
            raise
        finally:
            self.response.close()
        if finish_error and not self._closed:
            raise _finish_error(acc, headers)

    def __repr__(self) -> str:
        return f"EventStream(generation_id={self.generation_id!r}, chunks={self.accumulator.chunks})"


class EventStreamAsync:
    """Async twin of :class:`EventStream`: ``async with`` / ``async for`` / ``await close()``."""

    def __init__(
        self,
        response: httpx.Response,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        preloaded: list[ChatStreamChunk] | None = None,
    ) -> None:
        self.response = response
        self.headers = safe_headers(response.headers)
        self.generation_id: str | None = response.headers.get("x-generation-id")
        from .accumulate import ChatAccumulator

        self.accumulator = ChatAccumulator()
        self._timeout = timeout
        self._preloaded = preloaded
        self._closed = False
        self._iter = self._chunks()

    def __aiter__(self) -> EventStreamAsync:
        return self

    async def __anext__(self) -> ChatStreamChunk:
        return await self._iter.__anext__()

    async def __aenter__(self) -> EventStreamAsync:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop reading and close the connection (cancels the generation where the provider supports it)."""
        self._closed = True
        with contextlib.suppress(RuntimeError):  # closed from another task mid-iteration: the response suffices
            await self._iter.aclose()
        await self.response.aclose()

    aclose = close

    async def _chunks(self) -> AsyncIterator[ChatStreamChunk]:
        acc, headers = self.accumulator, self.headers
        if self._preloaded is not None:
            if self.generation_id is None and self._preloaded:
                self.generation_id = self._preloaded[0].id
            for chunk in self._preloaded:
                acc.add(chunk)
                yield chunk
            return
        from .types import ChatStreamChunk

        validate = ChatStreamChunk.model_validate_json
        finish_error = False
        try:
            async for data in aiter_sse_data(self.response.aiter_bytes()):
                if self._closed:  # closed from another task
                    return
                try:
                    chunk = validate(data)
                except ValidationError as exc:
                    raise _bad_chunk(data, exc, acc, headers) from None
                acc.add(chunk)
                failure = _chunk_failure(chunk, data)
                if failure is not None:
                    if failure:
                        raise _chunk_error(chunk, data, acc, headers)
                    finish_error = True
                if self.generation_id is None:
                    self.generation_id = chunk.id
                yield chunk
        except (httpx.TransportError, httpx.StreamError) as exc:
            if self._closed:
                return
            raise _transport_error(exc, self._timeout, str(self.response.url), acc) from exc
        except Exception:
            if self._closed:  # closed from another task mid-read: whatever the read raised is moot
                return
            raise
        finally:
            await self.response.aclose()
        if finish_error and not self._closed:
            raise _finish_error(acc, headers)

    def __repr__(self) -> str:
        return f"EventStreamAsync(generation_id={self.generation_id!r}, chunks={self.accumulator.chunks})"


# ---------------------------------------------------------------- the client


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

    def _headers(self, *, stream: bool, key: str | None, overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
        o = overrides or {}
        headers = {"User-Agent": USER_AGENT, "Accept": "text/event-stream" if stream else "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        referer = o.get("http_referer") or self.http_referer or os.environ.get("OPENROUTER_HTTP_REFERER")
        title = (
            o.get("x_open_router_title") or self.x_open_router_title or os.environ.get("OPENROUTER_X_OPEN_ROUTER_TITLE")
        )
        categories = (
            o.get("x_open_router_categories")
            or self.x_open_router_categories
            or os.environ.get("OPENROUTER_X_OPEN_ROUTER_CATEGORIES")
        )
        if referer:
            headers["HTTP-Referer"] = referer
        if title:
            headers["X-OpenRouter-Title"] = title
        if categories:
            headers["X-OpenRouter-Categories"] = categories if isinstance(categories, str) else ",".join(categories)
        meta = o.get("x_open_router_experimental_metadata") or o.get("x_open_router_metadata")
        if meta is True or (isinstance(meta, str) and meta.lower() == "enabled"):
            headers["X-OpenRouter-Metadata"] = "enabled"
        for name, value in (o.get("http_headers") or {}).items():
            headers[name] = value
        return headers

    def _request_timeout(self, timeout_ms: int | None, http: httpx.Client | httpx.AsyncClient | None) -> httpx.Timeout:
        """The timeout for one request: ours (or the supplied client's, unless it is httpx's 5 s
        default), with ``timeout_ms`` as the read timeout; no part is ever left unbounded."""
        base = self._timeout
        if base is None:
            own = http.timeout if http is not None and not self._owns(http) else None
            base = own if own is not None and own != _HTTPX_DEFAULT_TIMEOUT else DEFAULT_TIMEOUT
        ms = timeout_ms if timeout_ms is not None else self.timeout_ms
        return httpx.Timeout(
            connect=base.connect if base.connect is not None else DEFAULT_TIMEOUT.connect,
            read=ms / 1000 if ms is not None else (base.read if base.read is not None else DEFAULT_TIMEOUT.read),
            write=base.write if base.write is not None else DEFAULT_TIMEOUT.write,
            pool=base.pool if base.pool is not None else DEFAULT_TIMEOUT.pool,
        )

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
        method: str,
        path: str,
        *,
        stream: bool = False,
        body: Any = None,
        params: dict[str, str] | None = None,
        key_required: bool = True,
        overrides: Mapping[str, Any] | None = None,
        http: httpx.Client | httpx.AsyncClient | None = None,
    ) -> _Request:
        o = overrides or {}
        key = self._resolve_key(required=key_required)
        headers = self._headers(stream=stream, key=key, overrides=o)
        content = None
        if body is not None:
            content = _dumps(body)
            headers["Content-Type"] = "application/json"
        root = (o.get("server_url") or self.server_url).rstrip("/")
        return _Request(
            method=method,
            url=f"{root}{path}",
            headers=headers,
            timeout=self._request_timeout(o.get("timeout_ms"), http),
            retry=_retry_config(o.get("retries"), self.retry_config),
            content=content,
            params=params,
        )

    # ------------------------------------------------------------ sending with retries

    def _send(self, http: httpx.Client, req: _Request) -> httpx.Response:
        """Send with retries; returns a response with status < 400 whose body is still unread."""
        attempt, waited = 0, 0.0
        while True:
            logger.debug("%s %s (attempt %d)", req.method, req.url, attempt + 1)
            request = http.build_request(
                req.method, req.url, headers=req.headers, content=req.content, params=req.params, timeout=req.timeout
            )
            cause: Exception | None = None
            try:
                response = http.send(request, stream=True)
            except httpx.TransportError as exc:
                cause, err = exc, _transport_error(exc, req.timeout, req.url)
                retryable = req.retry.retry_connection_errors and isinstance(exc, _RETRYABLE_TRANSPORT)
            else:
                if response.status_code < 400:
                    return response
                err = self._status_error(response, _read_quietly(response))
                retryable = _status_retryable(err, req.retry)
            delay = _retry_delay(req.retry, attempt, waited, err, self._random()) if retryable else None
            err.attempts = attempt + 1
            if delay is None:
                _raise(err, cause)
            _log_retry(err, delay, attempt)
            self._sleep(delay)
            waited += delay
            attempt += 1

    async def _send_async(self, http: httpx.AsyncClient, req: _Request) -> httpx.Response:
        """Async twin of :meth:`_send`."""
        attempt, waited = 0, 0.0
        while True:
            logger.debug("%s %s (attempt %d)", req.method, req.url, attempt + 1)
            request = http.build_request(
                req.method, req.url, headers=req.headers, content=req.content, params=req.params, timeout=req.timeout
            )
            cause: Exception | None = None
            try:
                response = await http.send(request, stream=True)
            except httpx.TransportError as exc:
                cause, err = exc, _transport_error(exc, req.timeout, req.url)
                retryable = req.retry.retry_connection_errors and isinstance(exc, _RETRYABLE_TRANSPORT)
            else:
                if response.status_code < 400:
                    return response
                err = self._status_error(response, await _aread_quietly(response))
                retryable = _status_retryable(err, req.retry)
            delay = _retry_delay(req.retry, attempt, waited, err, self._random()) if retryable else None
            err.attempts = attempt + 1
            if delay is None:
                _raise(err, cause)
            _log_retry(err, delay, attempt)
            await self._asleep(delay)
            waited += delay
            attempt += 1

    async def _asleep(self, seconds: float) -> None:
        if self._async_sleep is not None:
            await self._async_sleep(seconds)
        else:
            import asyncio

            await asyncio.sleep(seconds)

    def _status_error(self, response: httpx.Response, body: bytes) -> OpenRouterError:
        return make_status_error(response.status_code, body, response.headers, now=self._clock())

    # ------------------------------------------------------------ chat (used by Chat)

    def _chat(self, params: dict[str, Any]) -> ChatResult | EventStream:
        http = self._sync_http()
        stream = bool(params.get("stream"))
        req = self._prepare(
            "POST", "/chat/completions", stream=stream, body=build_request_body(**params), overrides=params, http=http
        )
        response = self._send(http, req)
        if stream or _is_event_stream(response):
            if not _is_event_stream(response, streaming=True):  # a JSON answer to a streaming request
                result = _parse_result(_read_body(response, req), response.headers)
                return EventStream(response, timeout=req.timeout, preloaded=[_as_chunk(result)])
            events = EventStream(response, timeout=req.timeout)
            if stream:
                return events
            for _ in events:  # an SSE answer to a non-streaming request: fold it
                pass
            return events.accumulator.result()
        return _parse_result(_read_body(response, req), response.headers)

    async def _chat_async(self, params: dict[str, Any]) -> ChatResult | EventStreamAsync:
        http = self._async_http()
        stream = bool(params.get("stream"))
        req = self._prepare(
            "POST", "/chat/completions", stream=stream, body=build_request_body(**params), overrides=params, http=http
        )
        response = await self._send_async(http, req)
        if stream or _is_event_stream(response):
            if not _is_event_stream(response, streaming=True):
                result = _parse_result(await _aread_body(response, req), response.headers)
                return EventStreamAsync(response, timeout=req.timeout, preloaded=[_as_chunk(result)])
            events = EventStreamAsync(response, timeout=req.timeout)
            if stream:
                return events
            async for _ in events:
                pass
            return events.accumulator.result()
        return _parse_result(await _aread_body(response, req), response.headers)

    # ------------------------------------------------------------ other endpoints

    def models(self, *, output_modalities: str | None = "all", refresh: bool = False) -> list[ModelInfo]:
        """``GET /models`` (all output modalities by default, so image models are listed), cached."""
        cache_key = (self.server_url, output_modalities)
        if not refresh and cache_key in self._models_cache:
            return list(self._models_cache[cache_key])
        http = self._sync_http()
        req = self._models_request(output_modalities, http)
        response = self._send(http, req)
        models = _parse_models(_read_body(response, req), response.headers)
        self._models_cache[cache_key] = models
        return list(models)

    async def models_async(self, *, output_modalities: str | None = "all", refresh: bool = False) -> list[ModelInfo]:
        """Async twin of :meth:`models` (same cache)."""
        cache_key = (self.server_url, output_modalities)
        if not refresh and cache_key in self._models_cache:
            return list(self._models_cache[cache_key])
        http = self._async_http()
        req = self._models_request(output_modalities, http)
        response = await self._send_async(http, req)
        models = _parse_models(await _aread_body(response, req), response.headers)
        self._models_cache[cache_key] = models
        return list(models)

    def _models_request(self, output_modalities: str | None, http: httpx.Client | httpx.AsyncClient) -> _Request:
        params = {"output_modalities": output_modalities} if output_modalities else None
        return self._prepare("GET", "/models", params=params, key_required=False, http=http)

    def key(self) -> KeyInfo:
        """``GET /key``: limits and usage of the key in use (for a credits display)."""
        http = self._sync_http()
        req = self._prepare("GET", "/key", http=http)
        response = self._send(http, req)
        return _parse_key(_read_body(response, req), response.headers)

    async def key_async(self) -> KeyInfo:
        """Async twin of :meth:`key`."""
        http = self._async_http()
        req = self._prepare("GET", "/key", http=http)
        response = await self._send_async(http, req)
        return _parse_key(await _aread_body(response, req), response.headers)

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
        http = self._sync_http()
        req = self._prepare(method, path, body=body, params=params, overrides={"retries": retries}, http=http)
        response = self._send(http, req)
        return _read_body(response, req), response.headers

    async def _call_async(self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
                          retries: RetryConfig | None = None) -> tuple[bytes, httpx.Headers]:
        """Async twin of :meth:`_call`."""
        http = self._async_http()
        req = self._prepare(method, path, body=body, params=params, overrides={"retries": retries}, http=http)
        response = await self._send_async(http, req)
        return await _aread_body(response, req), response.headers

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
    """``client.chat``: ``send`` and ``send_async``, keyword for keyword like the official SDK."""

    def __init__(self, sdk: OpenRouter) -> None:
        self._sdk = sdk

    build_request_body = staticmethod(build_request_body)

    def send(
        self,
        *,
        messages: Sequence[Mapping[str, Any] | BaseModel],
        model: str | None = None,
        models: list[str] | None = None,
        provider: Mapping[str, Any] | BaseModel | None = None,
        plugins: list[Mapping[str, Any]] | None = None,
        route: str | None = None,
        user: str | None = None,
        session_id: str | None = None,
        frequency_penalty: float | None = None,
        logit_bias: Mapping[str, float] | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        max_completion_tokens: int | None = None,
        max_tokens: int | None = None,
        metadata: Mapping[str, str] | None = None,
        presence_penalty: float | None = None,
        reasoning: Mapping[str, Any] | BaseModel | None = None,
        response_format: Mapping[str, Any] | BaseModel | None = None,
        seed: int | None = None,
        stop: str | list[str] | None = None,
        stream: bool | None = False,
        stream_options: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        tool_choice: Any = None,
        tools: list[Mapping[str, Any]] | None = None,
        top_p: float | None = None,
        debug: Mapping[str, Any] | None = None,
        image_config: Mapping[str, Any] | None = None,
        modalities: list[str] | None = None,
        cache_control: Mapping[str, Any] | BaseModel | None = None,
        parallel_tool_calls: bool | None = None,
        service_tier: str | None = None,
        stop_server_tools_when: Any = None,
        trace: Mapping[str, Any] | None = None,
        x_open_router_experimental_metadata: str | bool | None = None,
        top_k: int | None = None,
        repetition_penalty: float | None = None,
        min_p: float | None = None,
        top_a: float | None = None,
        verbosity: str | None = None,
        prediction: Mapping[str, Any] | None = None,
        retries: RetryConfig | int | None = None,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
        http_referer: str | None = None,
        x_open_router_title: str | None = None,
        x_open_router_categories: str | None = None,
        x_open_router_metadata: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ChatResult | EventStream:
        """Create a chat completion: a :class:`ChatResult`, or with ``stream=True`` an :class:`EventStream`.

        Every body field OpenRouter accepts is a keyword (see ``build_request_body``); ``extra_body`` adds
        any other. ``retries``/``server_url``/``timeout_ms``/``http_headers`` and the attribution headers
        override the client's settings for this call.
        """
        params = dict(locals())
        del params["self"]
        return self._sdk._chat(params)

    async def send_async(
        self,
        *,
        messages: Sequence[Mapping[str, Any] | BaseModel],
        model: str | None = None,
        models: list[str] | None = None,
        provider: Mapping[str, Any] | BaseModel | None = None,
        plugins: list[Mapping[str, Any]] | None = None,
        route: str | None = None,
        user: str | None = None,
        session_id: str | None = None,
        frequency_penalty: float | None = None,
        logit_bias: Mapping[str, float] | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        max_completion_tokens: int | None = None,
        max_tokens: int | None = None,
        metadata: Mapping[str, str] | None = None,
        presence_penalty: float | None = None,
        reasoning: Mapping[str, Any] | BaseModel | None = None,
        response_format: Mapping[str, Any] | BaseModel | None = None,
        seed: int | None = None,
        stop: str | list[str] | None = None,
        stream: bool | None = False,
        stream_options: Mapping[str, Any] | None = None,
        temperature: float | None = None,
        tool_choice: Any = None,
        tools: list[Mapping[str, Any]] | None = None,
        top_p: float | None = None,
        debug: Mapping[str, Any] | None = None,
        image_config: Mapping[str, Any] | None = None,
        modalities: list[str] | None = None,
        cache_control: Mapping[str, Any] | BaseModel | None = None,
        parallel_tool_calls: bool | None = None,
        service_tier: str | None = None,
        stop_server_tools_when: Any = None,
        trace: Mapping[str, Any] | None = None,
        x_open_router_experimental_metadata: str | bool | None = None,
        top_k: int | None = None,
        repetition_penalty: float | None = None,
        min_p: float | None = None,
        top_a: float | None = None,
        verbosity: str | None = None,
        prediction: Mapping[str, Any] | None = None,
        retries: RetryConfig | int | None = None,
        server_url: str | None = None,
        timeout_ms: int | None = None,
        http_headers: Mapping[str, str] | None = None,
        http_referer: str | None = None,
        x_open_router_title: str | None = None,
        x_open_router_categories: str | None = None,
        x_open_router_metadata: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> ChatResult | EventStreamAsync:
        """Awaitable twin of :meth:`send`; streams are :class:`EventStreamAsync`."""
        params = dict(locals())
        del params["self"]
        return await self._sdk._chat_async(params)

    def __repr__(self) -> str:
        return f"Chat({self._sdk!r})"


# ---------------------------------------------------------------- small helpers


def _raise(err: OpenRouterError, cause: Exception | None) -> NoReturn:
    if cause is not None:
        raise err from cause
    raise err


def _log_retry(err: OpenRouterError, delay: float, attempt: int) -> None:
    what = f"HTTP {err.status_code}" if err.status_code else type(err).__name__
    logger.info("%s; retry %d in %.2f s", what, attempt + 1, delay)


def _read_quietly(response: httpx.Response) -> bytes:
    """An error response's body (best effort), and the connection released."""
    try:
        return response.read()
    except httpx.HTTPError:
        return b""
    finally:
        response.close()


async def _aread_quietly(response: httpx.Response) -> bytes:
    try:
        return await response.aread()
    except httpx.HTTPError:
        return b""
    finally:
        await response.aclose()


def _read_body(response: httpx.Response, req: _Request) -> bytes:
    """A success body; a failure here is not retried (the server may already have billed the answer)."""
    try:
        return response.read()
    except httpx.TransportError as exc:
        raise _transport_error(exc, req.timeout, req.url) from exc
    finally:
        response.close()


async def _aread_body(response: httpx.Response, req: _Request) -> bytes:
    try:
        return await response.aread()
    except httpx.TransportError as exc:
        raise _transport_error(exc, req.timeout, req.url) from exc
    finally:
        await response.aclose()


def _unwrap(body: bytes, headers: httpx.Headers, what: str) -> Any:
    payload = _loads(body)
    if not isinstance(payload, dict):
        err = ResponseValidationError(f"{what}: the response is not a JSON object", body=body, headers=headers)
        raise err
    if "error" in payload and "data" not in payload:
        raise make_stream_error(payload, headers=headers, body=body)
    return payload.get("data", payload)


def _parse_models(body: bytes, headers: httpx.Headers) -> list[ModelInfo]:
    from .types import ModelInfo

    data = _unwrap(body, headers, "Could not parse the model list")
    if not isinstance(data, list):
        raise ResponseValidationError("Could not parse the model list: 'data' is not a list", body=body)
    models = []
    for item in data:
        try:
            models.append(ModelInfo.model_validate(item))
        except ValidationError:
            logger.debug("skipping a malformed model entry")
    return models


def _parse_key(body: bytes, headers: httpx.Headers) -> KeyInfo:
    from .types import KeyInfo

    data = _unwrap(body, headers, "Could not parse the key info")
    try:
        return KeyInfo.model_validate(data)
    except ValidationError as exc:
        raise _validation_error("Could not parse the key info", body, exc, None, headers) from None


def _parse_generation(body: bytes, headers: httpx.Headers) -> GenerationInfo:
    from .types import GenerationInfo

    data = _unwrap(body, headers, "Could not parse the generation")
    try:
        return GenerationInfo.model_validate(data)
    except ValidationError as exc:
        raise _validation_error("Could not parse the generation", body, exc, None, headers) from None
