"""The ipywidgets chat panel: the same session, threads, defaults and renderer as ``%%chat``.

The panel streams in an asyncio task on the kernel's own event loop (measured in FRONTEND.md Q1: prompt,
clean cancel, survives a page reload). Stop cancels the task; the session then keeps the partial answer,
marked "interrupted". Output and exceptions from such a task reach no cell, so the task catches everything
and shows it in the panel.

Controls are public attributes named after the request fields (``model``, ``temperature``, ``max_tokens``,
``top_p``, ``system``, ``prompt``) plus ``send()`` / ``stop()``, so the panel can be scripted and tested
through traits. Moving a control sets the matching ``ChatMagics`` default, so later ``%%chat`` cells use it
(a cell's own options still win), and ``%config ChatMagics.…`` changes move the controls.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import html
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as W
from IPython.core.error import UsageError

from . import defaults as D
from . import options, render
from .conversation import ConversationStore, ThreadBusyError, Turn, content_text
from .panelcode import FIX_THREAD, CodeBox, fix_message, float_entry
from .prepare import Surroundings, prepare_request
from .session import TurnRequest, error_view
from .stored import stored_turn_view, turn_flags, turn_images
from .widget_sink import WidgetSink, answer_widget

if TYPE_CHECKING:  # pragma: no cover
    from .magics import ChatMagics
    from .options import ChatOptions
    from .session import Session, TurnResult
    from .types import ModelInfo

# OpenRouter accepts these after a listed id (OPENROUTER.md §model); routers and ~…-latest aliases resolve
# server-side, so none of them is in /models and none deserves a warning.
VARIANT_SUFFIXES = (":free", ":nitro", ":floor", ":online", ":exacto", ":thinking", ":extended")
ROUTERS = ("openrouter/auto", "openrouter/free")
_ALIAS = re.compile(r"^~[\w.-]+/[\w.:-]+-latest$")
_BAD_ID = re.compile(r"\s")

TEMPERATURE_DEFAULT, TOP_P_DEFAULT = 1.0, 1.0  # what the API uses when the field is absent


# -- the model picker's note ------------------------------------------------------------------------
def model_note(model_id: str, models: Sequence[ModelInfo] | None) -> tuple[str, str]:
    """``(level, text)`` describing ``model_id`` against the ``/models`` list.

    level is "ok" (known: name, context and price), "info" (variant, router, alias, or no list to check
    against), "warn" (not listed: close matches offered, still sent as typed) or "error" (cannot be sent).
    """
    mid = model_id.strip()
    if not mid:
        return "error", "choose a model (type an id such as openai/gpt-4o-mini, or pick one from the list)"
    if _BAD_ID.search(mid):
        return "error", f"{mid!r} is not a model id: ids contain no spaces (e.g. openai/gpt-4o-mini)"
    if mid in ROUTERS:
        return "info", f"{mid}: OpenRouter's router picks the model for each request"
    if _ALIAS.match(mid):
        return "info", f"{mid}: an alias OpenRouter resolves to the newest version"
    if not models:
        return "info", f"{mid}: not checked (the model list is not loaded)"
    by_id = {m.id: m for m in models if m.id}
    if mid in by_id:
        return "ok", describe_model(by_id[mid])
    base, sep, suffix = mid.rpartition(":")
    if sep and f":{suffix}" in VARIANT_SUFFIXES and base in by_id:
        return "ok", f"variant :{suffix} of " + describe_model(by_id[base])
    matches = close_models(mid, models)
    hint = f" Did you mean {', '.join(matches)}?" if matches else ""
    return "warn", (f"{mid} is not in OpenRouter's model list ({len(by_id)} models); it will be sent as "
                    f"typed, and a wrong id fails with 400.{hint}")


def close_models(text: str, models: Sequence[ModelInfo], n: int = 3) -> list[str]:
    """Ids close to ``text``: by whole id, by the part after the slash, or by display name."""
    keys: dict[str, str] = {}
    for m in models:
        if not m.id:
            continue
        keys.setdefault(m.id.lower(), m.id)
        keys.setdefault(m.id.split("/", 1)[-1].lower(), m.id)
        if m.name:
            keys.setdefault(m.name.lower(), m.id)
    found: list[str] = []
    for key in difflib.get_close_matches(text.lower(), list(keys), n=n * 3, cutoff=0.6):
        if keys[key] not in found:
            found.append(keys[key])
    return found[:n]


def describe_model(m: ModelInfo) -> str:
    """One line: name, context length, price per million tokens in and out."""
    parts = [m.name or m.id or "?"]
    if m.context_length:
        parts.append(f"context {m.context_length:,} tokens")
    pricing = m.pricing or {}
    try:
        prompt, completion = float(pricing.get("prompt", "")), float(pricing.get("completion", ""))
    except ValueError:
        pass
    else:
        if prompt < 0 or completion < 0:  # routers such as openrouter/auto say -1: the routed model's price
            parts.append("price of the model it routes to")
        else:
            parts.append("free" if prompt == completion == 0 else
                         f"${prompt * 1e6:.2f}/M in · ${completion * 1e6:.2f}/M out")
    return " · ".join(parts)


# -- turns as HTML ----------------------------------------------------------------------------------
def user_html(prompt: Any, label: str = "") -> str:
    """The user's message as a right-leaning bubble (rendered safely, like answers)."""
    small = f' <small style="opacity:.65">{html.escape(label)}</small>' if label else ""
    return (f'<div class="or-magic-user" style="margin:.6em 0 .2em 15%;padding:.1em .8em;border-radius:8px;'
            f'background:var(--jp-layout-color2,#eee)"><b>You</b>{small}'
            f"{render.render_markdown(content_text(prompt))}</div>")


