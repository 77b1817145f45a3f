"""run_turn(): the one place that wires client -> render -> sink -> conversation.

The magic and the panel differ only in where the prompt comes from and which sink they pass. A turn is
committed only when its answer completed, or was interrupted by the user (then it is kept, marked
"interrupted"). A failed turn is shown with its error card and never enters the context.

Around the request itself: a recorded answer is replayed from the on-disk cache when enabled, a notebook
budget refuses requests that would exceed it, tool calls are executed and answered (a bounded loop), and a
structured answer is validated before it is bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from . import render
from .accumulate import ChatAccumulator, image_url, result_to_chunk
from .cache import ResponseCache, request_key
from .client import OpenRouter, RetryConfig, build_request_body
from .conversation import INTERRUPTED, OK, ConversationStore, Pending, ThreadBusyError, Turn
from .display import Sink, Throttle
from .errors import ConfigError, OpenRouterError
from .types import ChatResult, ChatStreamChunk

WAITING_TICK = 0.5  # seconds between updates of the "waiting for the first token" notice
METADATA_KEY = "or_magic"  # the cell output metadata key holding a turn, for %chat restore


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
    cache: bool = True  # may be answered from / recorded into the response cache (when the cache is on)
    tools: Any = None  # a tools.ToolBox, or None
    max_steps: int = 5  # tool round trips at most
    schema: Any = None  # a schema.StructuredSpec, or None


@dataclass
class TurnResult:
    """What happened: the committed turn (if any), the answer text, the error or interruption."""

    text: str = ""
    turn: Turn | None = None
    error: OpenRouterError | None = None
    interrupted: bool = False
    view: render.TurnView = field(default_factory=render.TurnView)
    value: Any = None  # the validated structured answer, with a schema
    cached: bool = False


class TurnInterrupted(Exception):
    """Raised after an interrupted turn was kept, so "Run All" stops; shown as one line, not a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"⏹ {self}"]


class TurnFailed(Exception):
    """Raised after the error card when ``ChatMagics.raise_on_error`` is set, so a headless run stops."""

    def _render_traceback_(self) -> list[str]:
        return [f"✖ {self}"]


