"""The two drivers of a :mod:`._flows` flow: blocking I/O for ``send``, awaited I/O for ``send_async``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx

from ._flows import Flow, T
from ._stream import EventStream, EventStreamAsync
from ._transport import Request

if TYPE_CHECKING:  # pragma: no cover
    from .types import ChatResult, ChatStreamChunk


def _resume(flow: Flow[Any], value: Any, error: Exception | None) -> tuple[bool, Any]:
    """(False, the flow's next operation) or (True, its result)."""
    try:
        return False, (flow.throw(error) if error is not None else flow.send(value))
    except StopIteration as stop:
        return True, stop.value


def _perform(io: Any, step: tuple[Any, ...]) -> tuple[Any, Exception | None]:
    try:
        return getattr(io, step[0])(*step[1:]), None
    except Exception as exc:
        return None, exc


async def _aperform(io: Any, step: tuple[Any, ...]) -> tuple[Any, Exception | None]:
    try:
        value = getattr(io, step[0])(*step[1:])
        return (await value if inspect.isawaitable(value) else value), None
    except Exception as exc:
        return None, exc


def drive(flow: Flow[T], io: SyncIO) -> T:
    """Run ``flow`` to its result with blocking I/O."""
    done, step = _resume(flow, None, None)
    while not done:
        done, step = _resume(flow, *_perform(io, step))
    return step


async def adrive(flow: Flow[T], io: AsyncIO) -> T:
    """Run ``flow`` to its result with awaited I/O."""
    done, step = _resume(flow, None, None)
    while not done:
        done, step = _resume(flow, *await _aperform(io, step))
    return step


class _Chance:
    """The clock and the dice a flow asks for (injectable, so tests control retries and Retry-After)."""

    def __init__(self, clock: Callable[[], float], rand: Callable[[], float]) -> None:
        self.now, self.random = clock, rand


class SyncIO(_Chance):
    """Blocking operations on an ``httpx.Client``."""

    def __init__(self, http: httpx.Client, sleep: Callable[[float], None], clock: Callable[[], float],
                 rand: Callable[[], float]) -> None:
        super().__init__(clock, rand)
        self.http, self.sleep = http, sleep

    def send(self, req: Request) -> httpx.Response:
        return self.http.send(_build(self.http, req), stream=True)

    def read(self, response: httpx.Response) -> bytes:
        try:
            return response.read()
        finally:
            response.close()

    def events(self, response: httpx.Response, timeout: httpx.Timeout,
               preloaded: list[ChatStreamChunk] | None) -> EventStream:
        return EventStream(response, timeout=timeout, preloaded=preloaded)

    def drain(self, events: EventStream) -> ChatResult:
        for _ in events:
            pass
        return events.accumulator.result()


class AsyncIO(_Chance):
    """Awaited operations on an ``httpx.AsyncClient``."""

    def __init__(self, http: httpx.AsyncClient, sleep: Callable[[float], Awaitable[None]],
                 clock: Callable[[], float], rand: Callable[[], float]) -> None:
        super().__init__(clock, rand)
        self.http, self.sleep = http, sleep

    async def send(self, req: Request) -> httpx.Response:
        return await self.http.send(_build(self.http, req), stream=True)

    async def read(self, response: httpx.Response) -> bytes:
        try:
            return await response.aread()
        finally:
            await response.aclose()

    def events(self, response: httpx.Response, timeout: httpx.Timeout,
               preloaded: list[ChatStreamChunk] | None) -> EventStreamAsync:
        return EventStreamAsync(response, timeout=timeout, preloaded=preloaded)

    async def drain(self, events: EventStreamAsync) -> ChatResult:
        async for _ in events:
            pass
        return events.accumulator.result()


@functools.lru_cache(maxsize=64)
def _parsed(url: str) -> httpx.URL:
    """A URL parsed once: a map sends thousands of requests to one address (``httpx.URL`` is immutable)."""
    return httpx.URL(url)


def _build(http: httpx.Client | httpx.AsyncClient, req: Request) -> httpx.Request:
    """The client's request (its headers, base URL and cookies merged in), minus re-parsing a known URL."""
    return http.build_request(req.method, _parsed(req.url), headers=req.headers, content=req.content,
                              params=req.params, extensions={"timeout": req.timeout.as_dict()})