def _turn_key(turn: Turn) -> tuple[Any, ...]:
    return (turn.id, turn.stale, turn.status, len(turn.text))


def _flags(turn: Turn) -> str:
    return ", ".join(turn_flags(turn))


def _thread_signature(store: ConversationStore, name: str) -> tuple[Any, ...]:
    thread = store.threads.get(name)
    turns = thread.turns if thread is not None else []
    return (tuple(store.names()), thread.system if thread is not None else None,
            tuple(_turn_key(t) for t in turns))


# -- the panel --------------------------------------------------------------------------------------
class ChatPanel(W.VBox):
    """Chat with OpenRouter models from a widget panel that shares the notebook's threads and defaults.

    ``ChatPanel()`` finds the ``%%chat`` magics of the running IPython (loading the extension if needed);
    ``%chat panel`` passes them in. Controls, named after the request fields: ``model`` (Combobox filled from
    ``/models``; any id may be typed), ``temperature`` and ``top_p`` (sliders), ``max_tokens`` (an int
    slider up to the model's cap; 0 means the model's default), ``system`` (the thread's system prompt),
    ``options`` (exactly a ``%%chat`` option line, e.g. ``--tools add --schema City --seed 7``: it wins over
    the controls for each send), ``prompt``; then ``thread`` (Dropdown), ``transcript`` (VBox of turns),
    ``status`` (HTML line).
    Actions: ``send()`` (returns the asyncio task, or None when refused), ``stop()``, ``refresh()``,
    ``new_thread()``.

    While a ``ChatMagics`` default is unset, its slider shows the API's default (1.0) and nothing is sent for
    it, exactly as a ``%%chat`` cell would; moving the slider sets the default for both.
    """

    def __init__(self, magics: ChatMagics | None = None, *, thread: str | None = None, **kwargs: Any) -> None:
        self.magics = magics if magics is not None else _find_magics()
        self.session: Session = self.magics.session
        store = self.session.store
        m = self.magics
        self.models: list[ModelInfo] = []
        self.models_task: asyncio.Future[Any] | None = None
        self.task: asyncio.Future[Any] | None = None
        self._syncing = False
        self._live: W.VBox | None = None  # the turn being answered: the user's bubble + the sink's box
        self._live_prompt: Any = ""
        self._notes: list[W.Widget] = []  # failed turns: shown until the next send or thread change
        self._turn_widgets: dict[str, tuple[tuple[Any, ...], W.Widget]] = {}  # turn id -> (version, entry)
        self._notices: dict[str, tuple[str, W.Widget]] = {}
        self._retired: list[W.Widget] = []  # replaced entries, closed once the transcript stops showing them
        self._live_bubble: W.HTMLMath | None = None
        self._signature: tuple[Any, ...] = ()

        wide = W.Layout(width="100%")
        label = {"description_width": "90px"}
        self.model = W.Combobox(value=m.model, options=[], ensure_option=False, continuous_update=False,
                                description="Model", placeholder="model id, e.g. openai/gpt-4o-mini", style=label,
                                layout=W.Layout(flex="1 1 auto", width="auto"))
        self.model_info = W.HTML(layout=W.Layout(margin="0 0 4px 98px"))
        self.temperature = W.FloatSlider(value=_or(m.temperature, TEMPERATURE_DEFAULT), min=0.0, max=2.0,
                                         step=0.05, description="Temperature", readout_format=".2f",
                                         continuous_update=False, style=label, layout=W.Layout(width="300px"),
                                         tooltip="sampling temperature (the API's default is 1)")
        self.top_p = W.FloatSlider(value=_or(m.top_p, TOP_P_DEFAULT), min=0.0, max=1.0, step=0.01,
                                   description="Top p", readout_format=".2f", continuous_update=False,
                                   style={"description_width": "50px"}, layout=W.Layout(width="230px"),
                                   tooltip="nucleus sampling (the API's default is 1)")
        self.max_tokens = W.IntSlider(value=m.max_tokens or 0, min=0, max=max(m.max_tokens or 0, D.MAX_TOKENS_SLIDER),
                                      description="Max tokens", continuous_update=False, readout=False, style=label,
                                      layout=W.Layout(width="300px"), tooltip="0: the model's default")
        self.max_tokens_readout = W.Label(layout=W.Layout(width="auto"))
        self.temperature_entry, self.top_p_entry = float_entry(self.temperature), float_entry(self.top_p)
        self.options = W.Text(description="Options", placeholder="%%chat options, e.g. --tools add --schema City",
                              continuous_update=False, style=label, layout=wide)
        self._system_shown = store.get(thread).system or ""  # the thread's system prompt the box last showed
        self.system = W.Textarea(value=self._system_shown or m.system or "", description="System",
                                 placeholder="system prompt for this thread (optional)", rows=2, layout=wide,
                                 style=label)
        names = store.names() or [store.DEFAULT]
        current = thread or store.DEFAULT
        self.thread = W.Dropdown(options=_options(names, current), value=current, description="Thread",
                                 style=label, layout=W.Layout(width="auto"))
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

        super().__init__(children=[
            W.HBox([self.model]), self.model_info,
            W.HBox([self.temperature, self.temperature_entry, self.top_p, self.top_p_entry, self.max_tokens,
                    self.max_tokens_readout],
                   layout=W.Layout(flex_flow="row wrap")),
            self.system, self.options,
            W.HBox([self.thread, self.new_chat, self.refresh_button]),
            self._scroller, self.code_box, self.status, self.prompt,
            W.HBox([self.send_button, self.stop_button, self.fix_button]),
        ], **kwargs)
        self.add_class("or-magic-panel")

        self.send_button.on_click(lambda _: self.send())
        self.stop_button.on_click(lambda _: self.stop())
        self.fix_button.on_click(lambda _: self.fix())
        self.new_chat.on_click(lambda _: self.new_thread())
        self.refresh_button.on_click(lambda _: self.refresh(models=True))
        self.thread.observe(self._on_thread, names="value")
        self.model.observe(self._on_model, names="value")
        for control in (self.temperature, self.top_p, self.max_tokens):
            control.observe(self._on_control, names="value")
        self.magics.observe(self._on_default, names=["model", "temperature", "top_p", "max_tokens"])
        shell = self.magics.shell
        if shell is not None:
            shell.events.register("post_run_cell", self._after_cell)

        self._note_model()
        self._show_max_tokens()
        self.refresh()
        self.models_task = self._start(self.load_models())
        if self.models_task is None:  # no running loop (plain Python): load now
            self._load_models_sync()
        self._say("ready")

    # -- public actions --------------------------------------------------------------------------
    def send(self, *, message: str | None = None, code: bool = False) -> asyncio.Future[Any] | None:
        """Answer the prompt in a task on the kernel's loop; returns that task, or None if refused (see status).

        ``message`` is sent instead of the prompt box (which is then left as it is); ``code`` acts as --code.
        """
        if self.busy:
            self._say("already answering: wait for the answer or press Stop", "error")
            return None
        try:
            req, opts = self._request(message)
            opts.code = opts.code or code
        except UsageError as err:
            self._say(str(err), "error")
            return None
        store = self.session.store
        if store.is_busy(req.thread):
            self._say(f"thread {req.thread!r} is already answering a request (a %%chat cell or another panel): "
                      "wait for it, or stop it first", "error")
            return None
        thread = store.get(req.thread)
        if req.system is None and thread.system and thread.system == self._system_shown:
            thread.system = None  # the box showed the thread's system prompt and the user emptied it
        sink_box = W.VBox(layout=W.Layout(overflow="visible"))
        sink = WidgetSink(sink_box, show_reasoning=bool(getattr(self.magics, "show_reasoning", True)))
        self._notes = []
        self._live_bubble = W.HTMLMath(user_html(req.prompt))
        self._live = W.VBox([self._live_bubble, sink_box], layout=W.Layout(overflow="visible"))
        self._live_prompt = req.prompt
        task = self._start(self._answer(req, sink, opts))
        if task is None:
            self._live = None
            self._say("the panel needs a running event loop (a Jupyter kernel) to stream", "error")
            return None
        self.task = task
        if message is None:
            self.prompt.value = ""
        self._set_busy(True)
        self._show_transcript()
        self._say(f"asking {req.params.get('model')}…")
        task.add_done_callback(self._task_done)
        return task

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
            self.thread.options = _options(self.session.store.names(), FIX_THREAD)
            self.thread.value = FIX_THREAD
        return self.send(message=message, code=True)

    def stop(self) -> None:
        """Cancel the answer under way; the partial answer is kept in the thread, marked "interrupted"."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
            self._say("stopping…")

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()

    def new_thread(self, name: str | None = None) -> str:
        """Start a new, empty thread and switch to it."""
        store = self.session.store
        if name is None:
            n = len(store.names()) + 1
            while f"chat {n}" in store.names():
                n += 1
            name = f"chat {n}"
        store.get(name)
        self.thread.options = _options(store.names(), name)
        self.thread.value = name
        return name

    def refresh(self, *, models: bool = False) -> None:
        """Show the thread list and the current thread's turns as the store has them (incl. %%chat turns)."""
        store = self.session.store
        current = self.thread.value or store.DEFAULT
        options = _options(store.names(), current)
        if tuple(self.thread.options) != options:
            self.thread.options = options
        self._show_transcript()
        if models:
            self.models_task = self._start(self.load_models(refresh=True)) or self.models_task

    def transcript_html(self) -> str:
        """All HTML in the transcript, oldest first (for scripts and tests)."""
        return "\n".join(_html_values(self.transcript))

    async def load_models(self, refresh: bool = False) -> list[ModelInfo]:
        """Fill the model picker from ``/models``; a failure is shown in the note, never raised."""
        try:
            models = await self.session.client().models_async(refresh=refresh)
        except Exception as err:  # no key, offline, a server error: the picker still takes typed ids
            self._models_failed(err)
            return []
        self._set_models(models)
        return models

    def close(self) -> None:
        """Stop streaming and detach from the magics and the shell, then close the widgets."""
        self.stop()
        self._detach()
        for _, widget in [*self._turn_widgets.values(), *self._notices.values()]:
            _close_tree(widget)
        self._turn_widgets.clear()
        self._notices.clear()
        for entry in (self.temperature_entry, self.top_p_entry):
            entry.link.close()
        for widget in _descendants(self):
            if widget is not self:
                widget.close()
        super().close()

    # -- building a request ----------------------------------------------------------------------
    def _request(self, message: str | None = None) -> tuple[TurnRequest, ChatOptions]:
        """The request the option box and the controls describe, built by the cells' own step.

        Raises a one-line ``UsageError`` (shown in the status line) before anything is sent.
        """
        prompt = self.prompt.value if message is None else message
        if not prompt.strip():
            raise UsageError("type a message in the prompt box first")
        line = self.options.value
        options.refuse_secrets(line)
        ns = options.parse(options.expand_variables(line, self._namespace()))
        if ns.words:
            raise UsageError(f"unexpected words in the options: {' '.join(ns.words)!r} (options start with -)")
        if ns.dry_run:
            raise UsageError("--dry-run is for %%chat cells; the panel sends what it shows")
        if ns.map:
            raise UsageError("--map is for %%chat cells: its progress and result table go in the cell's output")
        m = self.magics
        defaults = options.Defaults(model=self.model.value.strip(), temperature=m.temperature, top_p=m.top_p,
                                    max_tokens=self.max_tokens.value or None, stream=bool(m.stream))
        opts = options.build(ns, defaults)
        if opts.compare:
            raise UsageError("--compare runs in %%chat cells (the panel shows one answer at a time)")
        level, text = model_note(opts.model, self.models)
        if level == "error":
            raise UsageError(text)
        opts.thread = opts.thread or self.thread.value or self.session.store.DEFAULT
        if opts.system is None:
            opts.system = self.system.value.strip() or None
        env = Surroundings(namespace=self._namespace(), store=self.session.store, models=lambda: self.models,
                           cells=_cell_history(self.magics.shell), secrets=(self.session.api_key or "",),
                           prompt_cache=str(getattr(self.magics, "prompt_cache", "auto")))
        req, _ = prepare_request(opts, prompt, env)
        if opts.system is None:  # an empty box is no system prompt (send() clears the thread's)
            req.system = None
        return req, opts

    def _namespace(self) -> dict[str, Any]:
        shell = self.magics.shell
        return shell.user_ns if shell is not None else {}

    # -- the answer task -------------------------------------------------------------------------
    async def _answer(self, req: TurnRequest, sink: WidgetSink, opts: ChatOptions) -> TurnResult | None:
        """Run one turn; every outcome, including unexpected exceptions, ends up visible in the panel."""
        t0 = time.monotonic()
        interval = 1.0 / max(float(getattr(self.magics, "update_rate", 10.0)), 0.5)
        try:
            result = await self.session.run_turn_async(req, sink, interval=interval)
        except ThreadBusyError as err:
            self._fail_live(render.notice_html("busy", str(err)), req.prompt)
            self._say(str(err), "error")
            return None
        except asyncio.CancelledError:  # the session handles Stop itself; this is only a safety net
            self._fail_live(render.notice_html("stopped", "stopped"), req.prompt)
            self._say("stopped")
            return None
        except Exception as err:  # a bug or a bad parameter: show it, the task's traceback would be lost
            view = render.TurnView(error=error_view(err), status="error")
            self._fail_live(render.final_bundle(view)["text/html"], req.prompt)
            self._say(f"failed: {type(err).__name__}: {err}", "error")
            return None
        took = time.monotonic() - t0
        if result.error is None and opts.out:
            self._namespace()[opts.out] = result.value if opts.schema else result.text
        if result.turn is not None and self._live is not None:
            # the live widgets already show the final render: they become the turn's transcript entry
            label = _flags(result.turn)
            if label and self._live_bubble is not None:
                self._live_bubble.value = user_html(req.prompt, label)
            self._turn_widgets[result.turn.id] = (_turn_key(result.turn), self._live)
        if result.error is None and not result.interrupted and opts.code and not self.code_box.show(result.text):
            self._say("answered; the answer has no Python code block, so the code box is empty")
            return result
        if result.error is not None:
            self._notes = [self._live] if self._live is not None else []
            if not self.prompt.value:
                self.prompt.value = content_text(req.prompt)  # keep the message so it can be sent again
            self._say(f"failed: {type(result.error).__name__} (details in the card above); "
                      "this turn was not added to the thread", "error")
        elif result.interrupted:
            self._say(f"stopped after {took:.1f} s: the partial answer is kept in thread {req.thread!r}, "
                      "marked interrupted")
        elif req.memory and result.turn is None:
            self._say("answered (not kept in the thread)")
        else:
            self._say(f"answered in {took:.1f} s")
        return result

    def _with_user(self, prompt: Any, answer: W.Widget, label: str = "") -> W.Widget:
        return W.VBox([W.HTMLMath(user_html(prompt, label)), answer], layout=W.Layout(overflow="visible"))

    def _fail_live(self, card_html: str, prompt: Any) -> None:
        self._notes = [self._with_user(prompt, W.HTML(card_html))]
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
                self._say("stopped")
            elif task.exception() is not None:  # _answer catches everything; this is the last safety net
                err = task.exception()
                self._say(f"failed: {type(err).__name__}: {err}", "error")
        finally:
            self._live = None
            self._set_busy(False)
            self.refresh()

    # -- showing things --------------------------------------------------------------------------
    def _show_transcript(self) -> None:
        store = self.session.store
        name = self.thread.value or store.DEFAULT
        thread = store.threads.get(name)
        turns = list(thread.turns) if thread is not None else []
        children: list[W.Widget] = []
        self._follow_system(thread.system if thread is not None else None)
        if thread is not None and thread.system:
            system = thread.system
            children.append(self._notice(f"system:{name}", system, lambda: render.notice_html("system", system)))
        children += [self._turn_widget(turn) for turn in turns]
        if not turns and self._live is None and not self._notes:
            children.append(self._notice("empty", "", lambda: (
                '<p style="opacity:.6">No turns yet in this thread. %%chat cells on it show up here too.</p>')))
        children += self._notes
        if self._live is not None:
            children.append(self._live)
        if tuple(children) != tuple(self.transcript.children):
            self.transcript.children = tuple(children)
        self._signature = _thread_signature(store, name)
        self._prune(store)

    def _notice(self, key: str, version: str, build: Any) -> W.Widget:
        hit = self._notices.get(key)
        if hit is None or hit[0] != version:
            if hit is not None:
                self._retired.append(hit[1])
            hit = self._notices[key] = (version, W.HTML(build()))
        return hit[1]

    def _turn_widget(self, turn: Turn) -> W.Widget:
        """A turn's entry, rendered once and kept until the turn changes (stale, replaced) or is removed."""
        key = _turn_key(turn)
        hit = self._turn_widgets.get(turn.id)
        if hit is not None and hit[0] == key:
            return hit[1]
        if hit is not None:
            self._retired.append(hit[1])
        view = stored_turn_view(turn, sandbox=self.session.on_sandbox)
        widget = self._with_user(turn.user, answer_widget(render.final_bundle(view)["text/html"],
                                                          turn_images(turn.assistant)), _flags(turn))
        self._turn_widgets[turn.id] = (key, widget)
        return widget

    def _prune(self, store: ConversationStore) -> None:
        """Close widgets no longer shown: re-rendered entries, and turns no thread has (reset, undo, re-run).

        Runs after the transcript's children were replaced, so the front end never shows a closed widget.
        """
        alive = {t.id for thread in list(store.threads.values()) for t in thread.turns}
        retired, self._retired = self._retired, []
        retired += [self._turn_widgets.pop(i)[1] for i in [i for i in self._turn_widgets if i not in alive]]
        for widget in retired:
            _close_tree(widget)

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

    def _note_model(self) -> None:
        level, text = model_note(self.model.value, self.models)
        icon = {"warn": "⚠ ", "error": "✖ "}.get(level, "")
        colour = {"error": "var(--jp-error-color1, #d32f2f)", "warn": "var(--jp-warn-color1, #f57c00)"}.get(
            level, "var(--jp-ui-font-color2, #666)")
        self.model_info.value = (f'<small class="or-magic-model-{level}" style="color:{colour}">'
                                 f"{icon}{html.escape(text)}</small>")

    def _set_models(self, models: list[ModelInfo]) -> None:
        self.models = list(models)
        self.model.options = tuple(sorted(m.id for m in self.models if m.id))
        self._note_model()
        self._fit_max_tokens()

    def _fit_max_tokens(self) -> None:
        """The slider reaches the chosen model's cap when ``/models`` knows it (a default top otherwise)."""
        mid = self.model.value.strip()
        info = next((m for m in self.models if m.id in (mid, mid.rpartition(":")[0])), None)
        cap = info.max_completion_tokens if info is not None else None
        top = cap or D.MAX_TOKENS_SLIDER
        if self.max_tokens.value > top:  # the model cannot answer that much: back to its default
            self.max_tokens.value = 0
        self.max_tokens.max = top

    def _show_max_tokens(self) -> None:
        value = self.max_tokens.value
        self.max_tokens_readout.value = f"{value:,}" if value else "model default"

    def _models_failed(self, err: BaseException) -> None:
        self.models = []
        self.model_info.value = (f'<small style="color:var(--jp-warn-color1,#f57c00)">model list unavailable '
                                 f"({html.escape(type(err).__name__)}: {html.escape(str(err)[:200])}); "
                                 "ids are sent as typed</small>")

    def _load_models_sync(self) -> None:
        try:
            self._set_models(self.session.client().models())
        except Exception as err:
            self._models_failed(err)

    # -- keeping in step with the magics and the store -------------------------------------------
    def _on_control(self, change: dict[str, Any]) -> None:
        """A control moved: it becomes the notebook's default for later %%chat cells."""
        if self._syncing:
            return
        owner = change["owner"]
        self._syncing = True
        try:
            if owner is self.max_tokens:
                self._show_max_tokens()
                self.magics.max_tokens = int(change["new"]) or None
            elif owner is self.temperature:
                self.magics.temperature = round(float(change["new"]), 4)
            elif owner is self.top_p:
                self.magics.top_p = round(float(change["new"]), 4)
        finally:
            self._syncing = False

    def _on_model(self, change: dict[str, Any]) -> None:
        self._note_model()
        self._fit_max_tokens()
        value = str(change["new"]).strip()
        if self._syncing or not value or _BAD_ID.search(value):
            return
        self._syncing = True
        try:
            self.magics.model = value
        finally:
            self._syncing = False

    def _on_default(self, change: dict[str, Any]) -> None:
        """``%config ChatMagics.…`` (or another panel) changed a default: move the control to match."""
        if self._syncing:
            return
        self._syncing = True
        try:
            name, new = change["name"], change["new"]
            if name == "model":
                self.model.value = new or ""
                self._note_model()
            elif name == "temperature":
                self.temperature.value = _or(new, TEMPERATURE_DEFAULT)
            elif name == "top_p":
                self.top_p.value = _or(new, TOP_P_DEFAULT)
            elif name == "max_tokens":
                self.max_tokens.max = max(self.max_tokens.max, new or 0)
                self.max_tokens.value = new or 0
                self._show_max_tokens()
        finally:
            self._syncing = False

    def _on_thread(self, change: dict[str, Any]) -> None:
        thread = self.session.store.get(change["new"] or None)
        self.system.value = thread.system or self.magics.system or ""
        self._system_shown = thread.system or ""
        self._notes = []
        self._show_transcript()

    def _follow_system(self, system: str | None) -> None:
        """The box follows the thread's system prompt (set by a ``%%chat -s`` cell, say) unless being edited."""
        current = system or ""
        if current != self._system_shown:
            if self.system.value == self._system_shown:
                self.system.value = current
            self._system_shown = current

    def _after_cell(self, result: Any = None) -> None:
        """After each cell: show turns a %%chat cell added (cheap: compares a small signature)."""
        shell = self.magics.shell
        if shell is not None and shell.magics_manager.registry.get("ChatMagics") is not self.magics:
            self._detach()  # the extension was unloaded
            return
        try:
            if _thread_signature(self.session.store, self.thread.value or "") != self._signature:
                self.refresh()
        except Exception as err:  # never break the user's cells because of the panel
            self._say(f"refresh failed: {err!r}", "error")

    def _detach(self) -> None:
        with contextlib.suppress(ValueError):
            self.magics.unobserve(self._on_default, names=["model", "temperature", "top_p", "max_tokens"])
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


def _or(value: float | None, default: float) -> float:
    return default if value is None else float(value)


def _options(names: Sequence[str], current: str) -> tuple[str, ...]:
    names = list(names) or [ConversationStore.DEFAULT]
    if current and current not in names:
        names.append(current)
    return tuple(names)


def _descendants(widget: W.Widget) -> list[W.Widget]:
    found, todo = [], [widget]
    while todo:
        w = todo.pop()
        found.append(w)
        todo.extend(getattr(w, "children", ()) or ())
    return found


def _close_tree(widget: W.Widget) -> None:
    for w in _descendants(widget):
        w.close()


def _html_values(widget: W.Widget) -> list[str]:
    values: list[str] = []
    stack = [widget]
    while stack:
        w = stack.pop(0)
        if isinstance(w, (W.HTML, W.HTMLMath)):
            values.append(w.value)
        stack[0:0] = list(getattr(w, "children", ()) or ())
    return values


def _cell_history(shell: Any) -> Any:
    """The notebook's executed cells (recorded since the extension loaded), for --cells."""
    from .cells import history

    return history(shell) if shell is not None else None


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
