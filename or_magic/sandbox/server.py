"""The sandbox's HTTP server: SSE streaming, the request handler, recorded requests and state."""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .._sandbox_models import USER_ID, Folded, HttpError, Plan, list_models
from . import routes
from .answer import Answer, answer
from .batch_store import BatchStore
from .caching import PromptCache
from .generations import Generations
from .key_info import key_info
from .pacing import Gone, Pacer
from .sse_writer import Stream, dumps

API = "/api/v1"


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
        self._send(status, dumps(value), "application/json", headers)

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
            stream = Stream(self, self._pacer(), result.gen_id, result.created, result.model)
            finished = stream.run(result.plan, result.usage)
        else:
            finished = self._complete(result.plan, result.folded, result.body(), result.gen_id)
        self.server.generations.end(result.gen_id, cancelled=not finished)

    def _pacer(self) -> Pacer:
        """Pauses for this connection, woken by the server's stop."""
        return Pacer(self.connection, self.server.stopping, self.server.keepalive_interval)

    def _answer(self, body: Any) -> Answer | HttpError:
        return answer(body, self._authorized(), self.server.tally, self.server.prompt_cache)

    def _complete(self, plan: Plan, folded: Folded, result: dict[str, Any], gen_id: str) -> bool:
        """Non-streaming: take the same time the stream would, then send one JSON body; False if cut."""
        pacer = self._pacer()
        try:
            for step in plan.steps:
                pacer.pause(step)
        except Gone:
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
        self._json(200, {"data": key_info(self.server.spent)})

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
