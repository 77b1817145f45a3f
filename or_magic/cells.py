"""The notebook's executed cells, remembered so a request can include them (``--cells``, ``%chat fix``).

``install(shell)`` adds two IPython event callbacks and, in a kernel, two message hooks; all of them look
and never change anything:

* ``pre_run_cell`` notes the execution count, whether it is a chat cell, and the request it answers;
* ``post_run_cell`` keeps the error, if the cell failed (as text: see :mod:`or_magic.celltrace`);
* a hook on the kernel's stdout/stderr streams and one on its display publisher read each outgoing message
  (matched to its cell by the request it answers, so a thread printing later still lands on the cell where
  the front end shows its text) and return it unchanged, so progress bars, ``\\r`` lines, widgets and
  threads print exactly as before. Stream hooks are kept per thread by ipykernel and run in its IOPub
  thread, so they are registered there.

The source and the result of a cell are not copied: they are read from IPython's own history (``In``,
``Out``) when a block is built, which also covers cells run before ``install``. What a cell printed and its
error exist only for cells run after it (and only in a kernel, for printed text). Memory is bounded: at most
``CELLS_KEPT`` cells, each with at most ``PRINTED_KEPT`` characters of printed text.
"""

from __future__ import annotations

import contextlib
import re
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import defaults
from .celloutput import PrintedText
from .cellshown import ShownOutputs

if TYPE_CHECKING:  # pragma: no cover
    from .celltrace import CellError  # loaded only when a cell fails: %load_ext stays fast

__all__ = ["CellHistory", "CellRecord", "install", "uninstall", "history", "is_chat_source"]

_CHAT_LINE = re.compile(r"^\s*%{1,2}chat\b", re.MULTILINE)
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_HISTORIES: weakref.WeakKeyDictionary[Any, CellHistory] = weakref.WeakKeyDictionary()


def is_chat_source(source: str) -> bool:
    """A ``%%chat`` or ``%chat`` cell: its turn is already in the thread, so cell blocks leave it out."""
    return bool(_CHAT_LINE.search(source or ""))


@dataclass
class CellRecord:
    """What was seen of one executed cell beyond its source and ``Out``."""

    number: int
    is_chat: bool
    printed: PrintedText
    error: CellError | None = None
    finished: bool = False
    shown: ShownOutputs | None = field(default_factory=ShownOutputs)  # while it runs: what it shows


@dataclass
class CellHistory:
    """The cells of one shell: captured records plus IPython's own ``In``/``Out``."""

    shell: Any
    max_cells: int = defaults.CELLS_KEPT
    printed_chars: int = defaults.PRINTED_KEPT
    _records: OrderedDict[int, CellRecord] = field(default_factory=OrderedDict)
    _by_request: dict[str, CellRecord] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _hooks: list[tuple[Any, Any]] = field(default_factory=list)

    # ---------------------------------------------------------------- reading

    def record(self, number: int) -> CellRecord | None:
        with self._lock:
            return self._records.get(number)

    def source(self, number: int) -> str | None:
        """The raw source of cell ``number`` as ``%history`` shows it, or None if unknown."""
        inputs = getattr(self.shell.history_manager, "input_hist_raw", [])
        return inputs[number] if 0 < number < len(inputs) else None

    def result(self, number: int) -> tuple[bool, Any]:
        """``(True, Out[number])`` if the cell has a result IPython still holds, else ``(False, None)``."""
        outputs = getattr(self.shell.history_manager, "output_hist", {})
        return (True, outputs[number]) if number in outputs else (False, None)

    def is_chat(self, number: int) -> bool:
        record = self.record(number)
        return record.is_chat if record else is_chat_source(self.source(number) or "")

    @property
    def running(self) -> int | None:
        """The cell being executed now (the one a magic asking for cells runs in), if any."""
        with self._lock:
            for number in reversed(self._records):
                return None if self._records[number].finished else number
        return None

    def last_number(self) -> int:
        """The highest execution count run (or running), 0 if none."""
        inputs = getattr(self.shell.history_manager, "input_hist_raw", [])
        with self._lock:
            captured = next(reversed(self._records), 0)
        return max(len(inputs) - 1, captured, 0)

    def executed(self, *, before: int | None = None) -> list[int]:
        """Execution counts of the known cells, ascending; only those below ``before`` if given."""
        top = self.last_number() if before is None else before - 1
        return [n for n in range(1, top + 1) if self.source(n) is not None or self.record(n)]

    def shown_now(self) -> ShownOutputs | None:
        """What the running cell shows (kernel only), for an answer's final redraw; None if unknown."""
        request = _request_id(self.shell)
        with self._lock:
            record = self._by_request.get(request) if request else None
        return record.shown if record is not None and not record.finished else None

    def last_failed(self, *, before: int | None = None) -> int | None:
        """The most recent cell (not a chat cell) that failed, below ``before`` if given."""
        with self._lock:
            numbers = [n for n, r in self._records.items() if r.error is not None and not r.is_chat]
        numbers = [n for n in numbers if before is None or n < before]
        return max(numbers) if numbers else None

    # ---------------------------------------------------------------- capturing

    def _pre_run_cell(self, info: Any) -> None:
        if not getattr(info, "store_history", True):
            return
        # IPython 9 counts the cell before this event, IPython 8 after it: In holds exactly the cells before
        inputs = getattr(self.shell.history_manager, "input_hist_raw", None)
        number = len(inputs) if inputs else int(self.shell.execution_count)
        record = CellRecord(number, is_chat_source(getattr(info, "raw_cell", "") or ""),
                            PrintedText(self.printed_chars))
        request = _request_id(self.shell)
        with self._lock:
            self._keep(record)
            if request:
                self._by_request[request] = record
            while len(self._by_request) > self.max_cells:
                self._by_request.pop(next(iter(self._by_request)))

    def _keep(self, record: CellRecord) -> None:
        self._records[record.number] = record
        self._records.move_to_end(record.number)
        while len(self._records) > self.max_cells:
            self._records.popitem(last=False)

    def _post_run_cell(self, result: Any) -> None:
        number = getattr(result, "execution_count", None)
        with self._lock:
            record = next(reversed(self._records.values()), None)
            if record is None or record.finished or not isinstance(number, int):
                return
            if record.number != number:  # the count guessed before the run was wrong: trust IPython's
                self._records.pop(record.number, None)
                record.number = number
                self._keep(record)
        exc = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        if exc is not None:
            from .celltrace import cell_error

            record.error = cell_error(exc, number, getattr(self.shell.compile, "format_code_name", None))
        record.finished = True
        record.shown = None  # only a running cell is redrawn: its memory goes

    def _on_message(self, msg: Any) -> Any:
        """Read an outgoing stream/display message into its cell's printed text; always return it unchanged."""
        with contextlib.suppress(Exception):  # seeing the output must never disturb it
            self._read_message(msg)
        return msg

    def _read_message(self, msg: dict[str, Any]) -> None:
        request = (msg.get("parent_header") or {}).get("msg_id")
        with self._lock:
            record = self._by_request.get(request) if request else None
        if record is None:
            return
        kind, content = msg.get("msg_type"), msg.get("content") or {}
        shown = record.shown
        if shown is not None:
            shown.read(str(kind), content)
        if record.is_chat:
            return
        if kind == "stream":
            record.printed.write(str(content.get("text", "")))
        elif kind == "display_data":
            data = content.get("data") or {}
            if _WIDGET_VIEW not in data and isinstance(data.get("text/plain"), str):
                record.printed.add_block(data["text/plain"])
        elif kind == "clear_output" and not content.get("wait"):
            record.printed.clear()


