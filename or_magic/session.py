"""run_turn(): the one place that wires client -> render -> sink -> conversation.

The magic and the panel differ only in where the prompt comes from and which sink they pass. A turn is
committed only when its answer completed, or was interrupted by the user (then it is kept, marked
"interrupted"). A failed turn is shown with its error card and never enters the context.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from . import render
from .accumulate import ChatAccumulator
from .client import OpenRouter, RetryConfig
from .conversation import INTERRUPTED, OK, ConversationStore, Pending, ThreadBusyError, Turn
from .display import Sink, Throttle
from .errors import OpenRouterError
from .types import ChatResult, ChatStreamChunk

WAITING_TICK = 0.5  # seconds between updates of the "waiting for the first token" notice


@dataclass
class TurnRequest:
    """Everything one turn needs besides the sink."""

    prompt: Any  # str or a list of content parts
    params: dict[str, Any]  # request body fields except messages/stream
    thread: str | None = None
    system: str | None = None
    memory: bool = True
    new: bool = False
    cell_id: str | None = None
    stream: bool = True
    keep_system: bool = False  # -s given: the thread keeps this system prompt once the turn succeeds


@dataclass
class TurnResult:
    """What happened: the committed turn (if any), the answer text, the error or interruption."""

    text: str = ""
    turn: Turn | None = None
    error: OpenRouterError | None = None
    interrupted: bool = False
    view: render.TurnView = field(default_factory=render.TurnView)


class TurnInterrupted(Exception):
    """Raised after an interrupted turn was kept, so "Run All" stops; shown as one line, not a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"⏹ {self}"]


class TurnFailed(Exception):
    """Raised after the error card when ``ChatMagics.raise_on_error`` is set, so a headless run stops."""

    def _render_traceback_(self) -> list[str]:
        return [f"✖ {self}"]


def error_view(err: BaseException) -> render.ErrorView:
    """The fields an error card shows, taken from a typed error (or any exception)."""
    if isinstance(err, OpenRouterError):
        return render.ErrorView(kind=type(err).__name__, status=err.status_code, message=err.message,
                                provider=err.provider_name, detail=_detail(err), hint=err.hint or None,
                                generation_id=err.generation_id, retry_after=err.retry_after)
    return render.ErrorView(kind=type(err).__name__, status=None, message=str(err), provider=None,
                            detail=None, hint=None, generation_id=None, retry_after=None)


def _detail(err: OpenRouterError) -> str | None:
    """The useful part of the error beyond its message (str() already digs into metadata.raw)."""
    text = str(err)
    return text if text and text != err.message else None


