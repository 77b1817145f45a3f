"""What a request does, written once for sync and async: generators that yield I/O operations.

A flow yields ``(operation, *args)`` tuples (``"send"``, ``"read"``, ``"sleep"``, ``"now"``, ``"random"``,
``"events"``, ``"drain"``); a driver in :mod:`._io` performs each with blocking or awaited I/O and sends the
result back in, or throws the exception in. Retries, error mapping and parsing therefore exist once; only
the reading, sending and sleeping differ between ``send`` and ``send_async``.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import httpx

from ._response import parse_result
from ._retry import RETRYABLE_TRANSPORT, retry_delay, status_retryable
from ._transport import Request, transport_error
from .errors import OpenRouterError, make_status_error

if TYPE_CHECKING:  # pragma: no cover
    from .types import ChatResult

T = TypeVar("T")
Flow = Generator[tuple[Any, ...], Any, T]

logger = logging.getLogger("or_magic")


def send(req: Request) -> Flow[httpx.Response]:
    """Send with retries; returns a response with status < 400 whose body is still unread."""
    attempt, waited = 0, 0.0
    while True:
        logger.debug("%s %s (attempt %d)", req.method, req.url, attempt + 1)
        cause: Exception | None = None
        try:
            response = yield ("send", req)
        except httpx.TransportError as exc:
            cause, err = exc, transport_error(exc, req.timeout, req.url)
            retryable = req.retry.retry_connection_errors and isinstance(exc, RETRYABLE_TRANSPORT)
        else:
            if response.status_code < 400:
                return response
            body = yield from read_quietly(response)
            err = make_status_error(response.status_code, body, response.headers, now=(yield ("now",)))
            retryable = status_retryable(err, req.retry)
        delay = retry_delay(req.retry, attempt, waited, err, (yield ("random",))) if retryable else None
        err.attempts = attempt + 1
        if delay is None:
            _raise(err, cause)
        what = f"HTTP {err.status_code}" if err.status_code else type(err).__name__
        logger.info("%s; retry %d in %.2f s", what, attempt + 1, delay)
        yield ("sleep", delay)
        waited += delay
        attempt += 1


def read_quietly(response: httpx.Response) -> Flow[bytes]:
    """An error response's body (best effort); the driver releases the connection either way."""
    try:
        return (yield ("read", response))
    except httpx.HTTPError:
        return b""


def read_body(response: httpx.Response, req: Request) -> Flow[bytes]:
    """A success body; a failure here is not retried (the server may already have billed the answer)."""
    try:
        return (yield ("read", response))
    except httpx.TransportError as exc:
        raise transport_error(exc, req.timeout, req.url) from exc


def fetch(req: Request) -> Flow[tuple[bytes, httpx.Headers]]:
    """One JSON request with retries: the body and headers of the answer."""
    response = yield from send(req)
    return (yield from read_body(response, req)), response.headers


def chat(req: Request, stream: bool) -> Flow[Any]:
    """A chat completion: a ChatResult, or (``stream``) the driver's event stream.

    The parser follows the response, like the SDK: a JSON answer to a streaming request becomes a
    one-chunk stream, an SSE answer to a non-streaming request is folded into a result.
    """
    response = yield from send(req)
    if not (stream or is_event_stream(response)):
        return parse_result((yield from read_body(response, req)), response.headers)
    if not is_event_stream(response, streaming=True):
        result = parse_result((yield from read_body(response, req)), response.headers)
        return (yield ("events", response, req.timeout, [_as_chunk(result)]))
    events = yield ("events", response, req.timeout, None)
    return events if stream else (yield ("drain", events))


def is_event_stream(response: httpx.Response, streaming: bool = False) -> bool:
    """SSE if the response says so, or if a streaming request got anything but JSON (a proxy may drop
    the content type)."""
    ctype = response.headers.get("content-type", "")
    return "event-stream" in ctype or (streaming and "json" not in ctype)


def _as_chunk(result: ChatResult) -> Any:
    from .accumulate import result_to_chunk

    return result_to_chunk(result)


def _raise(err: OpenRouterError, cause: Exception | None) -> NoReturn:
    if cause is not None:
        raise err from cause
    raise err
