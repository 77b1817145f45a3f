"""The ipywidgets chat panel: the same session, threads, defaults and renderer as ``%%chat``.

The panel streams in an asyncio task on the kernel's own event loop (measured in FRONTEND.md Q1: prompt,
clean cancel, survives a page reload). Stop cancels the task; the session then keeps the partial answer,
marked "interrupted" (nothing when no answer had arrived). Output and exceptions from such a task reach no
cell, so the task catches everything and shows it in the panel.

Controls are public attributes named after the request fields (``model``, ``temperature``, ``max_tokens``,
``top_p``, ``system``, ``prompt``) plus ``send()`` / ``stop()``, so the panel can be scripted and tested
through traits. The controls and their sync with ``ChatMagics`` live in :mod:`or_magic.panel_controls`,
the transcript in :mod:`or_magic.panel_transcript`, the option box in :mod:`or_magic.panel_request`,
``--compare`` in :mod:`or_magic.panel_compare`.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import ipywidgets as W
from IPython.core.error import UsageError

from . import render
from .conversation import ThreadBusyError, Turn, content_text
from .panel_compare import CompareRow, answer_compare
from .panel_controls import ControlsMixin
from .panel_models import close_models, describe_model, model_note
from .panel_request import RequestMixin
from .panel_transcript import (
    TranscriptMixin,
    close_tree,
    descendants,
    flags_label,
    thread_options,
    turn_key,
    user_html,
)
from .panelcode import FIX_THREAD, CodeBox, fix_message, unlink_entry
from .session import TurnRequest, error_view
from .widget_sink import WidgetSink

if TYPE_CHECKING:  # pragma: no cover
    from .magics import ChatMagics
    from .options import ChatOptions
    from .session import Session, TurnResult
    from .types import ModelInfo


class ChatPanel(ControlsMixin, TranscriptMixin, RequestMixin, W.VBox):
    """Chat with OpenRouter models from a widget panel that shares the notebook's threads and defaults.

    ``ChatPanel()`` finds the ``%%chat`` magics of the running IPython (loading the extension if needed);
    ``%chat panel`` passes them in. Controls, named after the request fields: ``model`` (Combobox filled from
    ``/models``; any id may be typed), ``temperature`` and ``top_p`` (sliders), ``max_tokens`` (an int
    slider up to the model's cap; 0 means the model's default), ``system`` (the thread's system prompt),
    ``options`` (exactly a ``%%chat`` option line, e.g. ``--tools add --schema City --seed 7`` or
    ``--compare A,B --keep A``: it wins over the controls for each send), ``prompt``; then ``thread``
    (Dropdown), ``transcript`` (VBox of turns), ``status`` (HTML line), ``comparison`` (the last compare's
    :class:`~or_magic.panel_compare.CompareRow`, or None).
    Actions: ``send()`` (returns the asyncio task, or None when refused), ``stop()``, ``refresh()``,
    ``new_thread()``.

    While a ``ChatMagics`` default is unset, its slider shows the API's default (1.0) and nothing is sent for
    it, exactly as a ``%%chat`` cell would; moving the slider sets the default for both.
    """

    def __init__(self, magics: ChatMagics | None = None, *, thread: str | None = None, **kwargs: Any) -> None:
        self.magics = magics if magics is not None else _find_magics()
        self.session: Session = self.magics.session
        self.models: list[ModelInfo] = []
        self.models_task: asyncio.Future[Any] | None = None
        self.task: asyncio.Future[Any] | None = None
        self.comparison: CompareRow | None = None
        self._syncing = False
        self._live: W.VBox | None = None  # the turn being answered: the user's bubble + the sink's box
        self._live_prompt: Any = ""
        self._live_bubble: W.HTMLMath | None = None
        self._notes: list[W.Widget] = []  # failed turns, compares: shown until the next send or thread change
        self._turn_widgets: dict[str, tuple[tuple[Any, ...], W.Widget]] = {}  # turn id -> (version, entry)
        self._notices: dict[str, tuple[str, W.Widget]] = {}
        self._retired: list[W.Widget] = []  # replaced entries, closed once the transcript stops showing them
        self._signature: tuple[Any, ...] = ()
        label = {"description_width": "90px"}
        self._make_controls(self.magics, label)
        self._make_chat(thread, label)
        super().__init__(children=[
            W.HBox([self.model]), self.model_info,
            W.HBox([self.temperature, self.temperature_entry, self.top_p, self.top_p_entry, self.max_tokens,
                    self.max_tokens_entry, self.max_tokens_readout], layout=W.Layout(flex_flow="row wrap")),
            self.system, self.options, W.HBox([self.thread, self.new_chat, self.refresh_button]),
            self._scroller, self.code_box, self.status, self.prompt,
            W.HBox([self.send_button, self.stop_button, self.fix_button]),
        ], **kwargs)
        self.add_class("or-magic-panel")
        self._wire()
        self.refresh()
        self.models_task = self._start(self.load_models())
        if self.models_task is None:  # no running loop (plain Python): load now
            self._load_models_sync()
        self._say("ready")

    def _make_chat(self, thread: str | None, label: dict[str, str]) -> None:
        """The option box, system prompt, thread row, transcript, status, prompt and buttons."""
        store, wide = self.session.store, W.Layout(width="100%")
        self.options = W.Text(description="Options", placeholder="%%chat options, e.g. --tools add --schema City",
                              continuous_update=False, style=label, layout=wide)
        self._system_shown = store.get(thread).system or ""  # the thread's system prompt the box last showed
        self.system = W.Textarea(value=self._system_shown or self.magics.system or "", description="System",
                                 placeholder="system prompt for this thread (optional)", rows=2, layout=wide,
                                 style=label)
        current = thread or store.DEFAULT
        self.thread = W.Dropdown(options=thread_options(store.names() or [store.DEFAULT], current), value=current,
                                 description="Thread", style=label, layout=W.Layout(width="auto"))
        self.new_chat = W.Button(description="New chat", icon="plus", tooltip="start a new thread",
                                 layout=W.Layout(width="auto"))
        self.refresh_button = W.Button(description="↻", tooltip="show turns made by %%chat cells; reload models",
                                       layout=W.Layout(width="40px"))
        self.transcript = W.VBox(layout=W.Layout(overflow="visible"))
        self.transcript.add_class("jp-RenderedHTMLCommon")
        self.transcript.add_class("or-magic-transcript")
        # column-reverse keeps the scroll position pinned to the newest text while an answer streams
        self._scroller = W.Box([self.transcript], layout=W.Layout(
            display="flex", flex_flow="column-reverse", max_height="480px", overflow_y="auto",
            border="1px solid var(--jp-border-color2, #ddd)", padding="0 8px", min_height="60px"))
        self.status = W.HTML(layout=W.Layout(min_height="1.6em"))
        self.prompt = W.Textarea(placeholder="Ask something…", rows=3, layout=wide)
        self.send_button = W.Button(description="Send", button_style="primary", icon="paper-plane")
        self.stop_button = W.Button(description="Stop", button_style="warning", icon="stop", disabled=True)
        self.fix_button = W.Button(description="Fix last error", icon="wrench",
                                   tooltip="explain and correct the last failed cell (thread 'fix')")
        self.code_box = CodeBox()  # --code and Fix: the answer's Python code, to copy into a cell

    def _wire(self) -> None:
        self.send_button.on_click(lambda _: self.send())
        self.stop_button.on_click(lambda _: self.stop())
        self.fix_button.on_click(lambda _: self.fix())
        self.new_chat.on_click(lambda _: self.new_thread())
        self.refresh_button.on_click(lambda _: self.refresh(models=True))
        self.thread.observe(self._on_thread, names="value")
        self._watch_controls()
        shell = self.magics.shell
        if shell is not None:
            shell.events.register("post_run_cell", self._after_cell)

    # -- public actions --------------------------------------------------------------------------
    def send(self, *, message: str | None = None, code: bool = False) -> asyncio.Future[Any] | None:
        """Answer the prompt in a task on the kernel's loop; returns that task, or None if refused (see status).

        ``message`` is sent instead of the prompt box (which is then left as it is); ``code`` acts as --code.
        With ``--compare`` in the option box, every compared model answers at once, side by side.
        """
        if self.busy:
            self._say("already answering: wait for the answer or press Stop", "error")
            return None
        try:
            opts, prompt = self._read(message)
            opts.code = opts.code or code
            reqs = self._prepare_all(opts, prompt) if opts.compare else [self._prepare(opts, prompt)]
        except UsageError as err:
            self._say(str(err), "error")
            return None
        req = reqs[0]
        if not opts.compare and self.session.store.is_busy(req.thread):
            self._say(f"thread {req.thread!r} is already answering a request (a %%chat cell or another panel): "
                      "wait for it, or stop it first", "error")
            return None
        self._clear_emptied_system(req)
        if opts.compare:
            row = self.comparison = CompareRow(opts.compare, show_reasoning=self._show_reasoning())
            return self._launch(req.prompt, row, self._guarded(answer_compare(self, opts, reqs, row), req.prompt),
                                message,
                                f"asking {', '.join(opts.compare)} side by side…")
        sink_box = W.VBox(layout=W.Layout(overflow="visible"))
        sink = WidgetSink(sink_box, show_reasoning=self._show_reasoning())
        return self._launch(req.prompt, sink_box, self._guarded(self._answer(req, sink, opts), req.prompt),
                            message, f"asking {req.params.get('model')}…")

    def fix(self) -> asyncio.Future[Any] | None:
        """"Fix last error": explain and correct the last failed cell in thread 'fix', as ``%chat fix`` does;
        the corrected code goes into the code box. Returns the task, or None when refused (see status)."""
        if self.busy:
            self._say("already answering: wait for the answer or press Stop", "error")
            return None
        try:
            message = fix_message(self.magics.shell, (self.session.api_key or "",))
        except UsageError as err:
            self._say(str(err), "error")
            return None
        if self.thread.value != FIX_THREAD:
            self.session.store.get(FIX_THREAD)
            self.thread.options = thread_options(self.session.store.names(), FIX_THREAD)
            self.thread.value = FIX_THREAD
        return self.send(message=message, code=True)

    def stop(self) -> None:
        """Cancel the answer(s) under way; what arrived is kept in the thread, marked "interrupted" (a compare
        keeps nothing)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
            self._say("stopping…")

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()

    def close(self) -> None:
        """Stop streaming and detach from the magics and the shell, then close the widgets."""
        self.stop()
        self._detach()
        for _, widget in [*self._turn_widgets.values(), *self._notices.values()]:
            close_tree(widget)
        self._turn_widgets.clear()
        self._notices.clear()
        for entry in (self.temperature_entry, self.top_p_entry, self.max_tokens_entry):
            unlink_entry(entry)
        for widget in descendants(self):
            if widget is not self:
                widget.close()
        super().close()

    # -- the answer task -------------------------------------------------------------------------
    def _launch(self, prompt: Any, answer: W.Widget, work: Coroutine[Any, Any, Any], message: str | None,
                saying: str) -> asyncio.Future[Any] | None:
        """Show the user's bubble over ``answer`` and run ``work`` in a task on the kernel's loop."""
        self._notes = []
        self._live_bubble = W.HTMLMath(user_html(prompt))
        self._live = W.VBox([self._live_bubble, answer], layout=W.Layout(overflow="visible"))
        self._live_prompt = prompt
        task = self._start(work)
        if task is None:
            self._live = None
            self._say("the panel needs a running event loop (a Jupyter kernel) to stream", "error")
            return None
        self.task = task
        if message is None:
            self.prompt.value = ""
        self._set_busy(True)
        self._show_transcript()
        self._say(saying)
        task.add_done_callback(self._task_done)
        return task

    async def _guarded(self, work: Coroutine[Any, Any, Any], prompt: Any) -> Any:
        """Await ``work``; every outcome, including unexpected exceptions, ends up visible in the panel."""
        try:
            return await work
        except ThreadBusyError as err:
            self._fail_live(render.notice_html("busy", str(err)), prompt)
            self._say(str(err), "error")
        except asyncio.CancelledError:  # the session handles Stop itself; this is only a safety net
            self._fail_live(render.notice_html("stopped", "stopped"), prompt)
            self._say("stopped")
        except Exception as err:  # a bug or a bad parameter: show it, the task's traceback would be lost
            view = render.TurnView(error=error_view(err), status="error")
            self._fail_live(render.final_bundle(view)["text/html"], prompt)
            self._say(f"failed: {type(err).__name__}: {err}", "error")
        return None

    async def _answer(self, req: TurnRequest, sink: WidgetSink, opts: ChatOptions) -> TurnResult:
        """Run one turn and say how it went."""
        t0 = time.monotonic()
        result = await self.session.run_turn_async(req, sink, interval=self._interval())
        took = time.monotonic() - t0
        if result.error is None and opts.out:
            self._namespace()[opts.out] = result.value if opts.schema else result.text
        if result.turn is not None:
            self._adopt_live(result.turn, req.prompt)
        if result.error is None and not result.interrupted and opts.code and not self.code_box.show(result.text):
            self._say("answered; the answer has no Python code block, so the code box is empty")
        elif result.error is not None:
            self._notes = [self._live] if self._live is not None else []
            if not self.prompt.value:
                self.prompt.value = content_text(req.prompt)  # keep the message so it can be sent again
            self._say(f"failed: {type(result.error).__name__} (details in the card above); "
                      "this turn was not added to the thread", "error")
        else:
            self._say(_outcome_line(result, req, took))
        return result

    def _adopt_live(self, turn: Turn, prompt: Any) -> None:
        """The live widgets already show the final render: they become ``turn``'s transcript entry."""
        if self._live is None:
            return
        label = flags_label(turn)
        if label and self._live_bubble is not None:
            self._live_bubble.value = user_html(prompt, label)
        self._turn_widgets[turn.id] = (turn_key(turn), self._live)

    def _fail_live(self, card_html: str, prompt: Any) -> None:
        self._notes = [self.with_user(prompt, W.HTML(card_html))]
        self._live = None
        if not self.prompt.value:
            self.prompt.value = content_text(prompt)

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        """Always runs (even if the task was cancelled before it started): leave the busy state, show the turns."""
        try:
            if task.cancelled():
                if self._live is not None:
                    self._fail_live(render.notice_html("stopped", "stopped before the request was sent"),
                                    self._live_prompt)
                self._say("stopped before the request was sent: nothing was kept")
            elif task.exception() is not None:  # _guarded catches everything; this is the last safety net
                err = task.exception()
                self._say(f"failed: {type(err).__name__}: {err}", "error")
        finally:
            self._live = None
            self._set_busy(False)
            self.refresh()

    # -- small parts -----------------------------------------------------------------------------
    def _interval(self) -> float:
        return 1.0 / max(float(getattr(self.magics, "update_rate", 10.0)), 0.5)

    def _show_reasoning(self) -> bool:
        return bool(getattr(self.magics, "show_reasoning", True))

    def _say(self, text: str, level: str = "info") -> None:
        """Put one line of plain text (escaped here) in the status line."""
        colour = {"error": "var(--jp-error-color1, #d32f2f)", "warn": "var(--jp-warn-color1, #f57c00)"}.get(level)
        style = f' style="color:{colour}"' if colour else ' style="opacity:.75"'
        self.status.value = f'<span class="or-magic-status or-magic-{level}"{style}>{html.escape(text)}</span>'

    def _set_busy(self, busy: bool) -> None:
        self.send_button.disabled = busy
        self.stop_button.disabled = not busy
        self.thread.disabled = busy
        self.new_chat.disabled = busy

    def _detach(self) -> None:
        self._unwatch_defaults()
        shell = self.magics.shell
        if shell is not None:
            with contextlib.suppress(ValueError):
                shell.events.unregister("post_run_cell", self._after_cell)

    @staticmethod
    def _start(coro: Any) -> asyncio.Future[Any] | None:
        """Schedule ``coro`` on the running loop (the kernel's); None, and the coroutine closed, if none runs."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            coro.close()
            return None
        return asyncio.ensure_future(coro, loop=loop)


def _outcome_line(result: TurnResult, req: TurnRequest, took: float) -> str:
    """The status after an answer that did not fail: what the thread kept, in words."""
    if result.interrupted:
        if result.turn is not None:
            return (f"stopped after {took:.1f} s: the partial answer is kept in thread {req.thread!r}, "
                    "marked interrupted")
        if result.text:
            return f"stopped after {took:.1f} s: the partial answer is shown; nothing was kept (--once)"
        return f"stopped after {took:.1f} s, before any answer arrived: nothing was kept"
    if req.memory and result.turn is None:
        return "answered (not kept in the thread)"
    return f"answered in {took:.1f} s"


def _find_magics() -> ChatMagics:
    """The ChatMagics of the running IPython, loading ``or_magic`` first if needed."""
    from IPython import get_ipython

    ip = get_ipython()
    if ip is None:
        raise RuntimeError("ChatPanel needs IPython (a Jupyter kernel): run it in a notebook")
    if ip.magics_manager.registry.get("ChatMagics") is None:
        ip.extension_manager.load_extension(__package__)
    return ip.magics_manager.registry["ChatMagics"]


__all__ = ["ChatPanel", "WidgetSink", "model_note", "close_models", "describe_model"]