class Session:
    """The state one kernel shares between ``%%chat`` cells and the panel.

    ``settings`` is read for ``max_retries`` and ``read_timeout`` (the ``ChatMagics`` instance, usually).
    """

    def __init__(self, settings: Any = None) -> None:
        self.settings = settings
        self.store = ConversationStore()
        self.last_error: OpenRouterError | None = None
        self.api_key: str | None = None  # set by `%chat key`; memory only
        self.base_url: str | None = None  # set by `%chat sandbox`
        self.sandbox: Any = None
        self._client: OpenRouter | None = None
        self._client_key: tuple[Any, ...] | None = None

    # -- the shared client -----------------------------------------------------------------------
    def client(self) -> OpenRouter:
        """One client (one connection pool) for every cell and the panel; rebuilt if key/URL change."""
        retries = int(getattr(self.settings, "max_retries", 2))
        read = float(getattr(self.settings, "read_timeout", 300.0))
        key = (self.api_key, self.base_url, os.environ.get("OPENROUTER_BASE_URL"), retries, read)
        if self._client is None or key != self._client_key:
            if self._client is not None:
                self._client.close()
            self._client = OpenRouter(api_key=self.api_key, server_url=self.base_url,
                                      x_open_router_title="or_magic",
                                      retry_config=RetryConfig(max_retries=retries),
                                      timeout_ms=int(read * 1000))
            self._client_key = key
        return self._client

    @property
    def on_sandbox(self) -> bool:
        url = self.base_url or os.environ.get("OPENROUTER_BASE_URL", "")
        return self.sandbox is not None and url == self.sandbox.url

    def start_sandbox(self) -> str:
        """Start the offline sandbox (once) and send every later request to it."""
        from . import sandbox

        if self.sandbox is None:
            self.sandbox = sandbox.start()
        self.base_url = self.sandbox.url
        if not self.api_key and not os.environ.get("OPENROUTER_API_KEY"):
            self.api_key = "sandbox-no-key-needed"
        return self.sandbox.url

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None

    # -- one turn, synchronously (the magic) -----------------------------------------------------
    def run_turn(self, req: TurnRequest, sink: Sink, interval: float = 0.1) -> TurnResult:
        """Send one turn, stream it into ``sink``, and commit it. Interrupts re-raise as TurnInterrupted."""
        run = _Run(self, req, sink, interval)
        pending = run.begin()
        stream: Any = None
        stop_ticker = threading.Event()
        ticker = _start_ticker(run, stop_ticker)
        try:
            client = self.client()
            if req.stream:
                stream = client.chat.send(messages=pending.messages, stream=True, **req.params)
                with stream:
                    for chunk in stream:
                        run.on_chunk(chunk)
                return run.succeed(stream.accumulator)
            return run.succeed(_accumulate_result(client.chat.send(messages=pending.messages, **req.params)))
        except KeyboardInterrupt:
            result = run.interrupt(stream.accumulator if stream is not None else None)
            raise TurnInterrupted(f"interrupted: the partial answer ({len(result.text)} characters) is kept "
                                  f"in thread {run.pending.thread.name!r}, marked \"interrupted\"") from None
        except OpenRouterError as err:
            return run.fail(err, err.partial or (stream.accumulator if stream is not None else None))
        finally:
            stop_ticker.set()
            if ticker is not None:
                ticker.join(timeout=1)
            run.release()

    # -- one turn on the event loop (the panel) --------------------------------------------------
    async def run_turn_async(self, req: TurnRequest, sink: Sink, interval: float = 0.1) -> TurnResult:
        """The same turn on the kernel's event loop; cancelling the task interrupts it (Stop)."""
        run = _Run(self, req, sink, interval)
        pending = run.begin()
        stream: Any = None
        ticker = asyncio.ensure_future(_tick_async(run))
        try:
            client = self.client()
            if req.stream:
                stream = await client.chat.send_async(messages=pending.messages, stream=True, **req.params)
                async with stream:
                    async for chunk in stream:
                        run.on_chunk(chunk)
                return run.succeed(stream.accumulator)
            result = await client.chat.send_async(messages=pending.messages, **req.params)
            return run.succeed(_accumulate_result(result))
        except asyncio.CancelledError:
            return run.interrupt(stream.accumulator if stream is not None else None)
        except OpenRouterError as err:
            return run.fail(err, err.partial or (stream.accumulator if stream is not None else None))
        finally:
            ticker.cancel()
            run.release()


def _accumulate_result(result: ChatResult) -> ChatAccumulator:
    """Fold a non-streaming result into an accumulator, so both paths end the same way."""
    acc = ChatAccumulator()
    choice = result.choices[0] if result.choices else None
    delta = choice.message.model_dump(exclude_none=True) if choice is not None else {}
    for i, call in enumerate(delta.get("tool_calls") or []):
        call.setdefault("index", i)
    acc.add(ChatStreamChunk.model_validate({
        "id": result.id, "model": result.model, "provider": getattr(result, "provider", None),
        "choices": [{"index": 0, "delta": delta,
                     "finish_reason": choice.finish_reason if choice else None,
                     "native_finish_reason": getattr(choice, "native_finish_reason", None) if choice else None}],
        "usage": result.usage.model_dump(exclude_none=True) if result.usage is not None else None}))
    return acc


def _start_ticker(run: _Run, stop: threading.Event) -> threading.Thread | None:
    """Update the waiting notice every WAITING_TICK s until the first chunk (a thread: the read blocks).

    The thread runs in a copy of the cell's context so ipykernel routes its output to this cell.
    """
    ctx = contextvars.copy_context()

    def loop() -> None:
        while not stop.wait(WAITING_TICK):
            if not run.tick():
                return

    thread = threading.Thread(target=ctx.run, args=(loop,), name="or_magic-waiting", daemon=True)
    thread.start()
    return thread


async def _tick_async(run: _Run) -> None:
    while True:
        await asyncio.sleep(WAITING_TICK)
        if not run.tick():
            return


