"""Starting and stopping a sandbox: :func:`start`, :class:`Sandbox`, and ``main`` for the command line."""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
import threading
from collections import Counter
from typing import Any

from .._sandbox_models import MODELS, last_user_text
from .server import API, _Server, _Server6

_DESCRIPTION = "An OpenRouter-compatible HTTP server on 127.0.0.1 with scripted fake models."


class Sandbox:
    """A running sandbox: its API root ``url``, the requests it recorded, and ``stop()``."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        host = server.server_address[0]
        self.host: str = host
        self.port: int = server.server_address[1]
        self.url: str = f"http://{f'[{host}]' if ':' in host else host}:{self.port}{API}"

    def __repr__(self) -> str:
        state = "stopped" if self._server.stopping.is_set() else "running"
        return f"<Sandbox {self.url} {state}>"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Recorded requests: method, path, query, headers (authorization redacted), body, has_auth, time."""
        return self._server.snapshot()

    def prompt_counts(self, model: str | None = None) -> Counter[str]:
        """How many chat requests each prompt (last user message) got, optionally for one model only."""
        counts: Counter[str] = Counter()
        for record in self.requests:
            body = record["body"]
            chat = record["path"].endswith("/chat/completions") and isinstance(body, dict)
            if chat and (model is None or body.get("model") == model):
                counts[last_user_text(body.get("messages") or [])] += 1
        return counts

    @property
    def batch_submissions(self) -> int:
        """How many batches were accepted (``POST /batches`` answered 202) since the last reset."""
        return self._server.batches.submissions

    @property
    def batch_delay(self) -> float:
        """Seconds a batch takes to complete (unless its ``metadata.sandbox_delay`` says otherwise)."""
        return self._server.batches.delay

    @batch_delay.setter
    def batch_delay(self, seconds: float) -> None:
        self._server.batches.delay = max(0.0, float(seconds))

    @property
    def generation_lag(self) -> float:
        """Seconds after a generation ends before ``/generation`` knows it (404 until then)."""
        return self._server.generations.lag

    @generation_lag.setter
    def generation_lag(self, seconds: float) -> None:
        self._server.generations.lag = max(0.0, float(seconds))

    def clear_requests(self) -> None:
        with self._server.lock:
            self._server.records.clear()

    def reset(self) -> None:
        """Forget recorded requests, per-prompt counters, the spend shown by /key, generations, cached
        prompts and batches."""
        self._server.reset()

    def stop(self, timeout: float = 1.5) -> None:
        """Close the listener and every connection, stalled streams included; returns within ~``timeout``."""
        if self._server.stopping.is_set():
            return
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_all(timeout)
        self._thread.join(timeout)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _loopback(host: str) -> str:
    """Only loopback addresses: the sandbox accepts any key and must never be reachable from outside."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(f"refusing to bind the sandbox to {host!r}: only loopback addresses are allowed")
    return str(address)


def start(port: int = 0, host: str = "127.0.0.1", *, keepalive: float = 1.0, verbose: bool = False) -> Sandbox:
    """Start a sandbox on a daemon thread and return it (``port=0`` picks a free port).

    ``keepalive`` is the silence, in seconds, after which a ``: OPENROUTER PROCESSING`` comment is sent.
    """
    if not keepalive > 0:
        raise ValueError(f"keepalive must be a positive number of seconds, not {keepalive!r}")
    host = _loopback(host)
    server_class = _Server6 if ":" in host else _Server
    server = server_class((host, port), keepalive, verbose)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"or_magic-sandbox:{server.server_address[1]}",
        daemon=True,
    )
    thread.start()
    return Sandbox(server, thread)


def main(argv: list[str] | None = None) -> int:
    """``python -m or_magic.sandbox``: print the API root, serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m or_magic.sandbox", description=_DESCRIPTION)
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default: 127.0.0.1)")
    parser.add_argument("--keepalive", type=float, default=1.0, help="seconds of silence before a keep-alive")
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = parser.parse_args(argv)
    try:
        sandbox = start(args.port, args.host, keepalive=args.keepalive, verbose=args.verbose)
    except (ValueError, OSError) as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    print(sandbox.url, flush=True)
    print(
        f"sandbox: serving {len(MODELS)} fake models; set OPENROUTER_BASE_URL={sandbox.url} "
        "(any key works); Ctrl-C to stop",
        file=sys.stderr,
        flush=True,
    )
    finished = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: finished.set())
    while not finished.wait(0.2):
        pass
    sandbox.stop()
    return 0
