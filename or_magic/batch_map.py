"""``--batch``: a map's unanswered rows as ONE Batch API job, polled until done, merged back by ``custom_id``.

The rows are those :class:`~or_magic.mapping.MapRun` would send (same bodies, same journal), but OpenRouter
runs them: one ``POST /batches``, then ``GET /batches/{id}`` at a backing-off, capped interval, the progress
driven by ``request_counts``. The batch id is written to disk next to the map's journal, under a key made of
what was submitted, so re-running the cell (after an interrupt or a kernel restart) resumes the same batch
instead of paying for a second one. An interrupt stops polling only: the batch keeps running.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import defaults
from .client import OpenRouter, build_request_body
from .errors import BatchRowError, OpenRouterError
from .journal import journal_directory
from .map_rows import RowOutcome, digest
from .mapping import MapJob, MapResult, MapRun, error_text, journal_key
from .progress import NullProgress, Progress

FORMAT = "or_magic.batch/1"
logger = logging.getLogger(__name__)


def batch_key(run: MapRun) -> str:
    """What a batch submits: the map's identity plus the digest of every row still unanswered."""
    return digest({"map": journal_key(run.client.server_url, run.job), "rows": [run.digests[i] for i in run.pending]})


def custom_id(position: int) -> str:
    return f"row-{position}"


def position_of(custom: str) -> int | None:
    name, _, number = custom.partition("-")
    return int(number) if name == "row" and number.isdigit() else None


class BatchRecord:
    """The id of the batch submitted for one key, in ``<journal dir>/<key>.batch.json`` (no key, no body)."""

    def __init__(self, key: str, directory: Any = None) -> None:
        self.key = key
        self.path = journal_directory(directory) / f"{key}.batch.json"

    def load(self) -> str | None:
        try:
            record = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return None
        ours = isinstance(record, dict) and record.get("format") == FORMAT and record.get("key") == self.key
        batch_id = record.get("batch_id") if ours else None
        return batch_id if isinstance(batch_id, str) and batch_id else None

    def save(self, batch_id: str) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"format": FORMAT, "key": self.key, "batch_id": batch_id}), "utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:  # the batch still runs; only a resume after a restart is lost
            logger.warning("batch id %s not recorded in %s (%s)", batch_id, self.path, exc)

    def clear(self) -> None:
        if self.load() is not None:
            self.path.unlink(missing_ok=True)


@dataclass
class BatchOutcome:
    """The map's result plus which batch ran it, whether it was resumed, and whether it finished."""

    result: MapResult
    batch_id: str | None
    resumed: bool
    finished: bool


def batch_requests(run: MapRun) -> list[dict[str, Any]]:
    return [{"custom_id": custom_id(i), "body": build_request_body(messages=run.messages[i], **run.params)}
            for i in run.pending]


def _submit_or_resume(client: OpenRouter, run: MapRun, record: BatchRecord) -> tuple[Any, bool]:
    """The recorded batch if the server still has it, else a new submission (recorded at once)."""
    batch_id = None if run.job.fresh else record.load()
    if batch_id is not None:
        try:
            return client.batches.get(batch_id), True
        except OpenRouterError as err:
            if err.status_code != 404:
                raise
    batch = client.batches.create(str(run.params.get("model", "")), batch_requests(run))
    record.save(batch.id)
    return batch, False


def _poll(client: OpenRouter, batch: Any, run: MapRun, progress: Progress, sleep: Callable[[float], None]) -> Any:
    """GET the batch until it finishes, backing off from the first interval to the cap."""
    base_done, base_failed = run.stats.done, run.stats.failed
    interval = defaults.BATCH_POLL_INTERVAL
    while True:
        counts = batch.request_counts
        run.stats.done, run.stats.failed = base_done + counts.completed, base_failed + counts.failed
        progress.update(run.stats)
        if batch.finished:
            return batch
        sleep(interval)
        interval = min(defaults.BATCH_MAX_POLL_INTERVAL, interval * defaults.BATCH_POLL_BACKOFF)
        batch = client.batches.get(batch.id)


def merge(run: MapRun, batch: Any) -> None:
    """Every result into its row (answers journaled); rows a finished batch did not answer fail."""
    seen = set()
    for result in batch.results or []:
        i = position_of(result.custom_id)
        if i is None or i not in run.pending or i in seen:
            continue
        seen.add(i)
        body = result.response.body if result.response is not None else None
        if body is not None and result.error is None:
            run._finish(i, run._answer(body, 1))
        else:
            message = result.error.message if result.error is not None else "no answer in the batch result"
            run._finish(i, RowOutcome(status="failed", error=error_text(BatchRowError(message)), attempts=1))
    if batch.finished:
        for i in run.pending:
            if i not in seen:
                run._finish(i, RowOutcome(status="failed", error=f"BatchRowError: batch {batch.status}, no result"))


def run_batch_map(client: OpenRouter, job: MapJob, progress: Progress | None = None, *,
                  on_batch: Callable[[str, bool], None] | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> BatchOutcome:
    """Submit (or resume) the batch for the job's unanswered rows, poll it, merge; Ctrl-C stops polling only."""
    progress = progress or NullProgress()
    run = MapRun(client, job)
    progress.start(run.stats)
    batch_id, resumed, finished = None, False, True
    if run.pending:
        record = BatchRecord(batch_key(run), job.journal_dir)
        batch, resumed = _submit_or_resume(client, run, record)
        batch_id = batch.id
        if on_batch is not None:
            on_batch(batch_id, resumed)
        base = (run.stats.done, run.stats.failed)
        try:
            batch = _poll(client, batch, run, progress, sleep)
        except KeyboardInterrupt:
            run.stats.interrupted = True
        run.stats.done, run.stats.failed = base  # the merge counts the batch's rows
        if run.journal is not None:
            run.journal.start(fresh=job.fresh)
        merge(run, batch)
        finished = batch.finished
        if finished:
            record.clear()
    result = run.result()
    progress.finish(result.stats, result.frame)
    return BatchOutcome(result, batch_id, resumed, finished)

