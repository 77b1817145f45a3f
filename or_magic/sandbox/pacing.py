"""Time in a scripted answer: waits on a deadline, total stalls, and cuts, all ended at once by a stop."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable

from .._sandbox_models import Cut, Stall, Wait


class Gone(Exception):
    """The client left, the script cut the line, or the server is stopping: end without another byte."""


class Pacer:
    """Deadline-based pauses (so ``rate=1000`` averages 1000/s) that wake at once when the server stops."""

    def __init__(
        self,
        sock: socket.socket,
        stopping: threading.Event,
        interval: float,
        keepalive: Callable[[], None] | None = None,
    ) -> None:
        self.sock = sock
        self.stopping = stopping
        self.interval = interval
        self.keepalive = keepalive
        self.deadline = self.last_write = time.monotonic()

    def pause(self, step: object) -> None:
        """Act out a timing step of a plan (wait, stall or cut); any other step takes no time here."""
        if isinstance(step, Wait):
            self.wait(step.seconds)
        elif isinstance(step, Stall):
            self.stall(step.seconds)
        elif isinstance(step, Cut):
            raise Gone

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
                raise Gone

    def stall(self, seconds: float) -> None:
        """Total silence until ``seconds`` pass, the client disconnects, or the server stops."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.stopping.is_set():
                raise Gone
            readable, _, _ = select.select([self.sock], [], [], min(0.05, left))
            if readable and (_peer_closed(self.sock) or self.stopping.wait(min(0.05, left))):
                raise Gone  # (pipelined bytes make the socket readable without closing: don't spin)
        self.deadline = time.monotonic()


def _peer_closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