class BudgetExceededError(ConfigError):
    """The notebook's budget (``ChatMagics.budget``) would be exceeded: nothing was sent."""


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

    ``settings`` (the ``ChatMagics`` instance, usually) is read for ``max_retries``, ``read_timeout``,
    ``cache``, ``cache_dir`` and ``budget``.
    """

    def __init__(self, settings: Any = None) -> None:
        self.settings = settings
        self.store = ConversationStore()
        self.last_error: OpenRouterError | None = None
        self.api_key: str | None = None  # set by `%chat key`; memory only
        self.base_url: str | None = None  # set by `%chat sandbox`
        self.sandbox: Any = None
        self.spent = 0.0  # USD reported by the API this session, failed and interrupted turns included
        self._client: OpenRouter | None = None
        self._client_key: tuple[Any, ...] | None = None
        self._in_use: dict[int, int] = {}  # id(client) -> turns streaming through it
        self._retired: dict[int, OpenRouter] = {}  # replaced clients still serving a turn

    def _setting(self, name: str, default: Any) -> Any:
        value = getattr(self.settings, name, default)
        return default if value is None and default is not None else value

    # -- the shared client -----------------------------------------------------------------------
    def client(self) -> OpenRouter:
        """One client (one connection pool) for every cell and the panel; rebuilt if key/URL change."""
        retries = int(self._setting("max_retries", 2))
        read = float(self._setting("read_timeout", 300.0))
        key = (self.api_key, self.base_url, os.environ.get("OPENROUTER_BASE_URL"), retries, read)
        if self._client is None or key != self._client_key:
            if self._client is not None:
                if self._in_use.get(id(self._client)):  # a turn still streams through it: close it after
                    self._retired[id(self._client)] = self._client
                else:
                    _dispose(self._client)
            self._client = OpenRouter(api_key=self.api_key, server_url=self.base_url,
                                      x_open_router_title="or_magic",
                                      retry_config=RetryConfig(max_retries=retries),
                                      timeout_ms=int(read * 1000))
            self._client_key = key
        return self._client

    def _acquire(self) -> OpenRouter:
        """The shared client, held for one turn (a config change mid-turn must not close its pool)."""
        client = self.client()
        self._in_use[id(client)] = self._in_use.get(id(client), 0) + 1
        return client

    def _let_go(self, client: OpenRouter) -> None:
        left = self._in_use.get(id(client), 1) - 1
        if left > 0:
            self._in_use[id(client)] = left
            return
        self._in_use.pop(id(client), None)
        retired = self._retired.pop(id(client), None)
        if retired is not None:
            _dispose(retired)

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
        """Close every connection pool (retired clients included) and stop the sandbox."""
        for client in [*self._retired.values(), *([self._client] if self._client is not None else [])]:
            _dispose(client)
        self._retired.clear()
        self._in_use.clear()
        self._client = None
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None

    # -- cache and budget ------------------------------------------------------------------------
    @property
    def cache(self) -> ResponseCache | None:
        """The response cache when ``ChatMagics.cache`` is on, else None."""
        if not self._setting("cache", False):
            return None
        return ResponseCache(self._setting("cache_dir", None) or None)

    def _cache_key(self, req: TurnRequest, messages: list[dict[str, Any]]) -> str | None:
        if not req.cache or req.tools is not None or self.cache is None:
            return None
        body = build_request_body(messages=messages, **req.params)
        return request_key(self.client().server_url, body)

    def check_budget(self, req: TurnRequest, messages: list[dict[str, Any]]) -> None:
        """Refuse a request whose estimated cost would take the notebook past ``ChatMagics.budget``."""
        budget = self._setting("budget", None)
        if budget is None:
            return
        estimate = self.estimate_cost(req.params, messages)
        if self.spent + estimate > budget:
            raise BudgetExceededError(
                f"budget ${budget:.4f} would be exceeded: ${self.spent:.4f} spent so far, this request "
                f"could cost up to ${estimate:.4f}",
                hint="raise %config ChatMagics.budget, lower --max-tokens, or pick a cheaper model "
                     "(%chat usage shows the spend)")

    def estimate_cost(self, params: dict[str, Any], messages: list[dict[str, Any]]) -> float:
        """Upper-bound cost from /models prices: prompt ≈ characters / 4 tokens, plus max_tokens of output."""
        try:
            models = {m.id: m for m in self.client().models()}
        except OpenRouterError:
            return 0.0
        info = models.get(str(params.get("model")))
        pricing = (info.pricing if info is not None else None) or {}
        price = pricing if isinstance(pricing, dict) else pricing.model_dump()
        prompt_tokens = len(str(messages)) / 4
        out_tokens = params.get("max_tokens") or params.get("max_completion_tokens") or \
            (info.context_length if info is not None and info.context_length else 4096) // 4
        return prompt_tokens * _price(price, "prompt") + float(out_tokens) * _price(price, "completion")

    # -- one turn, synchronously (the magic) -----------------------------------------------------
    def run_turn(self, req: TurnRequest, sink: Sink, interval: float = 0.1) -> TurnResult:
        """Send one turn, stream it into ``sink``, and commit it. Interrupts re-raise as TurnInterrupted.

        Everything after the thread is claimed sits inside the try, so an interrupt landing anywhere (even
        while the turn is being set up) releases the thread.
        """
        run = _Run(self, req, sink, interval)
        stop_ticker = threading.Event()
        ticker: threading.Thread | None = None
        client: OpenRouter | None = None
        try:
            run.begin()
            ticker = _start_ticker(run, stop_ticker)
            client = self._acquire()
            for messages in run.steps():
                if run.replay():
                    break
                if req.stream:
                    run.stream = client.chat.send(messages=messages, stream=True, **req.params)
                    with run.stream:
                        for chunk in run.stream:
                            run.on_chunk(chunk)
                    run.step_done(run.stream.accumulator)
                else:
                    run.step_done(_fold(client.chat.send(messages=messages, **req.params)))
            return run.succeed()
        except KeyboardInterrupt:
            if not run.began:
                raise
            result = run.interrupt()
            raise TurnInterrupted(f"interrupted: the partial answer ({len(result.text)} characters) is kept "
                                  f"in thread {run.pending.thread.name!r}, marked \"interrupted\"") from None
        except OpenRouterError as err:
            return run.fail(err)
        finally:
            try:
                run.release()
            finally:
                stop_ticker.set()
                if client is not None:
                    self._let_go(client)
                if ticker is not None:
                    ticker.join(timeout=1)

    # -- one turn on the event loop (the panel) --------------------------------------------------
    async def run_turn_async(self, req: TurnRequest, sink: Sink, interval: float = 0.1) -> TurnResult:
        """The same turn on the kernel's event loop; cancelling the task interrupts it (Stop)."""
        run = _Run(self, req, sink, interval)
        ticker: asyncio.Future[None] | None = None
        client: OpenRouter | None = None
        try:
            run.begin()
            ticker = asyncio.ensure_future(_tick_async(run))
            client = self._acquire()
            if self._setting("budget", None) is not None:
                await client.models_async()  # the budget estimate then reads the cached list
            for messages in run.steps():
                if run.replay():
                    break
                if req.stream:
                    run.stream = await client.chat.send_async(messages=messages, stream=True, **req.params)
                    async with run.stream:
                        async for chunk in run.stream:
                            run.on_chunk(chunk)
                    run.step_done(run.stream.accumulator)
                else:
                    run.step_done(_fold(await client.chat.send_async(messages=messages, **req.params)))
            return run.succeed()
        except asyncio.CancelledError:
            if not run.began:
                raise
            return run.interrupt()
        except OpenRouterError as err:
            return run.fail(err)
        finally:
            try:
                run.release()
            finally:
                if client is not None:
                    self._let_go(client)
                if ticker is not None:
                    ticker.cancel()


