"""Threads and turns: the per-notebook conversation state.

A thread is a system prompt plus an ordered list of turns. A turn is one user message and the
assistant's answer. Turns know the notebook cell that produced them, so re-running a cell replaces its
turn in place instead of appending a duplicate; turns after it stay but are marked stale. When the caller
also names the execution (one run of a cell), several calls in one run are separate turns, appended in
order, and the next run of the cell replaces them as a group.

A turn enters the thread only once its answer is complete (or was interrupted by the user, which keeps
the partial answer like a stopped reply in a chat app). A failed turn never enters the context.

This module knows nothing of display, IPython or the network.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from . import archive
from .archive import EXPORT_FORMAT, ConversationFileError
from .errors import ThreadBusyError
from .redact import redact, secrets_in_use

__all__ = ["EXPORT_FORMAT", "ConversationFileError", "ConversationStore", "Pending", "Thread", "ThreadBusyError",
           "Turn", "TurnStatus", "content_text"]


class TurnStatus(str, Enum):
    """How a turn ended. A committed turn is OK or INTERRUPTED; the others describe what a view shows."""

    OK = "ok"
    INTERRUPTED = "interrupted"  # the user stopped it; the partial answer is kept
    NOTHING_KEPT = "interrupted before any answer: nothing was kept"  # a view only: no turn exists
    ERROR = "error"  # the request failed: shown with a card, never committed
    INVALID = "invalid"  # complete, but failed --schema validation: never committed
    MAX_STEPS = "max-steps"  # the tool loop hit --max-steps
    CACHED = "cached"  # replayed from the response cache

    def __str__(self) -> str:
        return self.value


OK = TurnStatus.OK
INTERRUPTED = TurnStatus.INTERRUPTED


@dataclass
class Turn:
    """One exchange: the user message and the assistant message that answered it."""

    user: Any  # str or a list of content parts, as sent
    assistant: dict[str, Any]  # the assistant message as it is sent back next time
    text: str = ""  # the answer text, for display and --out
    cell_id: str | None = None
    execution: int | str | None = None  # which run of the cell produced it (None: not tracked)
    status: str = OK  # a TurnStatus value: OK or INTERRUPTED once committed
    stale: bool = False  # an earlier turn was replaced after this one was answered
    model: str | None = None  # the model that actually answered
    provider: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)  # request parameters other than messages
    extra: list[dict[str, Any]] = field(default_factory=list)  # tool-call rounds between user and answer
    cached: bool = False  # replayed from the response cache
    created: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        # stored as the plain string: saved metadata, exports and `print(turn.status)` read as "ok"/"interrupted"
        self.status = str(self.status)

    def messages(self) -> list[dict[str, Any]]:
        """The messages this turn contributes to a later request's context (tool rounds included)."""
        return [{"role": "user", "content": self.user}, *self.extra, self.assistant]

    @property
    def cost(self) -> float:
        value = self.usage.get("cost")
        return float(value) if isinstance(value, (int, float)) else 0.0


@dataclass
class Thread:
    """A named conversation: optional system prompt and its committed turns."""

    name: str
    system: str | None = None
    turns: list[Turn] = field(default_factory=list)

    def index_of_cell(self, cell_id: str | None) -> int | None:
        """Position of the turn produced by ``cell_id``, if that cell already answered here."""
        if cell_id is None:
            return None
        for i, turn in enumerate(self.turns):
            if turn.cell_id == cell_id:
                return i
        return None

    def context(self, upto: int | None = None, system: str | None = None) -> list[dict[str, Any]]:
        """Messages for a request: the system prompt and the turns before ``upto`` (all by default)."""
        prompt = system if system is not None else self.system
        messages: list[dict[str, Any]] = [{"role": "system", "content": prompt}] if prompt else []
        for turn in self.turns[:upto]:
            messages.extend(turn.messages())
        return messages


@dataclass
class Pending:
    """A turn under way: where it will land and the context it was sent with."""

    thread: Thread
    user: Any
    cell_id: str | None
    replaces: int | None  # index of the turn this re-run replaces, if any
    messages: list[dict[str, Any]]  # the full request messages, the new user message included
    started: float = field(default_factory=time.monotonic)
    execution: int | str | None = None
    removes: frozenset[str] = frozenset()  # ids of the cell's turns from an earlier run (replaced as a group)
    after: str | None = None  # id of this run's previous turn, which the new one follows


@dataclass(frozen=True)
class _Placement:
    """Where a turn from (cell, execution) lands: the context length and the turns it replaces or follows."""

    upto: int
    replaces: int | None = None
    removes: frozenset[str] = frozenset()
    after: str | None = None


