"""One scripted plan written as an SSE body in OpenRouter's chunk format, with chunked transfer encoding."""

from __future__ import annotations

import json
import time
from typing import Any, BinaryIO, Protocol

from .._sandbox_models import PROVIDER, Delta, Event, Plan, Raw
from .pacing import Gone, Pacer

KEEPALIVE_COMMENT = b": OPENROUTER PROCESSING\n\n"
_FLUSH_AT = 64 * 1024  # back-to-back events are coalesced into HTTP chunks up to this size
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_NULL_TAIL = b',"finish_reason":null,"native_finish_reason":null}]}\n\n'


def dumps(value: Any) -> bytes:
    """Compact JSON bytes, non-ASCII kept as is (as the real API sends it)."""
    return _ENCODER.encode(value).encode()


class Line(Protocol):
    """What a stream needs of the request handler: send headers, write bytes, drop the connection."""

    wfile: BinaryIO

    def send_response(self, code: int) -> None: ...
    def send_header(self, keyword: str, value: str) -> None: ...
    def end_headers(self) -> None: ...
    def drop(self) -> None: ...


class Stream:
    """Writes one plan as an SSE body with chunked transfer encoding, flushing before every pause."""

    def __init__(self, line: Line, pacer: Pacer, gen_id: str, created: int, model: str) -> None:
        self.line = line
        self.envelope = {
            "id": gen_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "provider": PROVIDER,
        }
        self.delta_head = b"data: " + dumps(self.envelope)[:-1] + b',"choices":[{"index":0,"delta":'
        self.buffer: list[bytes] = []
        self.size = 0
        self.pacer = pacer
        pacer.keepalive = self._keepalive

    def run(self, plan: Plan, usage_: dict[str, Any]) -> bool:
        """Stream the plan; False if the line was cut (by the script, the client or the server stopping)."""
        self._headers()
        try:
            self._keepalive()
            for step in plan.steps:
                self._step(step)
            if plan.send_usage:
                self._add(b"data: " + dumps(self._usage_chunk(usage_)) + b"\n\n")
            if plan.done:
                self._add(b"data: [DONE]\n\n")
            self._flush()
            self.line.wfile.write(b"0\r\n\r\n")
        except (Gone, OSError):
            self.line.drop()
            return False
        return True

    def _headers(self) -> None:
        self.line.send_response(200)
        for name, value in (
            ("Content-Type", "text/event-stream"),
            ("Cache-Control", "no-cache"),
            ("Transfer-Encoding", "chunked"),
            ("X-Generation-Id", self.envelope["id"]),
            ("Access-Control-Allow-Origin", "*"),
        ):
            self.line.send_header(name, value)
        self.line.end_headers()

    def _step(self, step: object) -> None:
        if isinstance(step, Delta):
            self._add(self._delta(step))
        elif isinstance(step, Event):
            body = {**self.envelope, **step.body} if step.envelope else step.body
            self._add(b"data: " + dumps(body) + b"\n\n")
        elif isinstance(step, Raw):
            self._add(b"data: " + step.data.encode() + b"\n\n")
        else:
            self._flush()
            self.pacer.pause(step)

    def _delta(self, step: Delta) -> bytes:
        """One chunk; the text-only case (the long model's 20,000 chunks) skips the generic encoder."""
        delta = step.delta
        if len(delta) == 1 and type(delta.get("content")) is str:
            body = b'{"role":"assistant","content":' + dumps(delta["content"]) + b"}"
        else:
            body = dumps({"role": "assistant", **delta})
        if step.finish is None and step.native is None:
            return self.delta_head + body + _NULL_TAIL
        tail = {"finish_reason": step.finish, "native_finish_reason": step.native}
        return self.delta_head + body + b"," + dumps(tail)[1:] + b"]}\n\n"

    def _usage_chunk(self, usage_: dict[str, Any]) -> dict[str, Any]:
        """The last chunk: usage, and (as in every real capture) still one choice with an empty delta."""
        choice = {
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "finish_reason": None,
            "native_finish_reason": None,
        }
        return {**self.envelope, "choices": [choice], "usage": usage_}

    def _keepalive(self) -> None:
        self._add(KEEPALIVE_COMMENT)
        self._flush()

    def _add(self, data: bytes) -> None:
        self.buffer.append(data)
        self.size += len(data)
        if self.size >= _FLUSH_AT:
            self._flush()

    def _flush(self) -> None:
        if not self.buffer:
            return
        data = b"".join(self.buffer)
        self.buffer.clear()
        self.size = 0
        self.line.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.pacer.last_write = time.monotonic()