def _dispose(client: OpenRouter) -> None:
    """Close both connection pools: the sync one now, the async one (the panel's) on the running loop."""
    client.close()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        with contextlib.suppress(Exception):
            asyncio.run(client.aclose())
        return
    loop.create_task(client.aclose())


def _price(pricing: dict[str, Any], key: str) -> float:
    try:
        return max(float(pricing.get(key) or 0.0), 0.0)
    except (TypeError, ValueError):
        return 0.0


def _fold(result: ChatResult) -> ChatAccumulator:
    """A non-streaming result as an accumulator, so both paths end the same way."""
    acc = ChatAccumulator()
    acc.add(result_to_chunk(result))
    return acc


def _start_ticker(run: _Run, stop: threading.Event) -> threading.Thread | None:
    """Run :meth:`_Run.tick` beside the blocking read: the waiting notice, and text that arrived just
    before the model went quiet (which the throttle held back) reaches the screen anyway.

    The thread runs in a copy of the cell's context so ipykernel routes its output to this cell.
    """
    ctx = contextvars.copy_context()

    def loop() -> None:
        while not stop.wait(run.tick_interval):
            if not run.tick():
                return

    thread = threading.Thread(target=ctx.run, args=(loop,), name="or_magic-ticker", daemon=True)
    thread.start()
    return thread


async def _tick_async(run: _Run) -> None:
    while True:
        await asyncio.sleep(run.tick_interval)
        if not run.tick():
            return


