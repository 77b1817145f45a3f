"""Display sinks: where a streaming answer is shown.

A sink receives the answer's pieces as they arrive (``add_text``, ``add_reasoning``, ``add_image``) and is
asked to show them at a throttled pace (``flush``). ``final`` replaces everything with one clean output.

:class:`HandleSink` (Jupyter) keeps the bytes sent to the front end linear in the answer's size: finished
markdown blocks are sent once, in the display output that held them while they were open, and only the
open tail is re-sent. :class:`TerminalSink` prints text as it comes.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

from . import render

REASONING_PREVIEW = 1200  # characters of reasoning shown while streaming; the final output has it all


class Sink(Protocol):
    """What :func:`or_magic.session.Session.run_turn` drives."""

    def waiting(self, model: str, elapsed: float) -> None: ...
    def add_text(self, delta: str) -> None: ...
    def add_reasoning(self, delta: str) -> None: ...
    def add_image(self, data_url: str) -> None: ...
    def flush(self) -> None: ...
    def final(self, view: render.TurnView, images: list[str], metadata: dict[str, Any] | None = None) -> None: ...


class Throttle:
    """True at most once per ``interval`` seconds; the first call is always ready (first token at once)."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: float | None = None

    def ready(self) -> bool:
        now = self._clock()
        if self._last is None or now - self._last >= self.interval:
            self._last = now
            return True
        return False


def _html_bundle(html: str, plain: str = "…") -> dict[str, str]:
    return {"text/html": html, "text/plain": plain}