def _request_id(shell: Any) -> str | None:
    """The id of the execute request the shell is answering (kernel only), to match output to its cell."""
    parent = getattr(shell, "parent_header", None)
    if not isinstance(parent, dict):
        return None
    header = parent.get("header") if isinstance(parent.get("header"), dict) else parent
    request = header.get("msg_id")
    return request if isinstance(request, str) else None


# -------------------------------------------------------------------- install / uninstall


def history(shell: Any) -> CellHistory | None:
    """The history installed on ``shell``, if any."""
    return _HISTORIES.get(shell)


def install(shell: Any) -> CellHistory:
    """Start remembering executed cells on ``shell`` (call from the main thread; a second call is a no-op)."""
    existing = _HISTORIES.get(shell)
    if existing is not None:
        return existing
    cells = CellHistory(shell)
    shell.events.register("pre_run_cell", cells._pre_run_cell)
    shell.events.register("post_run_cell", cells._post_run_cell)
    for target in _message_sources(shell):
        if _in_thread_of(target, lambda t=target: t.register_hook(cells._on_message)):
            cells._hooks.append((target, cells._on_message))
    _HISTORIES[shell] = cells
    return cells


def uninstall(shell: Any) -> None:
    """Stop remembering cells on ``shell`` and forget them (a no-op when not installed)."""
    cells = _HISTORIES.pop(shell, None)
    if cells is None:
        return
    for name, callback in (("pre_run_cell", cells._pre_run_cell), ("post_run_cell", cells._post_run_cell)):
        with contextlib.suppress(ValueError):
            shell.events.unregister(name, callback)
    for target, hook in cells._hooks:
        _in_thread_of(target, lambda t=target, h=hook: t.unregister_hook(h))
    cells._hooks.clear()


def _message_sources(shell: Any) -> list[Any]:
    """The kernel's display publisher and its stdout/stderr streams (none outside a kernel)."""
    import sys

    sources = [getattr(shell, "display_pub", None), sys.stdout, sys.stderr]
    return [s for s in sources if s is not None and callable(getattr(s, "register_hook", None))]


def _in_thread_of(target: Any, action: Any, timeout: float = 5.0) -> bool:
    """Run ``action`` in the thread whose hooks apply to ``target``: a stream's IOPub thread, else here."""
    pub_thread = getattr(target, "pub_thread", None)
    thread = getattr(pub_thread, "thread", None)
    if thread is None or not thread.is_alive() or thread is threading.current_thread():
        action()
        return True
    done = threading.Event()

    def run() -> None:
        try:
            action()
        finally:
            done.set()

    pub_thread.schedule(run)
    return done.wait(timeout)
