"""``--compare A,B[,C,D]``: the same messages to several models at once, none continuing the thread
unless one is kept.

Each model's turn runs against its own copy of the thread (so they can run together and none changes
the real one); everything else (client, spend, budget, response cache) is the session's. In a cell the
turns run as tasks on an event loop in a worker thread, streaming into one row of columns; Ctrl-C cancels
them (each keeps what arrived, shown as interrupted). In the panel the same tasks run on the kernel's loop
(:func:`run_all`), and Stop cancels them. In terminal IPython they run one after another.
Keeping a model's answer (``--keep`` or ``%chat keep``) commits its turn to the real thread, where the
cell's turn would land: a re-run replaces it as usual, and a re-run that keeps nothing removes it.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .conversation import ConversationStore, Turn
from .errors import OrMagicError, ThreadBusyError
from .prepare import Surroundings, prepare_request
from .turn import TurnRequest, TurnResult, run_async, run_sync
from .turn_finish import error_view, metadata

if TYPE_CHECKING:  # pragma: no cover
    from .display import Sink
    from .options import ChatOptions
    from .session import Session


@dataclass
class CompareRecord:
    """One compare's outcome, remembered so ``%chat keep MODEL`` can keep an answer afterwards."""

    requests: dict[str, TurnRequest]
    results: dict[str, TurnResult] = field(default_factory=dict)
    kept: str | None = None

    def turn(self, model: str) -> Turn | None:
        result = self.results.get(model)
        return result.turn if result is not None and result.error is None else None


class _ScratchHost:
    """The session as one compared turn sees it: its own copy of the thread, the rest shared."""

    def __init__(self, session: Session, store: ConversationStore) -> None:
        self._session = session
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    spent = property(lambda self: self._session.spent,
                     lambda self, value: setattr(self._session, "spent", value))
    last_error = property(lambda self: self._session.last_error,
                          lambda self, value: setattr(self._session, "last_error", value))
    cache_warned = property(lambda self: self._session.cache_warned,
                            lambda self, value: setattr(self._session, "cache_warned", value))


def _scratch(store: ConversationStore, name: str | None) -> ConversationStore:
    """A store holding a copy of the thread only: what the compared turn is sent with and commits to."""
    scratch = ConversationStore()
    thread = store.get(name)
    scratch.threads[thread.name] = copy.deepcopy(thread)
    return scratch


def prepare_requests(opts: ChatOptions, prompt: str, env: Surroundings) -> list[tuple[TurnRequest, list[str]]]:
    """One request per compared model, by the step any cell uses (each its own caching marker and checks)."""
    return [prepare_request(replace(opts, params={**opts.params, "model": m}), prompt, env) for m in opts.compare]


async def run_all(session: Session, reqs: list[TurnRequest], sinks: list[Sink],
                  interval: float) -> tuple[list[TurnResult | BaseException], bool]:
    """Every turn at once as tasks on the running loop; (results in order, stopped).

    Cancelling the caller (Stop, Ctrl-C) cancels every turn; each keeps what arrived and still returns.
    """
    hosts = [_ScratchHost(session, _scratch(session.store, r.thread)) for r in reqs]
    tasks = [asyncio.ensure_future(run_async(h, r, s, interval))  # type: ignore[arg-type]
             for h, r, s in zip(hosts, reqs, sinks, strict=True)]
    stopped = False
    try:
        await asyncio.wait(tasks)
    except asyncio.CancelledError:
        stopped = True
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
    return [_outcome(t) for t in tasks], stopped


def _outcome(task: asyncio.Future[TurnResult]) -> TurnResult | BaseException:
    if task.cancelled():
        return asyncio.CancelledError()
    return task.exception() or task.result()


def run_together(session: Session, reqs: list[TurnRequest], sinks: list[Sink],
                 interval: float) -> tuple[list[TurnResult | BaseException], bool]:
    """Every turn at once (tasks on a loop in a worker thread); (results in order, interrupted)."""
    state: dict[str, Any] = {}

    async def main() -> list[TurnResult | BaseException]:
        state["loop"], state["task"] = asyncio.get_running_loop(), asyncio.current_task()
        try:
            return (await run_all(session, reqs, sinks, interval))[0]
        finally:
            await session.client().aclose_loop_pool()

    ctx = contextvars.copy_context()  # so ipykernel routes the worker's display updates to this cell
    worker = threading.Thread(target=lambda: state.update(out=ctx.run(asyncio.run, main())),
                              name="or_magic-compare", daemon=True)
    worker.start()
    interrupted = False
    while worker.is_alive():
        try:
            worker.join(0.1)
        except KeyboardInterrupt:
            interrupted = True
            _cancel(state)
    return state.get("out") or [], interrupted


