"""``%%chat --map VAR``: the cell body as a prompt template, sent once per row of a notebook table.

The options go through the step a turn uses (:func:`or_magic.prepare.prepare_request`: parameters, the
thread's system prompt or ``-s``, ``--schema``, ``--param``), ``--context`` becomes a preamble before every
row, and no thread gets a turn. The engine (:mod:`or_magic.mapping`) sends the rows; ``--batch`` hands them
to :mod:`or_magic.batch_map`. Budget, dry run and bad input are settled before anything is sent.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.display import display

from . import render
from .map_api import attach_summary, check_budget, plan
from .mapping import MapJob, MapResult, run_map
from .prepare import Surroundings, prepare_request
from .progress import auto_progress

if TYPE_CHECKING:  # pragma: no cover
    from .magics import ChatMagics
    from .options import ChatOptions


def map_job(opts: ChatOptions, template: str, env: Surroundings, journal_dir: Any = None) -> MapJob:
    """The cell's options and body as a :class:`MapJob` (``UsageError`` for anything that cannot run)."""
    data = _data(opts.map_var or "", env.namespace)
    store = env.store
    known = (opts.thread or store.DEFAULT) in store.threads
    try:
        req, _ = prepare_request(replace(opts, context=[]), "", env)
    finally:
        if not known:  # reading a thread's system prompt must not create the thread
            store.threads.pop(opts.thread or store.DEFAULT, None)
    job = MapJob(data, template, params=req.params, system=req.system, schema=req.schema,
                 namespace=env.namespace, concurrency=opts.concurrency, fresh=opts.fresh, journal_dir=journal_dir,
                 preamble=_preamble(opts, env.namespace))
    _check_rows(job)
    return job


def _data(name: str, ns: dict[str, Any]) -> Any:
    if name not in ns:
        raise UsageError(f"--map {name}: no such variable in the notebook")
    return ns[name]


def _check_rows(job: MapJob) -> None:
    from .map_rows import rows_of

    try:
        rows = rows_of(job.data)
    except (TypeError, ImportError) as err:
        raise UsageError(f"--map: {err}") from None
    if not rows:
        raise UsageError("--map: the data has no rows")


def _preamble(opts: ChatOptions, ns: dict[str, Any]) -> str:
    if not opts.context:
        return ""
    from . import context

    try:
        return context.context_block(opts.context, ns) + "\n\n"
    except KeyError as err:
        raise UsageError(str(err).strip("'\"")) from None


def journal_dir(magics: ChatMagics) -> Path | None:
    """Maps are recorded under the response cache directory (``ChatMagics.cache_dir``, else the default)."""
    return Path(magics.cache_dir).expanduser() / "maps" if magics.cache_dir else None


def run_map_cell(magics: ChatMagics, opts: ChatOptions, template: str, env: Surroundings) -> None:
    """Dry run, budget check, then the map (or the batch); bind ``-o`` and count the spend."""
    session = magics.session
    job = map_job(opts, template, env, journal_dir(magics))
    client = session.client()
    if opts.dry_run:
        return show_map_plan(client, job)
    try:
        check_budget(client, job, magics.budget, session.spent)
    except Exception as err:  # BudgetExceededError, or /models unreachable: a card, nothing sent
        return _error(magics, err)
    if opts.batch:
        from .batch_map import run_batch_map

        outcome = run_batch_map(client, job, auto_progress(), on_batch=_batch_notice)
        result = outcome.result
    else:
        result = run_map(client, job, auto_progress())
    session.spent += sum(o.cost or 0.0 for o in result.outcomes if not o.resumed)
    if opts.out:
        magics.shell.user_ns[opts.out] = attach_summary(result)
    if result.stats.interrupted:
        print(resume_note(result, opts))
    return None


def resume_note(result: MapResult, opts: ChatOptions) -> str:
    left = result.stats.not_run
    bound = f"; {opts.out} holds the {result.stats.total - left} finished rows" if opts.out else ""
    if opts.batch:
        return (f"interrupted: polling stopped, the batch keeps running{bound}. Re-run this cell to resume it "
                "(nothing is submitted again).")
    return (f"interrupted: {left} rows not run{bound}. Re-run this cell to send only those "
            "(answered rows are kept on disk); --fresh sends every row again.")


def _batch_notice(batch_id: str, resumed: bool) -> None:
    """Say which batch runs, and keep its id in the cell's output metadata (saved with the notebook)."""
    text = f"{'resumed' if resumed else 'submitted'} batch {batch_id}"
    display({"text/plain": text, "text/html": render.notice_html("batch", text)}, raw=True,
            metadata={"or_magic": {"batch": {"id": batch_id, "resumed": resumed}}})


def show_map_plan(client: Any, job: MapJob) -> None:
    """The first row's request, how many requests, and what they can cost at most; nothing sent."""
    p = plan(client, job)
    cost = "unknown (no prices for this model)" if p.estimate.usd is None else f"at most ${p.estimate.usd:.4f}"
    note = (f"dry run: nothing was sent. {p.requests} requests to {p.estimate.model} "
            f"(POST {client.server_url}/chat/completions each); estimated cost {cost}; the first row's request:")
    text = json.dumps(p.body, indent=2, ensure_ascii=False) if p.body is not None else "(every row is answered)"
    display({"text/plain": f"{note}\n{text}",
             "text/html": render.notice_html("dry run", note) + render.render_markdown(f"```json\n{text}\n```")},
            raw=True)


def _error(magics: ChatMagics, err: BaseException) -> None:
    from .session import TurnFailed, error_view

    view = error_view(err)
    display({"text/plain": render.error_card_text(view), "text/html": render.error_card_html(view)}, raw=True)
    if magics.raise_on_error:
        raise TurnFailed(f"{type(err).__name__}: {err}") from None
