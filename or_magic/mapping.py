"""Prompts over data: one one-shot request per row, N in flight, resumable, into a DataFrame.

A map is the turn's request step run once per row (system prompt + that row's message, every option on
every row), not a second pipeline. Workers share one connection pool and one *gate*: a 429/503/529 closes
the gate for its ``Retry-After`` and every worker waits on it, instead of N rows each hammering the server.
The client's own retries are kept for connection errors and other 5xx, but never for the gate's statuses.
Each answered row is journaled at once (:mod:`or_magic.journal`), so an interrupt keeps it and a re-run
never pays for it again. ``run_map`` (sync, usable inside a running kernel) and ``run_map_async`` drive it.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import defaults
from .client import OpenRouter, RetryConfig
from .errors import OpenRouterError, scrub
from .journal import MapJournal
from .map_pool import private_clients
from .map_rows import NOT_RUN, RowOutcome, digest, messages_for, prompt_for, result_frame, rows_of, schema_fields
from .progress import MapStats, NullProgress, Progress


@dataclass
class MapJob:
    """What to map: ``params`` are the request body fields a ``TurnRequest.params`` holds (model,
    temperature, max_tokens, response_format, …); ``schema`` a :class:`~or_magic.schema.StructuredSpec`."""

    data: Any
    template: str
    params: dict[str, Any] = field(default_factory=dict)
    system: str | None = None
    schema: Any = None
    namespace: Mapping[str, Any] = field(default_factory=dict)
    concurrency: int = defaults.MAP_CONCURRENCY
    fresh: bool = False
    journal: bool = True
    journal_dir: Any = None
    max_retries: int = defaults.MAP_MAX_RETRIES
    preamble: str = ""  # put before every row's prompt as is (e.g. a --context block), never interpolated


@dataclass
class MapResult:
    """The new DataFrame, the final counts, and each row's outcome (in row order)."""

    frame: Any
    stats: MapStats
    outcomes: list[RowOutcome]


def request_params(job: MapJob) -> dict[str, Any]:
    """The body fields sent with every row (the schema's response_format added when not given)."""
    params = {k: v for k, v in job.params.items() if k not in {"messages", "stream", "stream_options"}}
    if job.schema is not None and "response_format" not in params:
        params["response_format"] = job.schema.response_format()
    return params


def journal_key(server_url: str, job: MapJob) -> str:
    """The map's identity: what is sent besides the rows (server, parameters, system, template)."""
    return digest({"server": server_url.rstrip("/"), "params": request_params(job), "system": job.system,
                   "template": job.preamble + job.template})


def gate_retries(client: OpenRouter) -> RetryConfig:
    """The client's own policy minus the gate's statuses, so only the gate waits on those."""
    base = client.retry_config
    return replace(base, status_codes=frozenset(base.status_codes) - set(defaults.MAP_GATE_STATUSES))


