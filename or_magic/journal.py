"""The on-disk record of a map, so a re-run (even after a kernel restart) sends only unanswered rows.

One JSONL file per map, named by the digest of what the map sends (server, parameters, system prompt,
prompt template): a header line ``{"format", "key"}``, then one line per answered row, appended with a
single ``write`` as soon as the row's answer arrives. A kill mid-write loses at most that row (a broken
last line is skipped on reading and closed off before the next append). Rows are found again by the
digest of their own request, so a changed row is sent again and an unchanged one never is. No key, header
or request body is stored: only answers, costs, model names and error messages (already scrubbed).
A file whose header is not ours is never read, written or deleted.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from .cache import default_directory

FORMAT = "or_magic.map/1"
logger = logging.getLogger(__name__)


def journal_directory(directory: str | Path | None = None) -> Path:
    """Where journals live: ``directory``, else ``maps/`` under the response cache directory."""
    return Path(directory).expanduser() if directory else default_directory() / "maps"


class MapJournal:
    """Append-only answers of one map. ``usable`` is False when the file is someone else's."""

    def __init__(self, key: str, directory: str | Path | None = None) -> None:
        self.key = key
        self.path = journal_directory(directory) / f"{key}.jsonl"
        self.usable = True

    def _header(self) -> bytes:
        return (json.dumps({"format": FORMAT, "key": self.key}) + "\n").encode("utf-8")

    def _ours(self, first_line: bytes) -> bool:
        try:
            head = json.loads(first_line)
        except ValueError:
            return False
        return isinstance(head, dict) and head.get("format") == FORMAT and head.get("key") == self.key

    def load(self) -> dict[str, dict[str, Any]]:
        """Answered rows by request digest (the last record of a digest wins); {} when none or foreign."""
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            logger.warning("map journal %s unreadable (%s): every row will be sent", self.path, exc)
            self.usable = False
            return {}
        if not lines or not self._ours(lines[0]):
            logger.warning("%s is not an or_magic map journal: left alone, this map is not recorded", self.path)
            self.usable = False
            return {}
        rows: dict[str, dict[str, Any]] = {}
        for line in lines[1:]:
            try:
                record = json.loads(line)
            except ValueError:  # a line cut short by a kill
                continue
            if isinstance(record, dict) and isinstance(record.get("digest"), str):
                rows[record["digest"]] = record
        return rows

    def start(self, fresh: bool = False) -> None:
        """Create the file with its header (``fresh``: replace our old one, atomically)."""
        if not self.usable:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and not fresh:
            self._close_broken_line()
            return
        if self.path.exists() and not self._ours(self._first_line()):
            self.usable = False
            return
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-", suffix=".jsonl")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(self._header())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _first_line(self) -> bytes:
        with open(self.path, "rb") as fh:
            return fh.readline()

    def _close_broken_line(self) -> None:
        """A previous run killed mid-write left no newline: end that line so the next record stands alone."""
        with open(self.path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() == 0:
                return
            fh.seek(-1, os.SEEK_END)
            broken = fh.read(1) != b"\n"
        if broken:
            self._write(b"\n")

    def append(self, record: dict[str, Any]) -> None:
        """One row's record as one line, in one ``write``."""
        if not self.usable:
            return
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        try:
            self._write(line.encode("utf-8"))
        except OSError as exc:
            logger.warning("map journal %s not writable (%s): later rows are not recorded", self.path, exc)
            self.usable = False

    def _write(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
