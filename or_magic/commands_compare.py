"""``%%chat --compare A,B`` and ``%chat keep MODEL``: the face of :mod:`or_magic.compare`.

One request per model is prepared by the same step as any cell (so each model gets its own caching
marker, modalities and checks), then they run together into one row of columns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from . import compare
from .compare_view import CompareView, compare_note
from .display import TerminalSink
from .session import TurnFailed

if TYPE_CHECKING:  # pragma: no cover
    from .magics import ChatMagics
    from .options import ChatOptions
    from .prepare import Surroundings
    from .session import TurnRequest


def run_compare(magics: ChatMagics, opts: ChatOptions, prompt: str, env: Surroundings,
                show_dry_run: Callable[..., None]) -> None:
    """Send the cell to every compared model at once; keep one answer with ``--keep``."""
    prepared = compare.prepare_requests(opts, prompt, env)
    reqs = [req for req, _ in prepared]
    if opts.dry_run:
        for req, notes in prepared:
            show_dry_run(magics, req, [f"compare: {req.params['model']}", *notes])
        return None
    record = compare.CompareRecord(requests={r.params["model"]: r for r in reqs})
    interval = 1.0 / max(magics.update_rate, 0.5)
    if getattr(magics.shell, "kernel", None) is not None:
        view = CompareView(opts.compare, interval)
        outcomes, interrupted = compare.run_together(magics.session, reqs, view.columns, interval)  # type: ignore[arg-type]
    else:
        view = None
        outcomes, interrupted = compare.run_in_turn(magics.session, reqs, _terminal_sinks(opts.compare), interval)
    for model, err in compare.settle(record, outcomes).items():
        if view is not None:
            next(c for c in view.columns if c.model == model).final(compare.failure_view(err), [])
    problem = compare.conclude(magics.session, record, opts.keep, interrupted)
    if view is not None:
        view.finish(record.kept, compare.kept_metadata(magics.session, record))
    else:
        print(f"[compare] {compare_note(record.kept)}")
    if problem:
        print(f"or_magic: nothing kept: {problem}")
    return _after(magics, opts, record, interrupted)


def _terminal_sinks(models: list[str]) -> list[Any]:
    class _Headed(TerminalSink):
        def __init__(self, model: str) -> None:
            super().__init__()
            self._head = model

        def waiting(self, model: str, elapsed: float) -> None:
            if not self._waited:
                self._out.write(f"=== {self._head} ===\n")
            super().waiting(model, elapsed)

    return [_Headed(m) for m in models]


def _after(magics: ChatMagics, opts: ChatOptions, record: compare.CompareRecord, interrupted: bool) -> None:
    """--out binds the kept answer's text; raise_on_error fails the cell when a model failed."""
    if opts.out and record.kept:
        magics.shell.user_ns[opts.out] = record.results[record.kept].text
    failed = compare.failed_models(record)
    if interrupted:
        print("or_magic: compare interrupted: each column keeps what arrived; nothing continues the thread")
    if failed and magics.raise_on_error:
        raise TurnFailed(f"compare: {', '.join(failed)} failed")
    return None


def cmd_keep(magics: ChatMagics, arg: str) -> None:
    """%chat keep MODEL: keep that model's answer from the last compare as the turn of its cell."""
    record = magics.session.last_compare
    model = arg.strip()
    if record is None:
        raise UsageError("%chat keep MODEL follows a %%chat --compare cell; there was none yet")
    if not model:
        raise UsageError(f"%chat keep MODEL: one of {', '.join(record.requests)}")
    if record.kept is not None:
        raise UsageError(f"{record.kept}'s answer is already kept; re-run the compare to choose again")
    try:
        compare.keep(magics.session, record, model)
    except ValueError as err:
        raise UsageError(str(err)) from None
    req: TurnRequest = record.requests[model]
    print(f"kept {model}'s answer as the turn in thread {req.thread or magics.session.store.DEFAULT!r}")
