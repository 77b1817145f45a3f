"""``--compare A,B[,C,D]`` in the panel: every model streams at once into its own column.

The columns are widget sinks in a wrapping flex row with a minimum width, so they sit side by side and
stack on a narrow screen. The turns run on the kernel's loop through :func:`or_magic.compare.run_all`
(each against its own copy of the thread); Stop cancels them all. Nothing continues the thread unless
``--keep MODEL`` (or ``%chat keep MODEL`` afterwards) keeps one answer.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import ipywidgets as W

from . import compare, render
from .compare_view import COLUMN_MIN_WIDTH, column_head, compare_note
from .widget_sink import WidgetSink

if TYPE_CHECKING:  # pragma: no cover
    from .options import ChatOptions
    from .panel import ChatPanel
    from .session import TurnRequest


class CompareRow(W.VBox):
    """The compared models' columns (``columns``: model -> its box, ``sinks``: model -> its WidgetSink)
    in one wrapping row, and a note saying which answer, if any, continues the thread."""

    def __init__(self, models: list[str], *, show_reasoning: bool = True) -> None:
        self.heads = {m: W.HTML(column_head(m)) for m in models}
        self.sinks: dict[str, WidgetSink] = {}
        self.columns: dict[str, W.VBox] = {}
        for m in models:
            box = W.VBox(layout=W.Layout(overflow="visible"))
            self.sinks[m] = WidgetSink(box, show_reasoning=show_reasoning)
            column = W.VBox([self.heads[m], box], layout=W.Layout(
                flex="1 1 20em", min_width=COLUMN_MIN_WIDTH, margin="0 1em .5em 0", overflow_x="auto",
                border_top="2px solid rgba(128,128,128,0.4)"))
            column.add_class("or-magic-compare-column")
            self.columns[m] = column
        self.row = W.Box(list(self.columns.values()), layout=W.Layout(
            display="flex", flex_flow="row wrap", align_items="flex-start", width="100%"))
        self.row.add_class("or-magic-compare")
        self.note = W.HTML()
        super().__init__([self.row, self.note], layout=W.Layout(overflow="visible"))

    def show_failure(self, model: str, err: BaseException) -> None:
        """A column's error card for an exception that escaped its turn."""
        self.sinks[model].final(compare.failure_view(err), [])

    def finish(self, kept: str | None) -> None:
        for model, head in self.heads.items():
            head.value = column_head(model, kept == model)
        self.note.value = render.notice_html("compare", compare_note(kept))


async def answer_compare(panel: ChatPanel, opts: ChatOptions, reqs: list[TurnRequest],
                         row: CompareRow) -> compare.CompareRecord:
    """Run every compared turn at once into ``row``; keep ``--keep``'s answer; say how it went."""
    record = compare.CompareRecord(requests={r.params["model"]: r for r in reqs})
    t0 = time.monotonic()
    outcomes, stopped = await compare.run_all(panel.session, reqs, [row.sinks[m] for m in record.requests],
                                              panel._interval())
    for model, err in compare.settle(record, outcomes).items():
        row.show_failure(model, err)
    problem = compare.conclude(panel.session, record, opts.keep, stopped)
    row.finish(record.kept)
    kept = record.turn(record.kept) if record.kept else None
    if kept is not None and opts.out:
        panel._namespace()[opts.out] = record.results[record.kept].text  # type: ignore[index]
    if kept is not None:
        panel._adopt_live(kept, reqs[0].prompt)  # the row is the kept turn's transcript entry (the same object)
    else:
        panel._notes = [panel._live] if panel._live is not None else []
    panel._say(status_line(record, stopped, problem, time.monotonic() - t0),
               "error" if compare.failed_models(record) else "info")
    return record


def status_line(record: compare.CompareRecord, stopped: bool, problem: str | None, took: float) -> str:
    """One line: how long, who failed, what continues the thread."""
    failed = compare.failed_models(record)
    parts = [f"stopped after {took:.1f} s: each column keeps what arrived" if stopped
             else f"compared {len(record.requests)} models in {took:.1f} s"]
    if failed and not stopped:
        parts.append(f"{', '.join(failed)} failed (card in its column)")
    if problem:
        parts.append(f"nothing kept: {problem}")
    else:
        parts.append(compare_note(record.kept))
    return "; ".join(parts)
