"""The sandbox's HTTP server: SSE streaming, the request handler, recorded requests and state."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .._sandbox_models import (
    PROVIDER,
    USER_ID,
    Cut,
    Delta,
    Event,
    Folded,
    HttpError,
    Plan,
    Raw,
    Stall,
    Wait,
    list_models,
)
from . import routes
from .answer import Answer, answer
from .batch_store import BatchStore
from .caching import PromptCache
from .generations import Generations

API = "/api/v1"
KEEPALIVE_COMMENT = b": OPENROUTER PROCESSING\n\n"
_FLUSH_AT = 64 * 1024  # back-to-back events are coalesced into HTTP chunks up to this size
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_NULL_TAIL = b',"finish_reason":null,"native_finish_reason":null}]}\n\n'


def _dumps(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


class _Gone(Exception):
    """The client left, the script cut the line, or the server is stopping: end without another byte."""


# ------------------------------------------------------------------------------------------------ pacing


class _Pacer:
    """Deadline-based pauses (so ``rate=1000`` averages 1000/s) that wake at once when the server stops."""

    def __init__(self, handler: _Handler, keepalive: Callable[[], None] | None = None) -> None:
        self.handler = handler
        self.stopping = handler.server.stopping
        self.interval = handler.server.keepalive_interval
        self.keepalive = keepalive
        self.deadline = self.last_write = time.monotonic()

    def wait(self, seconds: float) -> None:
        """Sleep until the next scheduled moment, sending keep-alive comments if the silence is long."""
        self.deadline = max(self.deadline, time.monotonic() - 0.1) + seconds
        while (now := time.monotonic()) < self.deadline:
            wake = self.deadline
            if self.keepalive is not None:
                due = self.last_write + self.interval
                if due <= now:
                    self.keepalive()
                    continue
                wake = min(wake, due)
            if self.stopping.wait(wake - now):
                raise _Gone

    def stall(self, seconds: float) -> None:
        """Total silence until ``seconds`` pass, the client disconnects, or the server stops."""
        end = time.monotonic() + seconds
        sock = self.handler.connection
        while (left := end - time.monotonic()) > 0:
            if self.stopping.is_set():
                raise _Gone
            readable, _, _ = select.select([sock], [], [], min(0.05, left))
            if readable and (_peer_closed(sock) or self.stopping.wait(min(0.05, left))):
                raise _Gone  # (pipelined bytes make the socket readable without closing: don't spin)
        self.deadline = time.monotonic()


def _peer_closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


# --------------------------------------------------------------------------------------------- streaming


class _Stream:
    """Writes one plan as an SSE body with chunked transfer encoding, flushing before every pause."""

    def __init__(self, handler: _Handler, gen_id: str, created: int, model: str) -> None:
        self.handler = handler
        self.envelope = {
            "id": gen_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "provider": PROVIDER,
        }
        self.delta_head = b"data: " + _dumps(self.envelope)[:-1] + b',"choices":[{"index":0,"delta":'
        self.buffer: list[bytes] = []
        self.size = 0
        self.pacer = _Pacer(handler, self._keepalive)

    def run(self, plan: Plan, usage_: dict[str, Any]) -> bool:
        """Stream the plan; False if the line was cut (by the script, the client or the server stopping)."""
        handler = self.handler
        handler.send_response(200)
        for name, value in (
            ("Content-Type", "text/event-stream"),
            ("Cache-Control", "no-cache"),
            ("Transfer-Encoding", "chunked"),
            ("X-Generation-Id", self.envelope["id"]),
            ("Access-Control-Allow-Origin", "*"),
        ):
            handler.send_header(name, value)
        handler.end_headers()
        try:
            self._keepalive()
            for step in plan.steps:
                self._step(step)
            if plan.send_usage:
                self._add(b"data: " + _dumps(self._usage_chunk(usage_)) + b"\n\n")
            if plan.done:
                self._add(b"data: [DONE]\n\n")
            self._flush()
            handler.wfile.write(b"0\r\n\r\n")
        except (_Gone, OSError):
            handler.drop()
            return False
        return True

    def _step(self, step: object) -> None:
        if isinstance(step, Delta):
            self._add(self._delta(step))
        elif isinstance(step, Event):
            body = {**self.envelope, **step.body} if step.envelope else step.body
            self._add(b"data: " + _dumps(body) + b"\n\n")
        elif isinstance(step, Raw):
            self._add(b"data: " + step.data.encode() + b"\n\n")
        else:
            self._flush()
            if isinstance(step, Wait):
                self.pacer.wait(step.seconds)
            elif isinstance(step, Stall):
                self.pacer.stall(step.seconds)
            elif isinstance(step, Cut):
                raise _Gone

    def _delta(self, step: Delta) -> bytes:
        """One chunk; the text-only case (the long model's 20,000 chunks) skips the generic encoder."""
        delta = step.delta
        if len(delta) == 1 and type(delta.get("content")) is str:
            body = b'{"role":"assistant","content":' + _dumps(delta["content"]) + b"}"
        else:
            body = _dumps({"role": "assistant", **delta})
        if step.finish is None and step.native is None:
            return self.delta_head + body + _NULL_TAIL
        tail = {"finish_reason": step.finish, "native_finish_reason": step.native}
        return self.delta_head + body + b"," + _dumps(tail)[1:] + b"]}\n\n"

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
        self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.pacer.last_write = time.monotonic()


# ----------------------------------------------------------------------------------------------- handler


def _parse_json(raw: bytes) -> tuple[bool, Any]:
    try:
        return True, json.loads(raw)
    except ValueError:
        return False, None


def _has_auth(value: str | None) -> bool:
    """A key is present if the header carries more than a bare 'Bearer'."""
    return bool(value and value.strip().removeprefix("Bearer").strip())


class _Handler(routes.ExtraRoutes, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive plus chunked streams, like the real API
    server_version = "or_magic-sandbox"
    sys_version = ""
    server: _Server
    _ROUTES = {
        ("POST", f"{API}/chat/completions"): "_chat",
        ("GET", f"{API}/models"): "_models",
        ("GET", f"{API}/key"): "_key",
        ("GET", f"{API}/_sandbox/requests"): "_requests",
        ("POST", f"{API}/_sandbox/reset"): "_reset",
        **routes.ROUTES,
    }

    def setup(self) -> None:
        super().setup()
        self.server.track(self)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.untrack(self)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"sandbox: {self.address_string()} {format % args}\n")

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _authorized(self) -> bool:
        return _has_auth(self.headers.get("Authorization"))

    def drop(self) -> None:
        """End the connection abruptly: no terminating chunk, so clients see a truncated body."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/")
        query = dict(parse_qsl(url.query))
        raw = self._read_body()
        ok, body = _parse_json(raw) if raw else (False, None)
        if not path.startswith(f"{API}/_sandbox/"):
            self.server.record(self.command, path, query, self.headers.items(), body)
        route = self._ROUTES.get((self.command, path))
        with_id = routes.match(self.command, path)
        if route is not None:
            getattr(self, route)(query, body, ok)
        elif with_id is not None:
            getattr(self, with_id[0])(with_id[1])
        elif any(known == path for _, known in self._ROUTES):
            self._error(405, "Method Not Allowed")
        else:
            self._error(404, "Not Found")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, _dumps(value), "application/json", headers)

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": {"code": status, "message": message}, "user_id": USER_ID})

    # --- routes

    def _chat(self, query: dict[str, str], body: Any, ok: bool) -> None:
        if not ok:
            body = None
        result = self._answer(body)
        if isinstance(result, HttpError):
            return self._send(result.status, result.body, result.content_type, result.headers)
        self.server.charge(result.usage["cost"])
        streamed = body.get("stream") is True
        self.server.generations.start(result, streamed=streamed)
        if streamed:
            finished = _Stream(self, result.gen_id, result.created, result.model).run(result.plan, result.usage)
        else:
            finished = self._complete(result.plan, result.folded, result.body(), result.gen_id)
        self.server.generations.end(result.gen_id, cancelled=not finished)

    def _answer(self, body: Any) -> Answer | HttpError:
        has_auth = _has_auth(self.headers.get("Authorization"))
        return answer(body, has_auth, self.server.tally, self.server.prompt_cache)

    def _complete(self, plan: Plan, folded: Folded, result: dict[str, Any], gen_id: str) -> bool:
        """Non-streaming: take the same time the stream would, then send one JSON body; False if cut."""
        pacer = _Pacer(self)
        try:
            for step in plan.steps:
                if isinstance(step, Wait):
                    pacer.wait(step.seconds)
                elif isinstance(step, Stall):
                    pacer.stall(step.seconds)
                elif isinstance(step, Cut):
                    raise _Gone
        except _Gone:
            self.drop()
            return False
        if plan.body is not None:
            self._send(200, plan.body, "application/json")
        else:
            self._json(200, result, None if folded.bare else {"X-Generation-Id": gen_id})
        return True

    def _models(self, query: dict[str, str], body: Any, ok: bool) -> None:
        data = list_models(query.get("output_modalities"), query.get("supported_parameters"))
        self._json(200, {"data": data, "links": {"next": None}, "total_count": len(data)})

    def _key(self, query: dict[str, str], body: Any, ok: bool) -> None:
        spent = round(self.server.spent, 9)
        limit = 10.0
        data = {
            "label": "sk-or-v1-san...box",
            "limit": limit,
            "limit_remaining": round(limit - spent, 9),
            "limit_reset": None,
            "include_byok_in_limit": False,
            "usage": spent,
            "usage_daily": spent,
            "usage_weekly": spent,
            "usage_monthly": spent,
            "byok_usage": 0,
            "byok_usage_daily": 0,
            "byok_usage_weekly": 0,
            "byok_usage_monthly": 0,
            "is_free_tier": False,
            "is_management_key": False,
            "expires_at": None,
            "creator_user_id": USER_ID,
            "rate_limit": {
                "requests": -1,
                "interval": "10s",
                "note": "This field is deprecated and safe to ignore.",
            },
        }
        self._json(200, {"data": data})

    def _requests(self, query: dict[str, str], body: Any, ok: bool) -> None:
        self._json(200, {"data": self.server.snapshot()})

    def _reset(self, query: dict[str, str], body: Any, ok: bool) -> None:
        self.server.reset()
        self._json(200, {"ok": True})


# ------------------------------------------------------------------------------------------------ server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the listen backlog: 64+ clients connecting at once must not be refused
    block_on_close = False  # stop() closes connections itself and joins with a deadline

    def __init__(self, address: tuple[str, int], keepalive: float, verbose: bool) -> None:
        self.stopping = threading.Event()
        self.keepalive_interval = keepalive
        self.verbose = verbose
        self.lock = threading.Lock()
        self.records: list[dict[str, Any]] = []
        self.tallies: dict[str, int] = {}
        self.spent = 0.0
        self.generations = Generations()
        self.prompt_cache = PromptCache()
        self.batches = BatchStore()
        self.live: dict[_Handler, threading.Thread] = {}
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse-DNS lookup (getfqdn), which can hang offline."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[0], self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client that left is not worth a traceback
            super().handle_error(request, client_address)

    def track(self, handler: _Handler) -> None:
        with self.lock:
            self.live[handler] = threading.current_thread()
        if self.stopping.is_set():
            handler.drop()

    def untrack(self, handler: _Handler) -> None:
        with self.lock:
            self.live.pop(handler, None)

    def record(self, method: str, path: str, query: dict[str, str], headers: Any, body: Any) -> None:
        """Keep the request for tests; the key itself is never stored, only whether one was sent."""
        lowered = {name.lower(): value for name, value in headers}
        has_auth = _has_auth(lowered.get("authorization"))
        if "authorization" in lowered:
            lowered["authorization"] = "<redacted>"
        entry = {
            "method": method,
            "path": path,
            "query": query,
            "headers": lowered,
            "body": body,
            "has_auth": has_auth,
            "time": time.time(),
        }
        with self.lock:
            self.records.append(entry)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.records)

    def tally(self, key: str) -> int:
        with self.lock:
            self.tallies[key] = self.tallies.get(key, 0) + 1
            return self.tallies[key]

    def charge(self, cost: float) -> None:
        with self.lock:
            self.spent += cost

    def reset(self) -> None:
        with self.lock:
            self.records.clear()
            self.tallies.clear()
            self.spent = 0.0
        self.generations.reset()
        self.prompt_cache.reset()
        self.batches.reset()

    def close_all(self, timeout: float) -> None:
        """Shut every open connection (streams wake with an error), then join their threads, bounded."""
        with self.lock:
            live = dict(self.live)
        for handler in live:
            handler.drop()
        deadline = time.monotonic() + timeout
        for thread in live.values():
            thread.join(max(0.0, deadline - time.monotonic()))


class _Server6(_Server):
    address_family = socket.AF_INET6
