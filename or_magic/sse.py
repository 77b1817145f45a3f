"""Incremental server-sent-events decoding: bytes in, ``data`` payload strings out.

OpenRouter streams one ``data: <json>`` line per event, interleaved with ``: OPENROUTER PROCESSING``
keep-alive comments, and ends with ``data: [DONE]`` (which may be missing after an error). The decoder
below is a small state machine that also copes with what the SSE spec allows but OpenRouter rarely sends:
multi-line ``data`` (joined with ``\\n``), CRLF / CR / LF line endings (even a CRLF split across network
chunks), a UTF-8 byte-order mark, ``event:``/``id:``/``retry:`` fields (ignored), and events without data
(skipped). It works on bytes and decodes only complete payloads, so a UTF-8 sequence split across network
chunks is never seen half-decoded. It is pure (no I/O), which is what makes it easy to test byte by byte.

It sits on the per-chunk path, so the common case (a network chunk holding whole ``data:`` lines ended by
``\\n``) costs one ``split`` and a few slice operations per event.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

__all__ = ["SSEDecoder", "iter_sse_data", "aiter_sse_data", "DONE"]

DONE = "[DONE]"
_BOM = b"\xef\xbb\xbf"


class SSEDecoder:
    """Feed it bytes as they arrive; it returns the ``data`` payloads of the events completed so far.

    ``done`` turns true once ``[DONE]`` was seen; everything after it is ignored. Call :meth:`flush` at
    EOF to get an event that was not followed by a blank line.
    """

    __slots__ = ("_buf", "_data", "_skip_lf", "_at_start", "done")

    def __init__(self) -> None:
        self._buf = b""  # bytes of an incomplete line
        self._data: list[bytes] = []  # data lines of the event being built
        self._skip_lf = False  # the previous chunk ended with CR: a leading LF belongs to it
        self._at_start = True  # a BOM may still be pending
        self.done = False

    def feed(self, chunk: bytes) -> list[str]:
        """Consume ``chunk`` and return the payloads of the events it completed (may be empty)."""
        if self.done or not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buf = self._buf + chunk if self._buf else chunk
        if self._at_start:
            if len(buf) < 3 and _BOM.startswith(buf):
                self._buf = buf  # could still be the start of a BOM
                return []
            self._at_start = False
            if buf.startswith(_BOM):
                buf = buf[3:]
        if b"\r" in buf:
            if buf.endswith(b"\r"):
                self._skip_lf = True  # its LF, if any, comes with the next chunk
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        return self._lines(lines)

    def flush(self) -> list[str]:
        """End of input: complete the pending line and event, as if a blank line had arrived."""
        if self.done:
            return []
        lines = [self._buf] if self._buf else []
        self._buf = b""
        if self._at_start and lines:
            self._at_start = False
            if lines[0].startswith(_BOM):
                lines[0] = lines[0][3:]
        lines.append(b"")
        return self._lines(lines)

    def _lines(self, lines: list[bytes]) -> list[str]:
        """Process complete lines; a blank line dispatches the event built so far."""
        out: list[str] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    payload = (data[0] if len(data) == 1 else b"\n".join(data)).decode("utf-8", "replace")
                    data.clear()
                    if payload == DONE:
                        self.done = True
                        return out
                    if payload:
                        out.append(payload)
            elif line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line == b"data":
                data.append(b"")
            # ":" comments and other fields (event, id, retry, unknown) carry nothing we use
        return out


def iter_sse_data(byte_iter: Iterable[bytes]) -> Iterator[str]:
    """Yield the ``data`` payloads of an SSE byte stream; stops at ``[DONE]`` or EOF."""
    decoder = SSEDecoder()
    for chunk in byte_iter:
        yield from decoder.feed(chunk)
        if decoder.done:
            return
    yield from decoder.flush()


async def aiter_sse_data(byte_iter: AsyncIterable[bytes]) -> AsyncIterator[str]:
    """Async twin of :func:`iter_sse_data`."""
    decoder = SSEDecoder()
    async for chunk in byte_iter:
        for payload in decoder.feed(chunk):
            yield payload
        if decoder.done:
            return
    for payload in decoder.flush():
        yield payload
