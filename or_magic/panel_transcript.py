"""The panel's transcript: the current thread's turns as widgets, rendered once and kept until they change.

Entries are cached by turn id and version (stale, status, length), so a refresh after each cell only
builds what is new; entries no thread holds any more are closed after the transcript stopped showing them.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as W

from . import render
from .conversation import ConversationStore, Turn, content_text
from .stored import stored_turn_view, turn_flags, turn_images
from .widget_sink import answer_widget

if TYPE_CHECKING:  # pragma: no cover
    import asyncio

    from .magics import ChatMagics
    from .session import Session


def user_html(prompt: Any, label: str = "") -> str:
    """The user's message as a right-leaning bubble (rendered safely, like answers)."""
    small = f' <small style="opacity:.65">{html.escape(label)}</small>' if label else ""
    return (f'<div class="or-magic-user" style="margin:.6em 0 .2em 15%;padding:.1em .8em;border-radius:8px;'
            f'background:var(--jp-layout-color2,#eee)"><b>You</b>{small}'
            f"{render.render_markdown(content_text(prompt))}</div>")


def turn_key(turn: Turn) -> tuple[Any, ...]:
    """What makes a turn's entry out of date when it changes."""
    return (turn.id, turn.stale, turn.status, len(turn.text))


def flags_label(turn: Turn) -> str:
    return ", ".join(turn_flags(turn))


def thread_signature(store: ConversationStore, name: str) -> tuple[Any, ...]:
    """A cheap summary of the thread list and one thread: the transcript is rebuilt only when it changes."""
    thread = store.threads.get(name)
    turns = thread.turns if thread is not None else []
    return (tuple(store.names()), thread.system if thread is not None else None,
            tuple(turn_key(t) for t in turns))


class TranscriptMixin:
    """The transcript part of :class:`~or_magic.panel.ChatPanel`: the thread list and the shown thread's turns."""

    magics: ChatMagics
    session: Session
    models_task: asyncio.Future[Any] | None
    transcript: W.VBox
    thread: W.Dropdown
    system: W.Textarea
    _live: W.VBox | None
    _notes: list[W.Widget]
    _turn_widgets: dict[str, tuple[tuple[Any, ...], W.Widget]]
    _notices: dict[str, tuple[str, W.Widget]]
    _retired: list[W.Widget]
    _signature: tuple[Any, ...]
    _system_shown: str

    def new_thread(self, name: str | None = None) -> str:
        """Start a new, empty thread and switch to it."""
        store = self.session.store
        if name is None:
            n = len(store.names()) + 1
            while f"chat {n}" in store.names():
                n += 1
            name = f"chat {n}"
        store.get(name)
        self.thread.options = thread_options(store.names(), name)
        self.thread.value = name
        return name

    def refresh(self, *, models: bool = False) -> None:
        """Show the thread list and the current thread's turns as the store has them (incl. %%chat turns)."""
        store = self.session.store
        options = thread_options(store.names(), self.thread.value or store.DEFAULT)
        if tuple(self.thread.options) != options:
            self.thread.options = options
        self._show_transcript()
        if models:
            self.models_task = self._start(self.load_models(refresh=True)) or self.models_task

    def _on_thread(self, change: dict[str, Any]) -> None:
        thread = self.session.store.get(change["new"] or None)
        self.system.value = thread.system or self.magics.system or ""
        self._system_shown = thread.system or ""
        self._notes = []
        self._show_transcript()

    def _after_cell(self, result: Any = None) -> None:
        """After each cell: show turns a %%chat cell added (cheap: compares a small signature)."""
        shell = self.magics.shell
        if shell is not None and shell.magics_manager.registry.get("ChatMagics") is not self.magics:
            self._detach()  # the extension was unloaded
            return
        try:
            if thread_signature(self.session.store, self.thread.value or "") != self._signature:
                self.refresh()
        except Exception as err:  # never break the user's cells because of the panel
            self._say(f"refresh failed: {err!r}", "error")

    def transcript_html(self) -> str:
        """All HTML in the transcript, oldest first (for scripts and tests)."""
        return "\n".join(html_values(self.transcript))

    def with_user(self, prompt: Any, answer: W.Widget, label: str = "") -> W.Widget:
        return W.VBox([W.HTMLMath(user_html(prompt, label)), answer], layout=W.Layout(overflow="visible"))

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
        self._signature = thread_signature(store, name)
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
        key = turn_key(turn)
        hit = self._turn_widgets.get(turn.id)
        if hit is not None and hit[0] == key:
            return hit[1]
        if hit is not None:
            self._retired.append(hit[1])
        view = stored_turn_view(turn, sandbox=self.session.on_sandbox)
        widget = self.with_user(turn.user, answer_widget(render.final_bundle(view)["text/html"],
                                                          turn_images(turn.assistant)), flags_label(turn))
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
            close_tree(widget)

    def _follow_system(self, system: str | None) -> None:
        """The box follows the thread's system prompt (set by a ``%%chat -s`` cell, say) unless being edited."""
        current = system or ""
        if current != self._system_shown:
            if self.system.value == self._system_shown:
                self.system.value = current
            self._system_shown = current


def thread_options(names: Sequence[str], current: str) -> tuple[str, ...]:
    names = list(names) or [ConversationStore.DEFAULT]
    if current and current not in names:
        names.append(current)
    return tuple(names)


def descendants(widget: W.Widget) -> list[W.Widget]:
    found, todo = [], [widget]
    while todo:
        w = todo.pop()
        found.append(w)
        todo.extend(getattr(w, "children", ()) or ())
    return found


def close_tree(widget: W.Widget) -> None:
    for w in descendants(widget):
        w.close()


def html_values(widget: W.Widget) -> list[str]:
    values: list[str] = []
    stack = [widget]
    while stack:
        w = stack.pop(0)
        if isinstance(w, (W.HTML, W.HTMLMath)):
            values.append(w.value)
        stack[0:0] = list(getattr(w, "children", ()) or ())
    return values


__all__ = ["TranscriptMixin", "user_html", "turn_key", "flags_label", "thread_signature", "descendants",
           "close_tree", "html_values", "thread_options"]