class Gate:
    """One pause shared by every worker: closed until a deadline, reopened by a single timer."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.closures = 0

    async def wait(self) -> None:
        await self._open.wait()

    def close_for(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(seconds, 0.0)
        if deadline <= self._deadline and not self._open.is_set():
            return
        self.closures += 1
        self._deadline = deadline
        self._open.clear()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(deadline, self._open.set)


class MapRun:
    """One map: rows, prompts, what the journal already answered (building it sends and writes nothing),
    then ``run``, which may be cancelled."""

    def __init__(self, client: OpenRouter, job: MapJob) -> None:
        if not 1 <= job.concurrency <= defaults.MAP_CONCURRENCY_RANGE[1]:
            raise ValueError(f"concurrency must be 1 to {defaults.MAP_CONCURRENCY_RANGE[1]}, not {job.concurrency}")
        self.client, self.job = client, job
        self.params = request_params(job)
        self.retries = gate_retries(client)
        self.rows = rows_of(job.data)
        self.messages = [messages_for(job.system, job.preamble + prompt_for(job.template, r, job.namespace))
                         for r in self.rows]
        self.digests = [digest({"messages": m, "params": self.params}) for m in self.messages]
        self.outcomes = [RowOutcome() for _ in self.rows]
        self.stats = MapStats(total=len(self.rows))
        self.journal: MapJournal | None = None
        if job.journal and self.rows:
            self.journal = MapJournal(journal_key(client.server_url, job), job.journal_dir)
        self.pending = self._resume()
        self.sent: list[int] = []  # positions, once per request actually sent (for tests and figures)

    def _resume(self) -> list[int]:
        """Fill rows the journal already answered; the positions still to send."""
        if self.journal is None:
            return list(range(len(self.rows)))
        known = {} if self.job.fresh else self.journal.load()
        pending = []
        for i, key in enumerate(self.digests):
            record = known.get(key)
            if record is None:
                pending.append(i)
                continue
            self._finish(i, self._from_record(record), record=False)
            self.stats.resumed += 1
        return pending

    def _from_record(self, record: dict[str, Any]) -> RowOutcome:
        outcome = RowOutcome(status=str(record.get("status", "ok")), text=record.get("text"),
                             error=str(record.get("error") or ""), cost=record.get("cost"),
                             model=record.get("model"), resumed=True)
        if outcome.status == "ok" and self.job.schema is not None and outcome.text is not None:
            outcome = self._parse(outcome)
        return outcome

    def _parse(self, outcome: RowOutcome) -> RowOutcome:
        try:
            outcome.value = self.job.schema.parse(outcome.text or "")
        except OpenRouterError as err:
            outcome.status, outcome.error = "failed", error_text(err)
        return outcome

    def _finish(self, i: int, outcome: RowOutcome, record: bool = True) -> None:
        self.outcomes[i] = outcome
        if outcome.status == "ok":
            self.stats.done += 1
        else:
            self.stats.failed += 1
        self.stats.cost += outcome.cost or 0.0
        if record and self.journal is not None and outcome.text is not None:  # paid for: never send again
            self.journal.append({"digest": self.digests[i], "position": i, "status": outcome.status,
                                 "text": outcome.text, "error": outcome.error, "cost": outcome.cost,
                                 "model": outcome.model})

    # ------------------------------------------------------------------------------------ running

    async def run(self, clients: list[OpenRouter] | None = None) -> None:
        """Send every pending row, ``concurrency`` at a time (worker k on ``clients[k % len]``, default the
        run's client); a cancel keeps what finished."""
        if self.journal is not None:
            self.journal.start(fresh=self.job.fresh)
            if not self.journal.usable:
                self.stats.note = "not recorded: the journal file is not ours or not writable"
        pool = clients or [self.client]
        gate, queue = Gate(), list(reversed(self.pending))
        workers = [asyncio.ensure_future(self._worker(gate, queue, pool[k % len(pool)]))
                   for k in range(min(self.job.concurrency, len(queue)))]
        try:
            await asyncio.gather(*workers)
        except asyncio.CancelledError:
            self.stats.interrupted = True
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        finally:
            self.stats.ended = self.stats.started + self.stats.elapsed

    async def _worker(self, gate: Gate, queue: list[int], client: OpenRouter) -> None:
        while queue:
            i = queue.pop()
            self._finish(i, await self._send(i, gate, client))

    async def _send(self, i: int, gate: Gate, client: OpenRouter) -> RowOutcome:
        attempts = 0
        while True:
            await gate.wait()
            attempts += 1
            self.sent.append(i)
            try:
                result = await client.chat.send_async(messages=self.messages[i], stream=False,
                                                           retries=self.retries, **self.params)
            except OpenRouterError as err:
                delay = self._gate_delay(err, attempts)
                if delay is None:
                    return RowOutcome(status="failed", error=error_text(err), attempts=attempts)
                gate.close_for(delay)
                continue
            except (ValueError, TypeError) as err:  # a bad parameter: this row's error, not a traceback
                return RowOutcome(status="failed", error=error_text(err), attempts=attempts)
            return self._answer(result, attempts)

    def _gate_delay(self, err: OpenRouterError, attempts: int) -> float | None:
        """How long the gate closes for this error, or None when the row fails now."""
        if err.status_code not in defaults.MAP_GATE_STATUSES or attempts > self.job.max_retries:
            return None
        delay = err.retry_after if err.retry_after is not None else self.retries.backoff(attempts - 1, 0.5)
        return delay if delay <= defaults.MAP_MAX_GATE_WAIT else None

    def _answer(self, result: Any, attempts: int) -> RowOutcome:
        message = result.choices[0].message if result.choices else None
        text = (message.content if message is not None else None) or ""
        cost = result.usage.cost if result.usage is not None else None
        outcome = RowOutcome(status="ok", text=text, error="", cost=cost, model=result.model, attempts=attempts)
        return self._parse(outcome) if self.job.schema is not None else outcome

    def result(self) -> MapResult:
        if self.stats.ended is None:
            self.stats.ended = self.stats.started + self.stats.elapsed
        frame = result_frame(self.job.data, self.outcomes, schema_fields(self.job.schema))
        return MapResult(frame, self.stats, self.outcomes)


def error_text(err: BaseException) -> str:
    """A row's error: "ClassName: message", scrubbed, one line."""
    message = getattr(err, "message", None) or str(err)
    return scrub(f"{type(err).__name__}: {message}".replace("\n", " "))


# ------------------------------------------------------------------------------------------ drivers


async def _ticker(run: MapRun, progress: Progress, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        progress.update(run.stats)


async def run_map_async(client: OpenRouter, job: MapJob, progress: Progress | None = None,
                        interval: float = 1 / defaults.UPDATE_RATE) -> MapResult:
    """The map on the running loop and the client's shared pool; cancelling returns the partial result."""
    progress = progress or NullProgress()
    run = MapRun(client, job)
    progress.start(run.stats)
    ticker = asyncio.ensure_future(_ticker(run, progress, interval))
    try:
        await run.run()
    finally:
        ticker.cancel()
    result = run.result()
    progress.finish(result.stats, result.frame)
    return result


def run_map(client: OpenRouter, job: MapJob, progress: Progress | None = None,
            interval: float = 1 / defaults.UPDATE_RATE) -> MapResult:
    """The map from synchronous code, inside a kernel too: its own loop on a worker thread, the progress
    drawn from this thread, Ctrl-C / the stop button cancelling what is in flight."""
    progress = progress or NullProgress()
    run = MapRun(client, job)
    progress.start(run.stats)
    loop = asyncio.new_event_loop()
    task_box: dict[str, Any] = {}

    async def main() -> None:
        task_box["task"] = asyncio.current_task()
        if task_box.get("stop"):
            run.stats.interrupted = True
            return
        own = private_clients(client, job.concurrency)
        try:
            await run.run(own)
        finally:
            for clone in own:
                if clone is not client:
                    await clone.aclose()

    finished = threading.Event()  # not Thread.is_alive: a join interrupted by Ctrl-C can misreport it

    def target() -> None:
        try:
            loop.run_until_complete(main())
        finally:
            loop.close()
            finished.set()

    threading.Thread(target=contextvars.copy_context().run, args=(target,), name="or_magic-map",
                     daemon=True).start()
    try:
        _wait(finished, run, progress, interval)
    except KeyboardInterrupt:
        run.stats.interrupted = True
        _stop(loop, task_box, finished)
    result = run.result()
    progress.finish(result.stats, result.frame)
    return result


def _wait(finished: threading.Event, run: MapRun, progress: Progress, interval: float) -> None:
    while not finished.wait(interval):
        progress.update(run.stats)


def _stop(loop: asyncio.AbstractEventLoop, task_box: dict[str, Any], finished: threading.Event) -> None:
    """Cancel the map's task and wait (bounded) for it to wind down; a second Ctrl-C is absorbed."""
    task_box["stop"] = True
    task = task_box.get("task")
    if task is not None:
        loop.call_soon_threadsafe(task.cancel)
    for _ in range(100):
        try:
            if finished.wait(0.1):
                return
        except KeyboardInterrupt:
            continue


__all__ = ["MapJob", "MapResult", "MapRun", "Gate", "run_map", "run_map_async", "journal_key", "NOT_RUN"]
