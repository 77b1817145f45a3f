"""One turn: claim the thread, pre-send policy, the request(s) and the tool loop, then finishing.

The two drivers, :func:`run_sync` (a cell: a blocking read, interrupts are KeyboardInterrupt) and
:func:`run_async` (the panel: the kernel's event loop, Stop cancels the task), differ only in their I/O:
how a request is sent and read, how a tool runs (in a worker thread on the loop, so Stop stays responsive)
and which ticker runs beside the read. Everything else is :class:`TurnRun`.

A turn is committed only when its answer completed, or was interrupted after some answer arrived (then it
is kept, marked "interrupted"). A failed turn is shown with its error card and never enters the context;
an interrupt before any answer keeps nothing, so no empty assistant message is ever sent later.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from . import defaults, render
from .accumulate import ChatAccumulator, result_to_chunk
from .client import request_params
from .conversation import ConversationStore, Pending, Turn, TurnStatus
from .display import Sink
from .errors import OpenRouterError, ThreadBusyError, TurnInterrupted
from .turn_finish import error_view, footer, has_answer, join, make_turn, metadata, tool_call_rows
from .turn_policy import CachePolicy
from .turn_stream import StreamFeed, TaskTicker, ThreadTicker

if TYPE_CHECKING:  # pragma: no cover
    from .cache import ResponseCache
    from .client import OpenRouter
    from .types import ChatResult, ModelInfo


@dataclass
class TurnRequest:
    """Everything one turn needs besides the sink."""

    prompt: Any  # str or a list of content parts
    params: dict[str, Any]  # request body fields except messages/stream (unknown ones go in extra_body)
    thread: str | None = None
    system: str | None = None
    memory: bool = True
    new: bool = False
    cell_id: str | None = None
    execution: int | str | None = None  # which run of the cell: calls in one run are separate turns
    stream: bool = True
    keep_system: bool = False  # -s given: the thread keeps this system prompt once the turn succeeds
    cache: bool = True  # may be answered from / recorded into the response cache (when the cache is on)
    tools: Any = None  # a tools.ToolBox, or None
    max_steps: int = defaults.MAX_STEPS  # tool round trips at most
    schema: Any = None  # a schema.StructuredSpec, or None


@dataclass
class TurnResult:
    """What happened: the committed turn (if any), the answer text, the error or interruption."""

    text: str = ""
    turn: Turn | None = None  # None when nothing was kept (a failure, --once, an interrupt before any answer)
    error: OpenRouterError | None = None
    interrupted: bool = False
    view: render.TurnView = field(default_factory=render.TurnView)
    value: Any = None  # the validated structured answer, with a schema
    cached: bool = False


class TurnHost(Protocol):
    """What a turn needs from the session: the store, the shared client, the budget and the spend."""

    store: ConversationStore
    spent: float
    last_error: OpenRouterError | None
    cache_warned: bool

    @property
    def cache(self) -> ResponseCache | None: ...
    @property
    def on_sandbox(self) -> bool: ...
    @property
    def budget(self) -> float | None: ...
    def client(self) -> OpenRouter: ...
    def hold_client(self) -> OpenRouter: ...
    def let_go(self, client: OpenRouter) -> None: ...
    def check_budget(self, req: TurnRequest, messages: list[dict[str, Any]]) -> None: ...


def fold(result: ChatResult) -> ChatAccumulator:
    """A non-streaming (or replayed) result as an accumulator, so every path ends the same way."""
    acc = ChatAccumulator()
    acc.add(result_to_chunk(result))
    return acc


class TurnRun:
    """The state of one turn and every step of it but the I/O. A turn is one or more requests: with
    tools, each request's tool calls are run and their results sent in the next, up to ``max_steps``."""

    def __init__(self, host: TurnHost, req: TurnRequest, sink: Sink, interval: float) -> None:
        self.host, self.req, self.sink = host, req, sink
        self.model = str(req.params.get("model") or defaults.MODEL)
        self.feed = StreamFeed(sink, self.model, interval)
        self.policy = CachePolicy(host, enabled=req.cache and req.tools is None)
        self.send_params = request_params(req.params)
        self.pending: Pending
        self.stream: Any = None  # the open event stream (its accumulator is the partial answer)
        self.accs: list[ChatAccumulator] = []  # finished requests
        self.extra: list[dict[str, Any]] = []  # assistant tool-call and tool messages between requests
        self.round_starts: list[int] = []  # where each tool round begins in ``extra``
        self.tool_runs: list[Any] = []
        self.cached = False
        self.max_steps_reached = False
        self.began = False  # the thread is claimed (and must be released)
        self.committed = False

    # -- before and between requests ---------------------------------------------------------
    def begin(self) -> None:
        store = self.host.store
        if self.req.new:
            if store.is_busy(self.req.thread):
                raise ThreadBusyError(self.req.thread or store.DEFAULT)
            store.reset(self.req.thread)
        req = self.req
        self.pending = store.begin(req.thread, req.prompt, req.cell_id, system=req.system, memory=req.memory,
                                   execution=req.execution)
        self.began = True
        self.feed.start()

    def first_request(self) -> list[dict[str, Any]] | None:
        """The first request's messages, or None when a recorded answer replays (no budget check then)."""
        messages = self.pending.messages
        recorded = self.policy.lookup(self.req.params, messages)
        if recorded is not None:
            self.cached = True
            self.step_done(fold(recorded))
            return None
        self.host.check_budget(self.req, messages)
        return messages

    def step_done(self, acc: ChatAccumulator) -> None:
        self.accs.append(acc)
        self.stream = None
        self.feed.answered = True
        self._spend(acc)

    def tool_calls(self) -> list[Any]:
        """The tool calls to run before the next request; none when the turn's answer is complete."""
        acc = self.accs[-1]
        if self.req.tools is None or not acc.tool_calls:
            return []
        if len(self.round_starts) >= self.req.max_steps:
            self.max_steps_reached = True
            return []
        return list(acc.tool_calls)

    def next_request(self, tool_runs: list[Any]) -> list[dict[str, Any]]:
        """Record a finished tool round and give the next request's messages (budget checked again)."""
        self.round_starts.append(len(self.extra))
        self.extra.append(self.accs[-1].message())  # reasoning_details go back unmodified
        self.tool_runs += tool_runs
        self.extra += [r.message() for r in tool_runs]
        self.feed.separate_steps()
        messages = self.pending.messages + self.extra
        self.host.check_budget(self.req, messages)
        return messages

    def _spend(self, acc: ChatAccumulator | None) -> None:
        cost = getattr(acc.usage, "cost", None) if acc is not None and acc.usage is not None else None
        if isinstance(cost, (int, float)):
            self.host.spent += float(cost)

    # -- the end of the turn -----------------------------------------------------------------
    def succeed(self) -> TurnResult:
        value = None
        if self.req.schema is not None:
            try:
                value = self.req.schema.parse(self.accs[-1].text)
            except OpenRouterError as err:
                return self.fail(err, status=TurnStatus.INVALID)
        first = self.accs[0]
        if len(self.accs) == 1 and not self.cached and not first.tool_calls:
            self.policy.record(first.result(), first.model)
        turn = self._commit(TurnStatus.OK, self.accs)
        view = self._view(TurnStatus.MAX_STEPS if self.max_steps_reached else "", None, self.accs)
        self._show(view, self.accs, turn)
        return TurnResult(text=view.text, turn=turn, view=view, value=value, cached=self.cached)

    def interrupt(self) -> TurnResult:
        """Keep what arrived (not trailing requests that brought no answer); nothing when nothing did."""
        shown = self._with_partial(self._partial())
        kept = list(shown)
        while kept and not has_answer(kept[-1:]):
            kept.pop()
        turn = self._commit(TurnStatus.INTERRUPTED, kept)
        self._cost_later(shown[-1] if shown else None, None, turn)
        status = TurnStatus.INTERRUPTED if kept else TurnStatus.NOTHING_KEPT
        view = self._view(status, None, shown)
        self._show(view, shown, turn)
        return TurnResult(text=view.text, turn=turn, interrupted=True, view=view)

    def interrupt_message(self, result: TurnResult) -> str:
        name = self.pending.thread.name
        if result.turn is not None:
            return (f"interrupted: the partial answer ({len(result.turn.text)} characters) is kept in thread "
                    f"{name!r}, marked \"interrupted\"")
        if result.text:
            return f"interrupted: the partial answer ({len(result.text)} characters) is shown, not kept (--once)"
        return f"interrupted before any answer arrived: nothing was kept (thread {name!r} is unchanged)"

    def fail(self, err: OpenRouterError, status: TurnStatus = TurnStatus.ERROR) -> TurnResult:
        """Show the card under whatever had arrived; INVALID is a complete answer that failed validation."""
        partial = err.partial or self._partial()
        self._spend(partial if partial not in self.accs else None)
        if partial is not None and partial not in self.accs:
            self._cost_later(partial, err.generation_id, None)
        self.host.last_error = err
        shown = self._with_partial(partial)
        view = self._view(status, err, shown)
        raw = getattr(err, "raw_text", None)
        if raw and not view.text:
            view.text = raw
        self._show(view, shown, None)
        return TurnResult(text=view.text, error=err, view=view)

    def settle(self, exc: BaseException, interrupt: type[BaseException]) -> TurnResult:
        """The result of a turn that raised: a card for a typed error, the kept part for an interrupt."""
        if isinstance(exc, OpenRouterError):
            return self.fail(exc)
        if isinstance(exc, interrupt) and self.began:
            return self.interrupt()
        raise exc

    def close(self, ticker: ThreadTicker | TaskTicker | None, client: OpenRouter | None) -> None:
        """Release the thread if nothing was committed, stop the ticker, let go of the client."""
        try:
            self.feed.end()
            if self.began and not self.committed:
                self.host.store.release(self.pending)
        finally:
            if ticker is not None:
                ticker.stop()
            if client is not None:
                self.host.let_go(client)

    def _cost_later(self, acc: ChatAccumulator | None, generation_id: str | None, turn: Turn | None) -> None:
        """A stream that ended without its cost: look the real one up in the background (reconcile.py)."""
        from . import reconcile

        if acc is None or reconcile.has_cost(acc) or self.cached or not hasattr(self.host, "reconciled"):
            return
        gen = generation_id or getattr(self.stream, "generation_id", None) or acc.id
        if gen:
            reconcile.look_up_later(self.host, gen, self.model, turn)

    def _model_entry(self) -> ModelInfo | None:
        """The model's prices if ``/models`` is already loaded (the turn is over: no request for them)."""
        return self.host.client().known_model(self.model)

    def _partial(self) -> ChatAccumulator | None:
        return self.stream.accumulator if self.stream is not None else None

    def _with_partial(self, partial: ChatAccumulator | None) -> list[ChatAccumulator]:
        return self.accs + ([partial] if partial is not None and partial not in self.accs else [])

    def _commit(self, status: TurnStatus, accs: list[ChatAccumulator]) -> Turn | None:
        if not self.req.memory or not accs:
            return None
        rounds = self.round_starts  # a kept request's own tool round goes if its assistant is the last
        extra = self.extra[: rounds[len(accs) - 1]] if len(rounds) >= len(accs) else self.extra
        turn = make_turn(self.req.prompt, accs, extra, status=status, model=self.model,
                         params=self.req.params, cached=self.cached, info=self._model_entry())
        self.committed = True
        if self.req.keep_system and self.req.system:
            self.pending.thread.system = self.req.system
        return self.host.store.commit(self.pending, turn)

    def _view(self, status: TurnStatus | str, error: OpenRouterError | None,
              accs: list[ChatAccumulator]) -> render.TurnView:
        footer_status = TurnStatus.INTERRUPTED if status == TurnStatus.NOTHING_KEPT else status
        return render.TurnView(
            text=join(a.text for a in accs), reasoning=join(a.reasoning for a in accs),
            tool_calls=tool_call_rows(self.tool_runs, accs), annotations=[x for a in accs for x in a.annotations],
            footer=footer(accs, model=self.model, status=str(footer_status), t0=self.feed.t0,
                          first_token=self.feed.first_token, cached=self.cached, sandbox=self.host.on_sandbox,
                          info=self._model_entry()),
            error=error_view(error) if error is not None else None, status=str(status))

    def _show(self, view: render.TurnView, accs: list[ChatAccumulator], turn: Turn | None) -> None:
        """The final output; sinks that save outputs (cells) also get the turn as metadata."""
        self.feed.end()  # the ticker stops touching the sink
        images = [url for a in accs for url in a.images]
        if turn is not None and getattr(self.sink, "keeps_metadata", False):
            self.sink.final(view, images, metadata=metadata(self.pending, turn))
        else:
            self.sink.final(view, images)