def run_in_turn(session: Session, reqs: list[TurnRequest], sinks: list[Sink],
                interval: float) -> tuple[list[TurnResult | BaseException], bool]:
    """One after another (terminal IPython); Ctrl-C stops the one running and skips the rest."""
    out: list[TurnResult | BaseException] = []
    for req, sink in zip(reqs, sinks, strict=True):
        host = _ScratchHost(session, _scratch(session.store, req.thread))
        try:
            out.append(run_sync(host, req, sink, interval))  # type: ignore[arg-type]
        except Exception as err:  # TurnInterrupted included: it is an OpenRouterError-free plain exception
            out.append(err)
            if type(err).__name__ == "TurnInterrupted":
                return out, True
    return out, False


def _cancel(state: dict[str, Any]) -> None:
    loop, task = state.get("loop"), state.get("task")
    if loop is not None and task is not None:
        loop.call_soon_threadsafe(task.cancel)


def settle(record: CompareRecord, outcomes: list[TurnResult | BaseException]) -> dict[str, BaseException]:
    """Record each model's result; the exceptions that escaped a turn, by model (each face shows a card)."""
    escaped: dict[str, BaseException] = {}
    for model, outcome in zip(record.requests, outcomes, strict=False):
        if isinstance(outcome, BaseException):
            escaped[model] = outcome
        else:
            record.results[model] = outcome
    return escaped


def conclude(session: Session, record: CompareRecord, keep_model: str | None, stopped: bool) -> str | None:
    """After a compare: keep ``--keep``'s answer (not after a stop), remember the record for ``%chat keep``,
    and, when nothing was kept, drop what an earlier run of the same cell kept. Returns why ``--keep``
    could not keep (None when it did, or was not asked)."""
    problem = None
    if keep_model and not stopped:
        try:
            keep(session, record, keep_model)
        except (ValueError, OrMagicError) as err:
            problem = str(err)
    session.last_compare = record
    if record.kept is None:
        forget_earlier_run(session, next(iter(record.requests.values())))
    return problem


def forget_earlier_run(session: Session, req: TurnRequest) -> None:
    """A re-run of a compare cell that keeps nothing: the turn an earlier run kept leaves the thread."""
    if req.cell_id is not None and req.memory:
        session.store.drop_cell(req.thread, req.cell_id, req.execution)


def failed_models(record: CompareRecord) -> list[str]:
    """The compared models with no answer (an error card, or an exception)."""
    return [m for m in record.requests if m not in record.results or record.results[m].error is not None]


def keep(session: Session, record: CompareRecord, model: str) -> Turn:
    """Commit ``model``'s compared answer as the turn of the compare's cell; raises ValueError if it has none."""
    req = record.requests.get(model)
    turn = record.turn(model)
    if req is None:
        raise ValueError(f"{model!r} was not compared (compared: {', '.join(record.requests)})")
    if turn is None:
        raise ValueError(f"{model} has no answer to keep (it failed, or the compare ran with --once)")
    store = session.store
    if req.new:
        if store.is_busy(req.thread):
            raise ThreadBusyError(req.thread or store.DEFAULT)
        store.reset(req.thread)
    pending = store.begin(req.thread, turn.user, req.cell_id, system=req.system, memory=True,
                          execution=req.execution)
    kept = store.commit(pending, turn)
    if req.keep_system and req.system:
        pending.thread.system = req.system
    record.kept = model
    return kept


def kept_metadata(session: Session, record: CompareRecord) -> dict[str, Any] | None:
    """The kept turn as output metadata (so a restart rebuilds the thread from the notebook)."""
    if record.kept is None:
        return None
    req = record.requests[record.kept]
    thread = session.store.get(req.thread)
    turn = next((t for t in reversed(thread.turns) if t.cell_id == req.cell_id), None)
    return metadata(_Landing(thread), turn) if turn is not None else None


@dataclass
class _Landing:
    """What :func:`~or_magic.turn_finish.metadata` reads of a pending turn: its thread."""

    thread: Any


def failure_view(err: BaseException) -> Any:
    """A column's error card for an exception that was not a typed API error."""
    from . import render

    return render.TurnView(error=error_view(err), status="error")
