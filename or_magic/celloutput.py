"""What a cell printed, kept as text a model can read, in bounded memory.

The text arrives in chunks, as the kernel flushes its streams. A carriage return is honoured the way a
terminal or a notebook shows it: the line is redrawn, so a progress bar leaves only its last state instead
of every frame. Only the first and last lines are kept once the limit is reached (with a count of what was
dropped between them), so a cell printing megabytes costs a few kilobytes here.
"""

from __future__ import annotations

import re
import threading
from collections import deque

__all__ = ["PrintedText"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


class PrintedText:
    """Bounded, thread-safe text of one cell's streams and displays (head lines, tail lines, current line)."""

    def __init__(self, limit: int) -> None:
        self._limit = max(int(limit), 40)
        self._lock = threading.Lock()
        self._head: list[str] = []
        self._head_chars = 0
        self._tail: deque[str] = deque()
        self._tail_chars = 0
        self._dropped = 0  # lines dropped between head and tail
        self._line = ""  # the line being written (no newline yet)
        self._redraw = False  # a carriage return was seen: the next text replaces the line

    def write(self, text: str) -> None:
        """Add a chunk of stream text (any split: lines may arrive in pieces)."""
        parts = text.replace("\r\n", "\n").split("\n")
        with self._lock:
            for i, part in enumerate(parts):
                self._write_line_part(part)
                if i < len(parts) - 1:
                    self._commit(self._line)
                    self._line, self._redraw = "", False

    def add_block(self, text: str) -> None:
        """Add a whole display's text (it starts and ends on its own lines)."""
        with self._lock:
            if self._line:
                self._commit(self._line)
                self._line, self._redraw = "", False
            for line in text.splitlines() or [""]:
                self._commit(line)

    def clear(self) -> None:
        """The front end cleared the output area (``clear_output``): forget what was shown."""
        with self._lock:
            self._head, self._tail, self._head_chars, self._tail_chars = [], deque(), 0, 0
            self._dropped, self._line, self._redraw = 0, "", False

    def text(self) -> str:
        """The kept text: ANSI colour codes removed, the dropped middle said as such."""
        with self._lock:
            lines = list(self._head)
            if self._dropped:
                lines.append(f"… [{self._dropped:,} lines not kept] …")
            lines.extend(self._tail)
            if self._line:
                lines.append(self._line)
        return _ANSI.sub("", "\n".join(lines))

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._head or self._tail or self._line)

    def _write_line_part(self, part: str) -> None:
        for j, piece in enumerate(part.split("\r")):
            if j:
                self._redraw = True
            if piece:
                self._line = piece if self._redraw else self._line + piece
                self._redraw = False
        if len(self._line) > self._limit // 2:  # a huge line without a newline: keep its end
            self._line = "…" + self._line[-(self._limit // 2) :]

    def _commit(self, line: str) -> None:
        half = self._limit // 2
        if len(line) > half:
            line = line[: half - 1] + "…"
        if self._head_chars + len(line) + 1 <= half and not self._tail and not self._dropped:
            self._head.append(line)
            self._head_chars += len(line) + 1
            return
        self._tail.append(line)
        self._tail_chars += len(line) + 1
        while self._tail_chars > half and len(self._tail) > 1:
            self._tail_chars -= len(self._tail.popleft()) + 1
            self._dropped += 1
