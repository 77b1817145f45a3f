"""The turn driver without a kernel, against the sandbox: the async driver (the panel's) runs a plain tool in
a worker thread, so cancelling the turn (Stop) ends it promptly even while the tool still works; and both
drivers keep the same turn for the same answer.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from or_magic import render
from or_magic.conversation import TurnStatus
from or_magic.sandbox import Sandbox
from or_magic.session import Session, TurnRequest
from or_magic.tools import ToolBox


class RecordingSink:
    """A sink that keeps what it was given (the final view above all)."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.finals: list[render.TurnView] = []

    def waiting(self, model: str, elapsed: float) -> None:
        pass

    def add_text(self, delta: str) -> None:
        self.text.append(delta)

    def add_reasoning(self, delta: str) -> None:
        pass

    def add_image(self, data_url: str) -> None:
        pass

    def flush(self) -> None:
        pass

    def final(self, view: render.TurnView, images: list[str], metadata: dict[str, Any] | None = None) -> None:
        self.finals.append(view)


@pytest.fixture
def session(sandbox: Sandbox) -> Any:
    s = Session(settings=type("S", (), {"max_retries": 0, "read_timeout": 30.0})())
    s.api_key, s.base_url = "sandbox-no-key-needed", sandbox.url
    yield s
    s.close()


def test_cancel_during_a_tool_ends_the_async_turn_promptly(session: Session) -> None:
    started, release = threading.Event(), threading.Event()

    def add(a: int, b: int) -> int:
        """Add two numbers, slowly."""
        started.set()
        release.wait(10)
        return a + b

    box = ToolBox([add])
    req = TurnRequest(prompt="Add two numbers", params={"model": "sandbox/tools", "tools": box.schemas}, tools=box)
    sink = RecordingSink()

    async def main() -> tuple[Any, float, bool]:
        task = asyncio.ensure_future(session.run_turn_async(req, sink, interval=0.05))
        ticks = 0

        async def heartbeat() -> None:  # the loop keeps running while the tool works
            nonlocal ticks
            while True:
                await asyncio.sleep(0.02)
                ticks += 1

        beat = asyncio.ensure_future(heartbeat())
        deadline = time.monotonic() + 10
        while not started.is_set() and not task.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert started.is_set(), "the tool never ran"
        before = ticks
        await asyncio.sleep(0.3)
        loop_alive = ticks - before >= 5
        t0 = time.monotonic()
        task.cancel()
        result = await task
        took = time.monotonic() - t0
        release.set()  # let the worker thread finish, so the loop can close
        beat.cancel()
        return result, took, loop_alive

    try:
        result, took, loop_alive = asyncio.run(main())
    finally:
        release.set()
    assert loop_alive, "the tool blocked the event loop"
    assert took < 1.0, f"Stop took {took:.2f} s while a tool ran"
    assert result.interrupted and sink.finals[-1].status == str(TurnStatus.INTERRUPTED)
    # the text before the tool call is kept; the call that never finished is not (the next request stays valid)
    [turn] = session.store.get().turns
    assert turn.text == result.text and turn.text and "tool_calls" not in turn.assistant and turn.extra == []
    assert not session.store.is_busy()


def test_sync_and_async_drivers_commit_the_same_turn(session: Session) -> None:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    def request(thread: str) -> TurnRequest:
        box = ToolBox([add])
        return TurnRequest(prompt="Add two numbers", params={"model": "sandbox/tools", "tools": box.schemas},
                           thread=thread, tools=box)

    sync = session.run_turn(request("sync"), RecordingSink())
    asyn = asyncio.run(session.run_turn_async(request("async"), RecordingSink()))
    assert sync.error is None and asyn.error is None
    assert sync.turn is not None and asyn.turn is not None
    assert sync.text == asyn.text and sync.text
    assert [m["role"] for m in sync.turn.messages()] == [m["role"] for m in asyn.turn.messages()] == \
        ["user", "assistant", "tool", "assistant"]
    assert sync.view.tool_calls[0]["result"] == asyn.view.tool_calls[0]["result"]
