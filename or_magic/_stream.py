"""Event streams: the chunks of a streaming chat call, folded into an accumulator as they are read.

The sync and async streams share everything but the reading: validating a payload, folding it, turning an
error chunk or a cut connection into a typed error (:class:`_StreamCore`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import httpx
from pydantic_core import ValidationError

from ._response import bad_chunk, chunk_error, chunk_failure, finish_error
from ._transport import DEFAULT_TIMEOUT, transport_error
from .errors import safe_headers
from .sse import aiter_sse_data, iter_sse_data

if TYPE_CHECKING:  # pragma: no cover
    from .types import ChatStreamChunk


class _StreamCore:
    """State and per-chunk logic of an event stream, whatever reads its bytes."""

    def __init__(
        self,
        response: httpx.Response,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        preloaded: list[ChatStreamChunk] | None = None,
    ) -> None:
        from .accumulate import ChatAccumulator
        from .types import ChatStreamChunk

        self.response = response
        self.headers = safe_headers(response.headers)
        self.generation_id: str | None = response.headers.get("x-generation-id")
        self.accumulator = ChatAccumulator()
        self._validate = ChatStreamChunk.model_validate_json
        self._timeout = timeout
        self._preloaded = preloaded
        self._closed = False
        self._finish_error = False
        self._iter = self._chunks()

    def _chunks(self) -> Iterator[ChatStreamChunk] | AsyncIterator[ChatStreamChunk]:
        raise NotImplementedError

    def _replay(self) -> Iterator[ChatStreamChunk]:
        """The chunks of an answer that came whole (JSON to a streaming request)."""
        chunks = self._preloaded or []
        if self.generation_id is None and chunks:
            self.generation_id = chunks[0].id
        for chunk in chunks:
            self.accumulator.add(chunk)
            yield chunk

    def _take(self, data: str) -> ChatStreamChunk:
        """One SSE payload: validated, folded in, raised if it carries an error."""
        acc = self.accumulator
        try:
            chunk = self._validate(data)
        except ValidationError as exc:
            raise bad_chunk(data, exc, acc, self.headers) from None
        acc.add(chunk)
        failure = chunk_failure(chunk, data)
        if failure is not None:
            if failure:
                raise chunk_error(chunk, data, acc, self.headers)
            self._finish_error = True
        if self.generation_id is None:
            self.generation_id = chunk.id
        return chunk

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Translate a failed read into ours; after ``close()`` (another thread or task) any failure is moot."""
        try:
            yield
        except (httpx.TransportError, httpx.StreamError) as exc:
            if not self._closed:
                raise transport_error(exc, self._timeout, str(self.response.url), self.accumulator) from exc
        except Exception:
            if not self._closed:
                raise

    def _check_end(self) -> None:
        """A stream that ended on ``finish_reason: "error"`` (with no error object) still failed."""
        if self._finish_error and not self._closed:
            raise finish_error(self.accumulator, self.headers)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(generation_id={self.generation_id!r}, chunks={self.accumulator.chunks})"


class EventStream(_StreamCore):
    """The chunks of a streaming chat call: an iterator and a context manager.

    ``close()`` closes the HTTP response, which is how a generation is cancelled. Every yielded chunk is
    also folded into ``accumulator``. Failures raise typed errors whose ``partial`` is that accumulator:
    an error chunk -> StreamError (its content is folded in first), a dropped connection ->
    APIConnectionError / APITimeoutError, an unparseable payload -> ResponseValidationError.
    """

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
        if self._preloaded is not None:
            yield from self._replay()
            return
        try:
            with self._reading():
                for data in iter_sse_data(self.response.iter_bytes()):
                    if self._closed:  # closed from another thread
                        return
                    yield self._take(data)
        finally:
            self.response.close()
        self._check_end()


class EventStreamAsync(_StreamCore):
    """Async twin of :class:`EventStream`: ``async with`` / ``async for`` / ``await close()``."""

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
        if self._preloaded is not None:
            for chunk in self._replay():
                yield chunk
            return
        try:
            with self._reading():
                async for data in aiter_sse_data(self.response.aiter_bytes()):
                    if self._closed:  # closed from another task
                        return
                    yield self._take(data)
        finally:
            await self.response.aclose()
        self._check_end()