# -- the drivers: only the I/O differs ---------------------------------------------------------
def run_sync(host: TurnHost, req: TurnRequest, sink: Sink, interval: float) -> TurnResult:
    """One turn in the caller's thread; an interrupt re-raises as TurnInterrupted once the turn is shown.

    Everything after the thread is claimed sits inside the try, so an interrupt landing anywhere (even
    while the turn is being set up) releases the thread.
    """
    run = TurnRun(host, req, sink, interval)
    ticker: ThreadTicker | None = None
    client: OpenRouter | None = None
    try:
        run.begin()
        ticker = ThreadTicker(run.feed)
        client = host.hold_client()
        messages = run.first_request()
        while messages is not None:
            run.step_done(_send(run, client, messages))
            calls = run.tool_calls()
            messages = run.next_request([req.tools.run(c) for c in calls]) if calls else None
        return run.succeed()
    except BaseException as exc:
        result = run.settle(exc, KeyboardInterrupt)
        if result.interrupted:
            raise TurnInterrupted(run.interrupt_message(result)) from None
        return result
    finally:
        run.close(ticker, client)


async def run_async(host: TurnHost, req: TurnRequest, sink: Sink, interval: float) -> TurnResult:
    """The same turn on the running event loop; cancelling the task interrupts it (the panel's Stop)."""
    run = TurnRun(host, req, sink, interval)
    ticker: TaskTicker | None = None
    client: OpenRouter | None = None
    try:
        run.begin()
        ticker = TaskTicker(run.feed)
        client = host.hold_client()
        if host.budget is not None:
            await client.models_async()  # the budget estimate then reads the cached list
        messages = run.first_request()
        while messages is not None:
            run.step_done(await _send_async(run, client, messages))
            calls = run.tool_calls()
            messages = run.next_request([await req.tools.arun(c) for c in calls]) if calls else None
        return run.succeed()
    except BaseException as exc:
        return run.settle(exc, asyncio.CancelledError)
    finally:
        run.close(ticker, client)


def _send(run: TurnRun, client: OpenRouter, messages: list[dict[str, Any]]) -> ChatAccumulator:
    if not run.req.stream:
        return fold(client.chat.send(messages=messages, **run.send_params))  # type: ignore[arg-type]
    run.stream = client.chat.send(messages=messages, stream=True, **run.send_params)
    with run.stream:
        for chunk in run.stream:
            run.feed.on_chunk(chunk)
    return run.stream.accumulator


async def _send_async(run: TurnRun, client: OpenRouter, messages: list[dict[str, Any]]) -> ChatAccumulator:
    if not run.req.stream:
        return fold(await client.chat.send_async(messages=messages, **run.send_params))  # type: ignore[arg-type]
    run.stream = await client.chat.send_async(messages=messages, stream=True, **run.send_params)
    async with run.stream:
        async for chunk in run.stream:
            run.feed.on_chunk(chunk)
    return run.stream.accumulator
