"""One HTTP request as data: its URL, headers and timeouts, and httpx failures translated into ours."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from . import defaults
from ._retry import RetryConfig
from ._version import __version__
from .errors import APIConnectionError, APITimeoutError

if TYPE_CHECKING:  # pragma: no cover
    from .accumulate import ChatAccumulator

DEFAULT_SERVER_URL = "https://openrouter.ai/api/v1"
DEFAULT_TIMEOUT = httpx.Timeout(connect=defaults.CONNECT_TIMEOUT, read=defaults.READ_TIMEOUT, write=30.0,
                                pool=10.0)
USER_AGENT = f"or_magic/{__version__}"
HTTPX_DEFAULT_TIMEOUT = httpx.Timeout(5.0)


@dataclass
class Request:
    """Everything needed to send (and resend) one request; the retry policy travels with it."""

    method: str
    url: str
    headers: dict[str, str]
    timeout: httpx.Timeout
    retry: RetryConfig
    content: bytes | None = None
    params: dict[str, str] | None = None


@dataclass(frozen=True)
class Attribution:
    """The app-attribution headers a client was built with (a call's keywords win over them)."""

    http_referer: str | None = None
    x_open_router_title: str | None = None
    x_open_router_categories: str | Sequence[str] | None = None


def _first(overrides: Mapping[str, Any], mine: Attribution, name: str, env: str) -> Any:
    return overrides.get(name) or getattr(mine, name) or os.environ.get(env)


def request_headers(
    *, stream: bool, key: str | None, mine: Attribution, overrides: Mapping[str, Any]
) -> dict[str, str]:
    """The headers of one request: auth, attribution (call > client > environment), metadata, extras."""
    headers = {"User-Agent": USER_AGENT, "Accept": "text/event-stream" if stream else "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    referer = _first(overrides, mine, "http_referer", "OPENROUTER_HTTP_REFERER")
    title = _first(overrides, mine, "x_open_router_title", "OPENROUTER_X_OPEN_ROUTER_TITLE")
    categories = _first(overrides, mine, "x_open_router_categories", "OPENROUTER_X_OPEN_ROUTER_CATEGORIES")
    if referer:
        headers["HTTP-Referer"] = referer
    if title:
        headers["X-OpenRouter-Title"] = title
    if categories:
        headers["X-OpenRouter-Categories"] = categories if isinstance(categories, str) else ",".join(categories)
    meta = overrides.get("x_open_router_experimental_metadata") or overrides.get("x_open_router_metadata")
    if meta is True or (isinstance(meta, str) and meta.lower() == "enabled"):
        headers["X-OpenRouter-Metadata"] = "enabled"
    headers.update(overrides.get("http_headers") or {})
    return headers


def request_timeout(
    base: httpx.Timeout | None, timeout_ms: int | None, supplied: httpx.Timeout | None
) -> httpx.Timeout:
    """The timeout for one request: ``base`` (else a supplied client's, unless it is httpx's 5 s default),
    with ``timeout_ms`` as the read timeout; no part is ever left unbounded."""
    if base is None:
        base = supplied if supplied is not None and supplied != HTTPX_DEFAULT_TIMEOUT else DEFAULT_TIMEOUT
    parts = {name: getattr(base, name) for name in ("connect", "read", "write", "pool")}
    if timeout_ms is not None:
        parts["read"] = timeout_ms / 1000
    return httpx.Timeout(**{name: v if v is not None else getattr(DEFAULT_TIMEOUT, name) for name, v in parts.items()})


def transport_error(
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
            return APITimeoutError(f"{what} within {value:g} s ({which} timeout)", partial=partial)
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"Timed out talking to {host}: {exc}", partial=partial)
    if isinstance(exc, httpx.ConnectError):
        return APIConnectionError(f"Could not connect to {host}: {exc}", partial=partial)
    if partial is not None and partial.chunks:
        return APIConnectionError(f"The connection to {host} dropped mid-stream: {exc}", partial=partial)
    return APIConnectionError(f"Connection to {host} failed: {exc or type(exc).__name__}", partial=partial)