class _Run:
    """The bookkeeping of one turn, shared by the sync and async drivers.

    A turn is one or more steps (requests): with tools, each step's tool calls are executed and their
    results sent back in the next step, up to ``max_steps`` round trips.
    """

    def __init__(self, session: Session, req: TurnRequest, sink: Sink, interval: float) -> None:
        self.session, self.req, self.sink = session, req, sink
        self.throttle = Throttle(interval)
        self.model = str(req.params.get("model") or "openrouter/auto")
        self.pending: Pending
        self.stream: Any = None  # the step's open event stream (its accumulator is the partial answer)
        self.accs: list[ChatAccumulator] = []  # finished steps
        self.extra: list[dict[str, Any]] = []  # assistant tool-call and tool messages between the steps
        self.tool_runs: list[Any] = []
        self.cache_key: str | None = None
        self.recorded: dict[str, Any] | None = None  # the cached answer to this exact request, if any
        self.cached = False
        self.max_steps_reached = False
        self._committed = False
        self._lock = threading.Lock()
        self.t0 = time.monotonic()
        self.first_token: float | None = None
        self.tick_interval = min(interval, WAITING_TICK)
        self._last_wait = self.t0
        self._dirty = False  # text added but not yet shown
        self.done = False
        self.began = False  # the thread is claimed (and must be released)

    def begin(self) -> Pending:
        store = self.session.store
        if self.req.new:
            if store.is_busy(self.req.thread):
                raise ThreadBusyError(self.req.thread or store.DEFAULT)
            store.reset(self.req.thread)
        self.pending = store.begin(self.req.thread, self.req.prompt, self.req.cell_id,
                                   system=self.req.system, memory=self.req.memory)
        self.began = True
        self.sink.waiting(self.model, 0.0)
        return self.pending

    def steps(self) -> Iterator[list[dict[str, Any]]]:
        """The messages of each request: the first, then one more per round of tool calls."""
        messages = self.pending.messages
        self.cache_key = self.session._cache_key(self.req, messages)
        cache = self.session.cache if self.cache_key is not None else None
        self.recorded = cache.get(self.cache_key) if cache is not None and self.cache_key else None
        if self.recorded is None:  # a replay costs nothing: no budget check
            self.session.check_budget(self.req, messages)
        yield messages
        for _ in range(self.req.max_steps):
            acc = self.accs[-1]
            if self.req.tools is None or not acc.tool_calls:
                return
            self.extra.append(acc.message())  # reasoning_details go back unmodified
            for call in acc.tool_calls:
                tool_run = self.req.tools.run(call)
                self.tool_runs.append(tool_run)
                self.extra.append(tool_run.message())
            with self._lock:
                self.sink.add_text("\n\n")
            yield messages + self.extra
        self.max_steps_reached = self.req.tools is not None and bool(self.accs[-1].tool_calls)

    def replay(self) -> bool:
        """Answer from the cache if this exact request was recorded (only the first step is cached)."""
        if self.recorded is None or self.accs:
            return False
        result = ChatResult.model_validate(self.recorded)
        if result.usage is not None:
            result.usage.cost = 0.0  # a replay costs nothing
        self.accs.append(_fold(result))
        self.cached = True
        return True

    def step_done(self, acc: ChatAccumulator) -> None:
        self.accs.append(acc)
        self.stream = None
        self._spend(acc)

    def _record(self) -> None:
        """Put a good single-request answer into the cache (never a failed or tool-calling one)."""
        acc = self.accs[0]
        if self.cache_key is not None and not self.cached and len(self.accs) == 1 and not acc.tool_calls:
            self.session.cache.put(self.cache_key, acc.result().model_dump(mode="json", exclude_none=True),  # type: ignore[union-attr]
                                   model=acc.model)

    def _spend(self, acc: ChatAccumulator | None) -> None:
        cost = getattr(acc.usage, "cost", None) if acc is not None and acc.usage is not None else None
        if isinstance(cost, (int, float)):
            self.session.spent += float(cost)

    def tick(self) -> bool:
        """Called every ``tick_interval`` beside the stream: refresh the waiting notice before the first
        token, afterwards flush text the throttle held back. False once the turn ended."""
        with self._lock:
            if self.done:
                return False
            now = time.monotonic()
            if self.first_token is None and not self.accs:
                if now - self._last_wait >= WAITING_TICK:
                    self._last_wait = now
                    self.sink.waiting(self.model, now - self.t0)
            elif self._dirty and self.throttle.ready():
                self._dirty = False
                self.sink.flush()
            return True

    def on_chunk(self, chunk: ChatStreamChunk) -> None:
        with self._lock:  # the ticker flushes the same sink
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

    # -- the whole turn, over its steps ----------------------------------------------------------
    def _all(self, partial: ChatAccumulator | None = None) -> list[ChatAccumulator]:
        return self.accs + ([partial] if partial is not None and partial not in self.accs else [])

    def _view(self, status: str, error: OpenRouterError | None, partial: ChatAccumulator | None) -> render.TurnView:
        accs = self._all(partial)
        calls = [_tool_run_dict(r) for r in self.tool_runs]
        if accs and accs[-1].tool_calls and len(calls) < sum(len(a.tool_calls) for a in accs):
            calls += list(accs[-1].tool_calls)  # requested but not executed (--max-steps, or no tools)
        return render.TurnView(
            text=_join(a.text for a in accs), reasoning=_join(a.reasoning for a in accs),
            tool_calls=calls, annotations=[x for a in accs for x in a.annotations],
            footer=self._footer(accs, status), error=error_view(error) if error is not None else None,
            status=status)

    def _footer(self, accs: list[ChatAccumulator], status: str) -> render.Footer:
        elapsed = time.monotonic() - self.t0
        usage = _sum_usage(accs)
        last = accs[-1] if accs else None
        ttft = self.first_token - self.t0 if self.first_token is not None and len(accs) <= 1 else None
        completion = usage.get("completion_tokens")
        rate = None
        if completion and ttft is not None and elapsed - ttft > 0.05:
            rate = completion / (elapsed - ttft)
        return render.Footer(
            model=(last.model if last and last.model else self.model), provider=last.provider if last else None,
            prompt_tokens=usage.get("prompt_tokens"), completion_tokens=completion,
            reasoning_tokens=usage.get("reasoning_tokens"), cost=usage.get("cost"),
            ttft=ttft, elapsed=elapsed, tokens_per_s=rate, status="cached" if self.cached else status,
            sandbox=self.session.on_sandbox, finish_reason=last.finish_reason if last else None)

    def _images(self, partial: ChatAccumulator | None = None) -> list[str]:
        return [url for a in self._all(partial) for url in a.images]

    def _commit(self, status: str, partial: ChatAccumulator | None = None) -> Turn | None:
        accs = self._all(partial)
        if not self.req.memory or not accs:
            return None
        usage = _sum_usage(accs)
        last = accs[-1]
        extra = list(self.extra)
        assistant = last.message()
        # tool calls that were never run (--max-steps reached, an interrupt) would make the next request
        # invalid: a tool call must be followed by its result
        assistant.pop("tool_calls", None)
        turn = Turn(user=self.req.prompt, assistant=assistant, text=_join(a.text for a in accs),
                    status=status, model=last.model or self.model, provider=last.provider,
                    usage=usage, params=dict(self.req.params), extra=extra, cached=self.cached)
        self._committed = True
        if self.req.keep_system and self.req.system:
            self.pending.thread.system = self.req.system
        return self.session.store.commit(self.pending, turn)

    def _metadata(self, turn: Turn | None) -> dict[str, Any] | None:
        """The turn's essentials, saved in the output's metadata so a restart can rebuild the thread."""
        if turn is None:
            return None
        data = asdict(turn)
        data["assistant"] = {k: v for k, v in data["assistant"].items() if k != "images"}
        return {METADATA_KEY: {"version": 1, "thread": self.pending.thread.name,
                               "system": self.pending.thread.system, "turn": data}}

    def _final(self, view: render.TurnView, images: list[str], turn: Turn | None = None) -> None:
        """Show the final output; sinks that save outputs (cells) also get the turn as metadata."""
        with self._lock:
            self.done = True  # the ticker stops touching the sink
        if turn is not None and getattr(self.sink, "keeps_metadata", False):
            self.sink.final(view, images, metadata=self._metadata(turn))
        else:
            self.sink.final(view, images)

    def succeed(self) -> TurnResult:
        value, error = None, None
        text = _join(a.text for a in self.accs)
        if self.req.schema is not None:
            try:
                value = self.req.schema.parse(self.accs[-1].text)
            except OpenRouterError as err:
                error = err
        if error is not None:
            return self.fail(error, status="invalid")
        self._record()
        turn = self._commit(OK)
        view = self._view("max-steps" if self.max_steps_reached else "", None, None)
        self._final(view, self._images(), turn)
        return TurnResult(text=text, turn=turn, view=view, value=value, cached=self.cached)

    def _partial(self) -> ChatAccumulator | None:
        return self.stream.accumulator if self.stream is not None else None

    def interrupt(self) -> TurnResult:
        partial = self._partial()
        turn = self._commit(INTERRUPTED, partial)
        view = self._view("interrupted", None, partial)
        self._final(view, self._images(partial), turn)
        return TurnResult(text=view.text, turn=turn, interrupted=True, view=view)

    def fail(self, err: OpenRouterError, status: str = "error") -> TurnResult:
        """Show the card under whatever had arrived; ``status`` "invalid" is a complete answer that failed
        validation (not a partial one)."""
        partial = err.partial or self._partial()
        self._spend(partial if partial not in self.accs else None)
        self.session.last_error = err
        view = self._view(status, err, partial)
        raw = getattr(err, "raw_text", None)
        if raw and not view.text:
            view.text = raw
        self._final(view, self._images(partial))
        return TurnResult(text=view.text, error=err, view=view)

    def release(self) -> None:
        with self._lock:
            self.done = True  # a ticker still running stops touching the sink
        if self.began and not self._committed:
            self.session.store.release(self.pending)


def _join(parts: Any) -> str:
    return "\n\n".join(p for p in parts if p)


def _sum_usage(accs: list[ChatAccumulator]) -> dict[str, Any]:
    """Tokens and cost over every step of a turn (a flat dict, as stored on the turn)."""
    total: dict[str, Any] = {}
    for acc in accs:
        if acc.usage is None:
            continue
        usage = acc.usage.model_dump(exclude_none=True)
        details = usage.get("completion_tokens_details") or {}
        usage["reasoning_tokens"] = details.get("reasoning_tokens") if isinstance(details, dict) else None
        for key in ("prompt_tokens", "completion_tokens", "total_tokens", "reasoning_tokens", "cost"):
            if isinstance(usage.get(key), (int, float)):
                total[key] = total.get(key, 0) + usage[key]
    return total


def _tool_run_dict(tool_run: Any) -> dict[str, Any]:
    """A tool call with what came of it, for the tool card."""
    return {"id": tool_run.call_id, "type": "function",
            "function": {"name": tool_run.name, "arguments": _json_text(tool_run.arguments)},
            "result": tool_run.result, "error": tool_run.error}


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)
