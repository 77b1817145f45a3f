"""Display sinks: where a streaming answer is shown.

A sink receives the answer's pieces as they arrive (``add_text``, ``add_reasoning``, ``add_image``) and is
asked to show them at a throttled pace (``flush``). ``final`` replaces everything with one clean output.

:class:`StreamView` is the streaming view, written once: finished markdown blocks are sent once, in the
slot that held them while they were open, and only the open tail is re-sent, so the bytes sent stay
linear in the answer's size; reasoning shows its last :data:`REASONING_PREVIEW` characters while it
streams. The sinks only say what a slot is: :class:`HandleSink` (a cell's display outputs),
:class:`~or_magic.widget_sink.WidgetSink` (the panel's widgets). :class:`TerminalSink` prints text as it comes.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

from . import render
from .cellshown import STREAMING, ShownOutputs, replay

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


def reasoning_preview(text: str) -> str:
    """What streaming reasoning shows: its last :data:`REASONING_PREVIEW` characters."""
    return text if len(text) <= REASONING_PREVIEW else "…" + text[-REASONING_PREVIEW:]


class StreamView:
    """Frozen markdown blocks + one open tail + streaming reasoning + images, over slots a subclass provides.

    Subclasses implement ``_add(html, live=) -> slot`` (a new slot below the others; ``live=False`` for
    frozen blocks, never updated again), ``_set(slot, html)``,
    ``_add_reasoning(html) -> slot`` (the reasoning's slot), ``_add_image(data_url)`` and ``final``.
    """

    def __init__(self, *, show_reasoning: bool = True) -> None:
        self.show_reasoning = show_reasoning
        self._md = render.MarkdownStream()
        self._reasoning: list[str] = []
        self._reasoning_shown = 0
        self._reasoning_slot: Any = None
        self._tail: Any = None  # the slot holding the open tail (or the waiting notice)
        self._tail_sent = ""
        self._started = False  # something of the answer is on screen: no more waiting notices
        self._lock = threading.Lock()  # the waiting ticker runs on another thread

    # -- what subclasses provide ---------------------------------------------------------------------
    def _add(self, html: str, *, live: bool = True) -> Any:
        raise NotImplementedError

    def _set(self, slot: Any, html: str) -> None:
        raise NotImplementedError

    def _add_reasoning(self, html: str) -> Any:
        return self._add(html)

    def _add_image(self, data_url: str) -> bool:
        raise NotImplementedError

    # -- the sink protocol ---------------------------------------------------------------------------
    def waiting(self, model: str, elapsed: float) -> None:
        with self._lock:
            if self._started:
                return
            html = render.waiting_html(model, elapsed)
            self._put_tail(html)
            self._tail_sent = html

    def add_text(self, delta: str) -> None:
        self._md.append(delta)

    def add_reasoning(self, delta: str) -> None:
        self._reasoning.append(delta)

    def add_image(self, data_url: str) -> None:
        self.flush()
        with self._lock:
            if self._add_image(data_url):
                if not self._started and self._tail is not None:
                    self._set(self._tail, "")  # the waiting notice
                self._started = True
                self._tail, self._tail_sent = None, ""  # later text goes below the image

    def flush(self) -> None:
        with self._lock:
            self._flush_reasoning()
            frozen = self._md.take_frozen()
            if frozen:
                self._started = True
                html = f'<div class="or-magic-block">{frozen}</div>'
                if self._tail is None:
                    self._add(html, live=False)
                else:  # the tail's slot already shows the start of these blocks: it becomes theirs
                    self._set(self._tail, html)
                self._tail, self._tail_sent = None, ""
            tail = self._md.tail_html()
            if tail and tail != self._tail_sent:
                self._started = True
                self._put_tail(f'<div class="or-magic-tail">{tail}</div>')
                self._tail_sent = tail

    def _put_tail(self, html: str) -> None:
        if self._tail is None:
            self._tail = self._add(html)
        else:
            self._set(self._tail, html)

    def _flush_reasoning(self) -> None:
        if not self.show_reasoning or len(self._reasoning) == self._reasoning_shown:
            return
        self._reasoning_shown = len(self._reasoning)
        self._started = True
        html = render.reasoning_html(reasoning_preview("".join(self._reasoning)), streaming=True)
        if self._reasoning_slot is not None:
            self._set(self._reasoning_slot, html)
        elif self._tail is not None and not len(self._md):
            # the waiting notice sits where the reasoning belongs: above the answer
            self._reasoning_slot, self._tail, self._tail_sent = self._tail, None, ""
            self._set(self._reasoning_slot, html)
        else:
            self._reasoning_slot = self._add_reasoning(html)

    def _finished(self) -> None:
        self._tail = self._reasoning_slot = None


def _html_bundle(html: str, plain: str = "…") -> dict[str, str]:
    return {"text/html": html, "text/plain": plain}


class HandleSink(StreamView):
    """Streams into the current cell's output area: each slot is an IPython display handle."""

    keeps_metadata = True  # the final output carries the turn, saved with the notebook

    def __init__(self, *, show_reasoning: bool = True, owns_cell: bool = True,
                 display: Callable[..., Any] | None = None,
                 clear_output: Callable[..., Any] | None = None, shown: ShownOutputs | None = None) -> None:
        """``shown``: what the running cell shows (see :mod:`or_magic.cellshown`). With it, the final step
        clears the cell, shows its other outputs again and then the answer: nothing else is lost and no
        empty slot is left. Without it, ``owns_cell`` (a ``%%chat`` cell) may clear the cell whole;
        otherwise every streaming output is kept as a handle, the first reused and the others blanked.
        """
        super().__init__(show_reasoning=show_reasoning)
        self._shown = shown
        if display is None or clear_output is None:
            from IPython.display import clear_output as _clear
            from IPython.display import display as _display

            display, clear_output = display or _display, clear_output or _clear
        self._display = display
        self._clear = clear_output
        self._owns_cell = owns_cell
        self._outputs: list[Any] = []  # every streaming output, when the cell is not ours to clear

    def _emit(self, bundle: dict[str, Any], *, handle: bool) -> Any:
        keep = handle or not self._owns_cell
        out = self._display(bundle, raw=True, display_id=True if keep else None, metadata={STREAMING: True})
        if not self._owns_cell and out is not None:
            self._outputs.append(out)
        return out

    def _add(self, html: str, *, live: bool = True) -> Any:
        return self._emit(_html_bundle(html), handle=live)

    def _set(self, slot: Any, html: str) -> None:
        slot.update(_html_bundle(html), raw=True)

    def _add_image(self, data_url: str) -> bool:
        bundle = render.image_bundle(data_url)
        if bundle is not None:
            self._emit(bundle, handle=False)
        return bundle is not None

    def final(self, view: render.TurnView, images: list[str], metadata: dict[str, Any] | None = None) -> None:
        """One clean output: clear what streamed (no flash when HTML follows) and show the final bundle.

        ``metadata`` (the committed turn) is saved with the output, so a restarted kernel can rebuild
        the thread from the notebook file.
        """
        if not self.show_reasoning:
            view.reasoning = ""
        others = self._others()
        with self._lock:
            bundle = render.final_bundle(view)
            if others is not None:  # redraw the cell: its other outputs, then the answer
                self._clear(wait=True)
                replay(others, self._display)
                self._display(bundle, raw=True, metadata=metadata or {})
            elif self._owns_cell or not self._outputs:
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
            self._finished()


    def _others(self) -> list[dict[str, Any]] | None:
        """The cell's other outputs, once the streams have flushed into the log (None: no log)."""
        if self._shown is None:
            return None
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        return self._shown.others()


class TerminalSink:
    """Plain IPython in a terminal: the answer streams as text (no markup, so no view to share)."""

    def __init__(self, stream: TextIO | None = None, *, show_reasoning: bool = False) -> None:
        self._out = stream or sys.stdout
        self._show_reasoning = show_reasoning
        self._wrote = False
        self._waited = False
        self._reasoned = False  # reasoning was written (streamed, or at the end without streaming)

    def waiting(self, model: str, elapsed: float) -> None:
        if not (self._waited or self._wrote or self._reasoned):
            self._waited = True
            self._out.write(f"[waiting for {model}…]")
            self._out.flush()

    def _clear_waiting(self) -> None:
        if self._waited and not self._wrote and not self._reasoned:
            self._out.write("\r\x1b[K")  # erase the waiting notice before the answer (or reasoning)
            self._waited = False

    def add_text(self, delta: str) -> None:
        self._clear_waiting()
        if self._reasoned and not self._wrote:
            self._out.write("\n[answer]\n")
        self._wrote = True
        self._out.write(delta)

    def add_reasoning(self, delta: str) -> None:
        """Shown as it streams when ``show_reasoning`` (the answer may refer to it), under a label."""
        if not self._show_reasoning or self._wrote:
            return
        self._clear_waiting()
        if not self._reasoned:
            self._out.write("[reasoning]\n")
        self._reasoned = True
        self._out.write(delta)

    def add_image(self, data_url: str) -> None:
        self._out.write(f"\n[image: {len(data_url)} bytes; shown only in Jupyter]\n")

    def flush(self) -> None:
        self._out.flush()

    def final(self, view: render.TurnView, images: list[str], metadata: dict[str, Any] | None = None) -> None:
        self._clear_waiting()
        if self._show_reasoning and not self._reasoned and not self._wrote and view.reasoning.strip():
            self.add_reasoning(view.reasoning)  # not streamed (--no-stream, a replay): shown whole
        if not self._wrote and view.text:
            self.add_text(view.text)
        shown = "" if self._show_reasoning else view.reasoning  # else only its size is said
        view = dataclasses.replace(view, text="", reasoning=shown)  # the answer is already on screen
        tail = render.text_only(view).strip()
        self._out.write("\n" + (tail + "\n" if tail else ""))
        self._out.flush()
