"""Folding a stream into a sink: each chunk's text, reasoning and images, throttled, plus a ticker beside
the read that refreshes the "waiting" notice and flushes text the throttle held back when the model pauses.

The ticker is a thread for the blocking (cell) driver and a task for the event-loop (panel) driver; both
call the same :meth:`StreamFeed.tick`.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

from .accumulate import image_url
from .display import Sink, Throttle
from .types import ChatStreamChunk

WAITING_TICK = 0.5  # seconds between updates of the "waiting for the first token" notice


class StreamFeed:
    """What one turn shows while it streams. A lock guards the sink: the ticker flushes it too."""

    def __init__(self, sink: Sink, model: str, interval: float) -> None:
        self.sink = sink
        self.model = model
        self.throttle = Throttle(interval)
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.first_token: float | None = None
        self.tick_interval = min(interval, WAITING_TICK)
        self.answered = False  # a step has finished (a replay or a non-streaming answer counts)
        self.done = False  # the turn ended: the ticker stops touching the sink
        self._last_wait = self.t0
        self._dirty = False  # text added but not yet shown

    def start(self) -> None:
        self.sink.waiting(self.model, 0.0)

    def separate_steps(self) -> None:
        """A blank line between the text of one tool round and the next."""
        with self.lock:
            self.sink.add_text("\n\n")

    def on_chunk(self, chunk: ChatStreamChunk) -> None:
        with self.lock:
            delta = chunk.choices[0].delta if chunk.choices else None
            if delta is not None:
                if delta.reasoning:
                    self._started()
                    self.sink.add_reasoning(delta.reasoning)
                if delta.content:
                    self._started()
                    self.sink.add_text(delta.content)
                for image in delta.images or ():
                    url = image_url(image)
                    if url:
                        self._started()
                        self.sink.add_image(url)
            if self.first_token is not None:
                if self.throttle.ready():
                    self._dirty = False
                    self.sink.flush()
                else:
                    self._dirty = True

    def _started(self) -> None:
        if self.first_token is None:
            self.first_token = time.monotonic()

    def tick(self) -> bool:
        """Refresh the waiting notice before the first token, afterwards flush text the throttle held
        back. False once the turn ended."""
        with self.lock:
            if self.done:
                return False
            now = time.monotonic()
            if self.first_token is None and not self.answered:
                if now - self._last_wait >= WAITING_TICK:
                    self._last_wait = now
                    self.sink.waiting(self.model, now - self.t0)
            elif self._dirty and self.throttle.ready():
                self._dirty = False
                self.sink.flush()
            return True

    def end(self) -> None:
        with self.lock:
            self.done = True


class ThreadTicker:
    """:meth:`StreamFeed.tick` in a thread beside the blocking read, in a copy of the cell's context so
    ipykernel routes its output to this cell."""

    def __init__(self, feed: StreamFeed) -> None:
        self._stop = threading.Event()
        ctx = contextvars.copy_context()

        def loop() -> None:
            while not self._stop.wait(feed.tick_interval):
                if not feed.tick():
                    return

        self._thread = threading.Thread(target=ctx.run, args=(loop,), name="or_magic-ticker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)


class TaskTicker:
    """:meth:`StreamFeed.tick` as a task on the running event loop."""

    def __init__(self, feed: StreamFeed) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(feed.tick_interval)
                if not feed.tick():
                    return

        self._task = asyncio.ensure_future(loop())

    def stop(self) -> None:
        self._task.cancel()
