"""One output holding a compare: a column per model, streaming side by side.

Columns sit in a wrapping flex row with a minimum width, so on a narrow screen they stack; each column
is also an ``inline-block`` with a width share, so the layout holds if a front end drops the flex styles.
Every column is a :class:`ColumnSink` (a :class:`~or_magic.display.Sink`); the whole row is redrawn at a
throttled pace into one display handle. Model text goes through the same sanitising renderer as any answer.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from typing import Any

from . import render
from .display import Throttle, reasoning_preview

COLUMN_MIN_WIDTH = "18em"  # below this a column wraps under the others (the cell's row and the panel's)
_ROW = "display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start"
_COLUMN = ("flex:1 1 20em;min-width:" + COLUMN_MIN_WIDTH + ";display:inline-block;vertical-align:top;width:{share}%;"
           "box-sizing:border-box;overflow-x:auto;border-top:2px solid rgba(128,128,128,0.4);padding-top:0.3em")


class ColumnSink:
    """One model's column: keeps what arrived and asks the row to redraw."""

    keeps_metadata = False  # the row carries the kept turn's metadata, not a column

    def __init__(self, row: CompareView, model: str) -> None:
        self.row, self.model = row, model
        self.text = ""
        self.reasoning = ""
        self.images = 0
        self.waited: float | None = None
        self.final_html: str | None = None
        self.final_plain = ""

    def waiting(self, model: str, elapsed: float) -> None:
        self.waited = elapsed
        self.row.changed()

    def add_text(self, delta: str) -> None:
        self.text += delta

    def add_reasoning(self, delta: str) -> None:
        self.reasoning += delta

    def add_image(self, data_url: str) -> None:
        self.images += 1

    def flush(self) -> None:
        self.row.changed()

    def final(self, view: render.TurnView, images: list[str], metadata: dict[str, Any] | None = None) -> None:
        note = render.notice_html("images", f"{len(images)} image(s): keep this answer to see them") if images else ""
        self.final_html = render.final_bundle(view)["text/html"] + note
        self.final_plain = render.text_only(view)
        self.row.changed(force=True)

    def html(self) -> str:
        if self.final_html is not None:
            return self.final_html
        if not self.text and not self.reasoning:
            return render.waiting_html(self.model, self.waited or 0.0)
        parts = [render.reasoning_html(reasoning_preview(self.reasoning), streaming=True)] if self.reasoning else []
        parts.append(render.render_markdown(self.text))
        if self.images:
            parts.append(render.notice_html("images", f"{self.images} image(s) arriving"))
        return "".join(parts)

    def plain(self) -> str:
        return self.final_plain if self.final_html is not None else (self.text or "…")


class CompareView:
    """The row of columns in one display handle (a cell), redrawn at most once per ``interval``."""

    def __init__(self, models: list[str], interval: float, display: Callable[..., Any] | None = None,
                 clear_output: Callable[..., Any] | None = None) -> None:
        if display is None or clear_output is None:
            from IPython.display import clear_output as _clear
            from IPython.display import display as _display

            display, clear_output = display or _display, clear_output or _clear
        self._display, self._clear = display, clear_output
        self.columns = [ColumnSink(self, m) for m in models]
        self._throttle = Throttle(interval)
        self._lock = threading.Lock()
        self._handle = display(self.bundle(), raw=True, display_id=True)

    def changed(self, force: bool = False) -> None:
        if force or self._throttle.ready():
            self.redraw()

    def redraw(self, metadata: dict[str, Any] | None = None) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.update(self.bundle(), raw=True, metadata=metadata or {})

    def bundle(self, kept: str | None = None) -> dict[str, str]:
        return compare_bundle(self.columns, kept)

    def finish(self, kept: str | None, metadata: dict[str, Any] | None) -> None:
        """The final row, saying which answer (if any) continues the thread; the kept turn as metadata
        (a fresh output, since a front end may not keep metadata sent with an update)."""
        with self._lock:
            self._handle = None
            self._clear(wait=True)
            self._display(self.bundle(kept), raw=True, metadata=metadata or {})


def compare_bundle(columns: list[ColumnSink], kept: str | None = None) -> dict[str, str]:
    """The row as HTML (columns side by side) and plain text (one answer after another)."""
    share = max(100 // max(len(columns), 1) - 2, 20)
    cells, plain = [], []
    for col in columns:
        mark = " — kept" if kept == col.model else ""
        head = column_head(col.model, kept == col.model)
        cells.append(f'<div class="or-magic-compare-column" style="{_COLUMN.format(share=share)}">{head}'
                     f"{col.html()}</div>")
        plain.append(f"=== {col.model}{mark} ===\n{col.plain()}")
    note = compare_note(kept)
    return {"text/html": f'<div class="or-magic-compare" style="{_ROW}">{"".join(cells)}</div>'
                         f"{render.notice_html('compare', note) if note else ''}",
            "text/plain": "\n\n".join(plain) + (f"\n[compare] {note}" if note else "")}


def column_head(model: str, kept: bool = False) -> str:
    """A column's title: the model, marked when its answer continues the thread."""
    return f"<div><b>{html.escape(model)}</b>{' — kept' if kept else ''}</div>"


def compare_note(kept: str | None) -> str:
    if kept:
        return f"{kept}'s answer continues the thread"
    return "no answer continues the thread (%chat keep MODEL, or --keep MODEL, keeps one)"