class HandleSink:
    """Streams into the current cell's output area through IPython display handles."""

    keeps_metadata = True  # the final output carries the turn, saved with the notebook

    def __init__(self, *, show_reasoning: bool = True, owns_cell: bool = True,
                 display: Callable[..., Any] | None = None,
                 clear_output: Callable[..., Any] | None = None) -> None:
        """``owns_cell``: the cell is the ``%%chat`` cell, so the final step may clear it whole.

        Otherwise (``%chat`` in a cell that printed other things) every streaming output is kept as a
        handle, and the final step reuses the first and blanks the others, so nothing else is erased.
        """
        if display is None or clear_output is None:
            from IPython.display import clear_output as _clear
            from IPython.display import display as _display

            display, clear_output = display or _display, clear_output or _clear
        self._display = display
        self._clear = clear_output
        self._show_reasoning = show_reasoning
        self._md = render.MarkdownStream()
        self._reasoning: list[str] = []
        self._reasoning_shown = 0
        self._reasoning_handle: Any = None
        self._tail: Any = None  # the display output holding the open tail (or the waiting notice)
        self._tail_sent = ""
        self._owns_cell = owns_cell
        self._outputs: list[Any] = []  # every streaming output, when the cell is not ours to clear
        self._lock = threading.Lock()  # the waiting ticker runs on another thread

    def _show(self, html: str, *, handle: bool) -> Any:
        return self._emit(_html_bundle(html), handle=handle)

    def _emit(self, bundle: dict[str, Any], *, handle: bool) -> Any:
        keep = handle or not self._owns_cell
        out = self._display(bundle, raw=True, display_id=True if keep else None)
        if not self._owns_cell and out is not None:
            self._outputs.append(out)
        return out

    def waiting(self, model: str, elapsed: float) -> None:
        with self._lock:
            html = render.waiting_html(model, elapsed)
            if self._tail is None:
                self._tail = self._show(html, handle=True)
            else:
                self._tail.update(_html_bundle(html), raw=True)
            self._tail_sent = html

    def add_text(self, delta: str) -> None:
        self._md.append(delta)

    def add_reasoning(self, delta: str) -> None:
        self._reasoning.append(delta)

    def add_image(self, data_url: str) -> None:
        bundle = render.image_bundle(data_url)
        if bundle is None:
            return
        self.flush()
        with self._lock:
            self._emit(bundle, handle=False)
            self._tail, self._tail_sent = None, ""  # later text goes below the image

    def flush(self) -> None:
        with self._lock:
            self._flush_reasoning()
            frozen = self._md.take_frozen()
            if frozen:
                html = f'<div class="or-magic-block">{frozen}</div>'
                if self._tail is None:
                    self._show(html, handle=False)
                else:
                    self._tail.update(_html_bundle(html), raw=True)
                self._tail, self._tail_sent = None, ""
            tail = self._md.tail_html()
            if tail and tail != self._tail_sent:
                html = f'<div class="or-magic-tail">{tail}</div>'
                if self._tail is None:
                    self._tail = self._show(html, handle=True)
                else:
                    self._tail.update(_html_bundle(html), raw=True)
                self._tail_sent = tail

    def _flush_reasoning(self) -> None:
        if not self._show_reasoning or len(self._reasoning) == self._reasoning_shown:
            return
        self._reasoning_shown = len(self._reasoning)
        text = "".join(self._reasoning)
        preview = text if len(text) <= REASONING_PREVIEW else "…" + text[-REASONING_PREVIEW:]
        html = render.reasoning_html(preview, streaming=True)
        if self._reasoning_handle is not None:
            self._reasoning_handle.update(_html_bundle(html), raw=True)
        elif self._tail is not None and not len(self._md):
            # the waiting notice sits where the reasoning belongs: above the answer
            self._reasoning_handle, self._tail, self._tail_sent = self._tail, None, ""
            self._reasoning_handle.update(_html_bundle(html), raw=True)
        else:
            self._reasoning_handle = self._show(html, handle=True)

    def final(self, view: render.TurnView, images: list[str], metadata: dict[str, Any] | None = None) -> None:
        """One clean output: clear what streamed (no flash when HTML follows) and show the final bundle.

        ``metadata`` (the committed turn) is saved with the output, so a restarted kernel can rebuild
        the thread from the notebook file.
        """
        if not self._show_reasoning:
            view.reasoning = ""
        with self._lock:
            bundle = render.final_bundle(view)
            if self._owns_cell or not self._outputs:
                if self._owns_cell:
                    self._clear(wait=True)
                self._display(bundle, raw=True, metadata=metadata or {})
            else:  # reuse our first output, blank the rest: what the cell printed before stays
                first, *rest = self._outputs
                first.update(bundle, raw=True, metadata=metadata or {})
                for out in rest:
                    out.update({"text/plain": ""}, raw=True)
            for url in images:
                bundle = render.image_bundle(url)
                if bundle is not None:
                    self._display(bundle, raw=True)
            self._tail = self._reasoning_handle = None


class TerminalSink:
    """Plain IPython in a terminal: the answer streams as text."""

    def __init__(self, stream: TextIO | None = None, *, show_reasoning: bool = False) -> None:
        self._out = stream or sys.stdout
        self._show_reasoning = show_reasoning
        self._wrote = False
        self._waited = False

    def waiting(self, model: str, elapsed: float) -> None:
        if not self._waited:
            self._waited = True
            self._out.write(f"[waiting for {model}…]")
            self._out.flush()

    def _clear_waiting(self) -> None:
        if self._waited and not self._wrote:
            self._out.write("\r\x1b[K")  # erase the waiting notice before the answer

    def add_text(self, delta: str) -> None:
        self._clear_waiting()
        self._wrote = True
        self._out.write(delta)

    def add_reasoning(self, delta: str) -> None:
        if self._show_reasoning:
            self._out.write(delta)

    def add_image(self, data_url: str) -> None:
        self._out.write(f"\n[image: {len(data_url)} bytes; shown only in Jupyter]\n")

    def flush(self) -> None:
        self._out.flush()

    def final(self, view: render.TurnView, images: list[str], metadata: dict[str, Any] | None = None) -> None:
        self._clear_waiting()
        if not self._wrote and view.text:
            self._out.write(view.text)
        view = dataclasses.replace(view, text="")  # the answer is already on screen
        tail = render.text_only(view).strip()
        self._out.write("\n" + (tail + "\n" if tail else ""))
        self._out.flush()