class _Run:
    """The bookkeeping of one turn, shared by the sync and async drivers."""

    def __init__(self, session: Session, req: TurnRequest, sink: Sink, interval: float) -> None:
        self.session, self.req, self.sink = session, req, sink
        self.throttle = Throttle(interval)
        self.model = str(req.params.get("model") or "openrouter/auto")
        self.pending: Pending
        self._committed = False
        self._lock = threading.Lock()
        self.t0 = time.monotonic()
        self.first_token: float | None = None

    def begin(self) -> Pending:
        store = self.session.store
        if self.req.new:
            if store.is_busy(self.req.thread):
                raise ThreadBusyError(self.req.thread or store.DEFAULT)
            store.reset(self.req.thread)
        self.pending = store.begin(self.req.thread, self.req.prompt, self.req.cell_id,
                                   system=self.req.system, memory=self.req.memory)
        self.sink.waiting(self.model, 0.0)
        return self.pending

    def tick(self) -> bool:
        """Refresh the waiting notice; False once the answer started (the ticker then stops)."""
        with self._lock:
            if self.first_token is not None:
                return False
            self.sink.waiting(self.model, time.monotonic() - self.t0)
            return True

    def on_chunk(self, chunk: ChatStreamChunk) -> None:
        if chunk.choices:
            delta = chunk.choices[0].delta
            if delta is not None:
                if delta.reasoning:
                    self._started()
                    self.sink.add_reasoning(delta.reasoning)
                if delta.content:
                    self._started()
                    self.sink.add_text(delta.content)
                for image in delta.images or ():
                    url = (image.get("image_url") or {}).get("url") if isinstance(image, dict) else None
                    if url:
                        self._started()
                        self.sink.add_image(url)
        if self.first_token is not None and self.throttle.ready():
            self.sink.flush()

    def _started(self) -> None:
        if self.first_token is None:
            with self._lock:
                self.first_token = time.monotonic()

    # -- endings ---------------------------------------------------------------------------------
    def _view(self, acc: ChatAccumulator | None, status: str, error: OpenRouterError | None) -> render.TurnView:
        footer = self._footer(acc, status)
        return render.TurnView(
            text=acc.text if acc else "", reasoning=acc.reasoning if acc else "",
            tool_calls=list(acc.tool_calls) if acc else [], annotations=list(acc.annotations) if acc else [],
            footer=footer, error=error_view(error) if error is not None else None, status=status)

    def _footer(self, acc: ChatAccumulator | None, status: str) -> render.Footer:
        elapsed = time.monotonic() - self.t0
        usage = acc.usage if acc is not None else None
        details = getattr(usage, "completion_tokens_details", None) if usage is not None else None
        reasoning_tokens = details.get("reasoning_tokens") if isinstance(details, dict) else \
            getattr(details, "reasoning_tokens", None)
        completion = getattr(usage, "completion_tokens", None) if usage is not None else None
        ttft = self.first_token - self.t0 if self.first_token is not None else None
        rate = None
        if completion and self.first_token is not None and elapsed - (ttft or 0) > 0.05:
            rate = completion / (elapsed - (ttft or 0))
        return render.Footer(
            model=(acc.model if acc and acc.model else self.model),
            provider=acc.provider if acc else None,
            prompt_tokens=getattr(usage, "prompt_tokens", None) if usage is not None else None,
            completion_tokens=completion, reasoning_tokens=reasoning_tokens,
            cost=getattr(usage, "cost", None) if usage is not None else None,
            ttft=ttft, elapsed=elapsed, tokens_per_s=rate, status=status,
            sandbox=self.session.on_sandbox, finish_reason=acc.finish_reason if acc else None)

    def _images(self, acc: ChatAccumulator | None) -> list[str]:
        return list(acc.images) if acc is not None else []

    def _commit(self, acc: ChatAccumulator, status: str) -> Turn | None:
        if not self.req.memory:
            return None
        usage = acc.usage.model_dump(exclude_none=True) if acc.usage is not None else {}
        turn = Turn(user=self.req.prompt, assistant=acc.message(), text=acc.text, status=status,
                    model=acc.model or self.model, provider=acc.provider, usage=usage,
                    params=dict(self.req.params))
        self._committed = True
        if self.req.keep_system and self.req.system:
            self.pending.thread.system = self.req.system
        return self.session.store.commit(self.pending, turn)

    def succeed(self, acc: ChatAccumulator) -> TurnResult:
        view = self._view(acc, "", None)
        self.sink.final(view, self._images(acc))
        return TurnResult(text=acc.text, turn=self._commit(acc, OK), view=view)

    def interrupt(self, acc: ChatAccumulator | None) -> TurnResult:
        acc = acc or ChatAccumulator()
        view = self._view(acc, "interrupted", None)
        self.sink.final(view, self._images(acc))
        return TurnResult(text=acc.text, turn=self._commit(acc, INTERRUPTED), interrupted=True, view=view)

    def fail(self, err: OpenRouterError, acc: ChatAccumulator | None) -> TurnResult:
        self.session.last_error = err
        view = self._view(acc, "error", err)
        self.sink.final(view, self._images(acc))
        return TurnResult(text=acc.text if acc else "", error=err, view=view)

    def release(self) -> None:
        if not self._committed:
            self.session.store.release(self.pending)