def _place(thread: Thread, cell_id: str | None, execution: int | str | None) -> _Placement:
    """Old rule without an execution (replace the cell's turn); with one, group the run's turns."""
    if cell_id is None:
        return _Placement(len(thread.turns))
    if execution is None:
        replaces = thread.index_of_cell(cell_id)
        return _Placement(len(thread.turns) if replaces is None else replaces, replaces)
    mine = [i for i, t in enumerate(thread.turns) if t.cell_id == cell_id]
    same = [i for i in mine if thread.turns[i].execution == execution]
    if same:  # a later call in the same run: right after the run's previous turn
        return _Placement(same[-1] + 1, after=thread.turns[same[-1]].id)
    if mine:  # the first call of a re-run: takes the place of the previous run's turns
        return _Placement(mine[0], mine[0], frozenset(thread.turns[i].id for i in mine))
    return _Placement(len(thread.turns))


class ConversationStore:
    """All threads of one notebook (one kernel), plus the notebook's usage totals.

    Methods are guarded by a lock: the widget panel streams on the kernel's event loop while cells run,
    and the two must never interleave their edits.
    """

    DEFAULT = "default"

    def __init__(self) -> None:
        self.threads: dict[str, Thread] = {}
        self._lock = threading.RLock()
        self._busy: set[str] = set()

    # -- threads ---------------------------------------------------------------------------------
    def get(self, name: str | None = None) -> Thread:
        """The thread called ``name`` (created empty on first use)."""
        key = name or self.DEFAULT
        with self._lock:
            if key not in self.threads:
                self.threads[key] = Thread(key)
            return self.threads[key]

    def reset(self, name: str | None = None) -> Thread:
        """Forget a thread's turns (its system prompt stays)."""
        with self._lock:
            thread = self.get(name)
            thread.turns.clear()
            return thread

    def names(self) -> list[str]:
        with self._lock:
            return list(self.threads)

    # -- turns -----------------------------------------------------------------------------------
    def begin(self, name: str | None, user: Any, cell_id: str | None = None, *, system: str | None = None,
              memory: bool = True, execution: int | str | None = None) -> Pending:
        """Prepare a turn: find where it lands and build the request messages.

        Re-running a cell that already answered in this thread sends only the turns before it.
        ``execution`` identifies one run of the cell: calls in the same run each get a turn (in order,
        each sent the ones before it); a new run replaces all of the cell's earlier turns as a group.
        ``memory=False`` (``--once``) sends no earlier turns and will not be committed.
        """
        with self._lock:
            thread = self.get(name)
            if thread.name in self._busy:
                raise ThreadBusyError(thread.name)
            messages = self.preview(thread.name, user, cell_id, system=system, memory=memory, execution=execution)
            spot = _place(thread, cell_id, execution) if memory else _Placement(len(thread.turns))
            self._busy.add(thread.name)
            return Pending(thread, user, cell_id, spot.replaces, messages, execution=execution,
                           removes=spot.removes, after=spot.after)

    def preview(self, name: str | None, user: Any, cell_id: str | None = None, *, system: str | None = None,
                memory: bool = True, execution: int | str | None = None) -> list[dict[str, Any]]:
        """The messages :meth:`begin` would send, without reserving the thread (for --dry-run)."""
        with self._lock:
            thread = self.get(name)
            if memory:
                messages = thread.context(_place(thread, cell_id, execution).upto, system)
            else:
                prompt = system if system is not None else thread.system
                messages = [{"role": "system", "content": prompt}] if prompt else []
            messages.append({"role": "user", "content": user})
            return messages

    def commit(self, pending: Pending, turn: Turn) -> Turn:
        """Put a finished (or interrupted) turn into its thread, replacing the cell's earlier turn(s)."""
        with self._lock:
            self._busy.discard(pending.thread.name)
            turns = pending.thread.turns
            turn.cell_id = pending.cell_id
            turn.execution = pending.execution
            at = _landing(turns, pending)
            if at is None:
                turns.append(turn)
                return turn
            if pending.removes:
                turns[:] = [t for t in turns if t.id not in pending.removes]
                turns.insert(at, turn)
            elif pending.after is not None:
                turns.insert(at, turn)
            else:
                turns[at] = turn
            for later in turns[at + 1:]:
                later.stale = True
            return turn

    def release(self, pending: Pending) -> None:
        """End a turn that will not be committed (failed, or ``--once``)."""
        with self._lock:
            self._busy.discard(pending.thread.name)

    def drop_cell(self, name: str | None, cell_id: str, execution: int | str | None = None) -> int:
        """Remove the turns an earlier run of ``cell_id`` left in the thread (a re-run that keeps nothing);
        turns after them are marked stale. Returns how many were removed (none while the thread answers)."""
        with self._lock:
            thread = self.get(name)
            if thread.name in self._busy:
                return 0
            gone = [i for i, t in enumerate(thread.turns)
                    if t.cell_id == cell_id and (execution is None or t.execution != execution)]
            if gone:
                for later in thread.turns[gone[0] + 1:]:
                    later.stale = True
                thread.turns[:] = [t for i, t in enumerate(thread.turns) if i not in set(gone)]
            return len(gone)

    def undo(self, name: str | None = None) -> Turn | None:
        """Remove and return the thread's last turn."""
        with self._lock:
            thread = self.get(name)
            return thread.turns.pop() if thread.turns else None

    def is_busy(self, name: str | None = None) -> bool:
        with self._lock:
            return (name or self.DEFAULT) in self._busy

    # -- accounting ------------------------------------------------------------------------------
    def usage_by_model(self) -> dict[str, dict[str, float]]:
        """Tokens and cost per model over every committed turn of every thread."""
        totals: dict[str, dict[str, float]] = {}
        with self._lock:
            for thread in self.threads.values():
                for turn in thread.turns:
                    row = totals.setdefault(turn.model or "?", {"turns": 0, "prompt_tokens": 0, "cached_tokens": 0,
                                                                 "completion_tokens": 0, "cost": 0.0,
                                                                 "cache_saved": 0.0})
                    row["turns"] += 1
                    row["cache_saved"] += float(turn.usage.get("cache_saved") or 0)
                    for key in ("prompt_tokens", "cached_tokens", "completion_tokens"):
                        row[key] += int(turn.usage.get(key) or 0)
                    row["cost"] += turn.cost
        return totals

    # -- export / load ---------------------------------------------------------------------------
    def to_dict(self, secrets: Iterable[str] = ()) -> dict[str, Any]:
        """The export: every thread and turn, with the key and key-shaped strings masked."""
        with self._lock:
            data = {"format": EXPORT_FORMAT,
                    "threads": [{"name": t.name, "system": t.system, "turns": [asdict(x) for x in t.turns]}
                                for t in self.threads.values()]}
        return redact(data, secrets_in_use(*secrets))

    def load_dict(self, data: Any, secrets: Iterable[str] = ()) -> None:
        """Replace every thread with those in ``data`` (as written by :meth:`to_dict`), once all of it is valid.

        Raises ConversationFileError (one line) and changes nothing when ``data`` is not a valid export.
        """
        parsed = redact(archive.parse_export(data), secrets_in_use(*secrets))
        threads = {raw["name"]: Thread(raw["name"], raw["system"], [Turn(**turn) for turn in raw["turns"]])
                   for raw in parsed}
        with self._lock:
            self.threads = threads

    def export(self, path: str | Path, *, force: bool = False, secrets: Iterable[str] = ()) -> Path:
        """Write JSON (round-trips through :meth:`load`) or, for ``.md``, readable markdown.

        Never over a notebook, over another existing file only with ``force``; ConversationFileError otherwise.
        """
        target = Path(path).expanduser()
        if target.suffix.lower() in {".md", ".markdown"}:
            text = redact(self.to_markdown(), secrets_in_use(*secrets))
        else:
            text = json.dumps(self.to_dict(secrets), indent=1, ensure_ascii=False)
        return archive.write_new(target, text, force=force)

    def load(self, path: str | Path, secrets: Iterable[str] = ()) -> None:
        self.load_dict(archive.read_json(path), secrets)

    def restore_notebook(self, notebook: Any, key: str = "or_magic", secrets: Iterable[str] = ()) -> int:
        """Rebuild the threads from turns saved in a notebook's output metadata; returns how many.

        The cells are read in notebook order; each ``%%chat`` output carries its committed turn, so a
        restarted kernel gets its conversation back without calling the API again. A malformed notebook
        raises ConversationFileError and changes nothing.
        """
        saved = redact(archive.parse_notebook(notebook, key), secrets_in_use(*secrets))
        threads: dict[str, Thread] = {}
        for name, system, turn in saved:
            thread = threads.setdefault(name or self.DEFAULT, Thread(name or self.DEFAULT))
            if system:
                thread.system = system
            thread.turns.append(Turn(**turn))
        if saved:
            with self._lock:
                self.threads = threads
        return len(saved)

    def to_markdown(self) -> str:
        parts: list[str] = []
        with self._lock:
            for thread in self.threads.values():
                parts.append(f"# Thread: {thread.name}\n")
                if thread.system:
                    parts.append(f"*System:* {thread.system}\n")
                for n, turn in enumerate(thread.turns, 1):
                    flags = "".join(f" ({flag})" for flag, on in
                                    (("stale", turn.stale), ("interrupted", turn.status == INTERRUPTED)) if on)
                    parts.append(f"## {n}. User{flags}\n\n{content_text(turn.user)}\n")
                    parts.append(f"### Assistant ({turn.model or '?'})\n\n{turn.text}\n")
        return "\n".join(parts)


def _landing(turns: list[Turn], pending: Pending) -> int | None:
    """Index the committed turn takes (None: append), checked against the thread as it is now."""
    if pending.removes:
        group = [i for i, t in enumerate(turns) if t.id in pending.removes]
        return group[0] if group else None
    if pending.after is not None:
        ids = [t.id for t in turns]
        return ids.index(pending.after) + 1 if pending.after in ids else None
    if pending.replaces is not None and pending.replaces < len(turns) \
            and turns[pending.replaces].cell_id == pending.cell_id:
        return pending.replaces
    return None


def content_text(content: Any) -> str:
    """The text of a message's content, whether a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, dict):
                if part.get("type") == "text":
                    texts.append(str(part.get("text", "")))
                else:
                    texts.append(f"[{part.get('type', 'part')}]")
        return "\n".join(texts)
    return "" if content is None else str(content)
