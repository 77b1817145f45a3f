"""Record / replay: answers stored on disk, keyed by the exact request, so "Restart & Run All" is free.

An entry is one JSON file named by the SHA-256 of the request (server, model, messages, parameters;
never the key or headers), in a two-hex-digit folder: ``ab/ab12…(64 hex).json``. Its first bytes are
the format marker, so a file is provably ours only when both its place and its opening match; ``clear``
and ``len`` touch nothing else, even when ``cache_dir`` is a folder full of the user's own JSON.

Files are written to a temporary name and renamed into place, so concurrent kernels sharing the directory
never see half-written entries. A corrupt, foreign or mistyped entry is a miss, never an exception; a
write that fails raises one :class:`CacheError` the turn can catch and report.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import CacheError
from .redact import redact, secrets_in_use
from .types import ChatResult

FORMAT = "or_magic.cache/2"
_MARKER = f'{{"format": "{FORMAT}"'.encode()  # how every entry file begins
_OLD_MARKERS = (b'{"format": "or_magic.cache/1"',)  # earlier entries: never replayed, still ours to clear
_FOLDER = re.compile(r"[0-9a-f]{2}")
_NAME = re.compile(r"[0-9a-f]{64}\.json")

__all__ = ["FORMAT", "CacheError", "ResponseCache", "default_directory", "request_key"]


class _Entry(BaseModel):
    """One recorded answer as stored; anything else in a file makes it a miss."""

    model_config = ConfigDict(extra="ignore")
    format: Literal["or_magic.cache/2"]
    key: str
    model: str | None = None
    created: float
    result: dict[str, Any]


def default_directory() -> Path:
    """``$OR_MAGIC_CACHE_DIR``, else ``$XDG_CACHE_HOME/or_magic/responses``, else ``~/.cache/…``."""
    explicit = os.environ.get("OR_MAGIC_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "or_magic" / "responses"


def request_key(server_url: str, body: dict[str, Any]) -> str:
    """A stable digest of what determines the answer; streaming or not gives the same answer."""
    relevant = {k: v for k, v in body.items() if k not in {"stream", "stream_options"}}
    canonical = json.dumps({"server": server_url.rstrip("/"), "body": relevant}, sort_keys=True,
                           ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    """A directory of recorded answers."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory).expanduser() if directory else default_directory()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The recorded result (a valid ChatResult dump), or None for a missing, foreign or damaged entry."""
        path = self._path(key)
        try:
            if not path.is_file() or not _is_ours(path):
                return None
            entry = _Entry.model_validate_json(path.read_bytes())
            ChatResult.model_validate(entry.result)
        except (OSError, ValueError, ValidationError, RecursionError):
            return None
        return entry.result if entry.key == key else None

    def put(self, key: str, result: dict[str, Any], *, model: str | None = None) -> Path:
        """Record ``result`` (keys masked) atomically: write a temporary file, then rename it into place."""
        path = self._path(key)
        entry = {"format": FORMAT, "key": key, "model": model, "created": time.time(),
                 "result": redact(result, secrets_in_use())}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
        except OSError as err:
            raise CacheError(f"cannot write the response cache in {str(self.directory)!r}: "
                             f"{err.strerror or err}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(entry, fh, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException as err:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(err, OSError):
                raise CacheError(f"cannot write the response cache entry {str(path)!r}: "
                                 f"{err.strerror or err}") from None
            raise
        return path

    def entries(self) -> Iterator[Path]:
        """Every file that is provably one of our entries (our layout and our format marker)."""
        if not self.directory.is_dir():
            return
        try:
            folders = [p for p in self.directory.iterdir() if _FOLDER.fullmatch(p.name) and p.is_dir()]
        except OSError:
            return
        for folder in folders:
            try:
                names = list(folder.iterdir())
            except OSError:
                continue
            for path in names:
                if _NAME.fullmatch(path.name) and path.name.startswith(folder.name) \
                        and _is_ours(path, (_MARKER, *_OLD_MARKERS)):
                    yield path

    def clear(self) -> int:
        """Delete our entries (and nothing else); returns how many were removed."""
        removed = 0
        for path in list(self.entries()):
            try:
                path.unlink()
                removed += 1
            except OSError:
                pass
        return removed

    def __len__(self) -> int:
        return sum(1 for _ in self.entries())


def _is_ours(path: Path, markers: tuple[bytes, ...] = (_MARKER,)) -> bool:
    """A regular file (not a link) that begins with one of our format markers."""
    try:
        if path.is_symlink() or not path.is_file():
            return False
        with path.open("rb") as fh:
            head = fh.read(max(len(m) for m in markers))
        return any(head.startswith(m) for m in markers)
    except OSError:
        return False
