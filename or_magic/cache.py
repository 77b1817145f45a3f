"""Record / replay: answers stored on disk, keyed by the exact request, so "Restart & Run All" is free.

An entry is one JSON file named by the SHA-256 of the request (server, model, messages, parameters;
never the key or headers). Files are written to a temporary name and renamed into place, so concurrent
kernels sharing the directory never see half-written entries; a corrupt or foreign file is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from .errors import CacheError

FORMAT = "or_magic.cache/1"


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
        """The recorded result (a ChatResult dump), or None."""
        try:
            entry = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("format") != FORMAT or entry.get("key") != key:
            return None
        result = entry.get("result")
        return result if isinstance(result, dict) else None

    def put(self, key: str, result: dict[str, Any], *, model: str | None = None) -> Path:
        """Record ``result`` atomically (write a temporary file, then rename it into place).

        Raises :class:`CacheError` (an ``OSError``) when the directory cannot be written.
        """
        path = self._path(key)
        entry = {"format": FORMAT, "key": key, "model": model, "created": time.time(), "result": result}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        except OSError as exc:
            raise CacheError(f"cannot write to {str(self.directory)!r}: {exc.strerror or exc}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(entry, fh, ensure_ascii=False)
            os.replace(tmp, path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise CacheError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def clear(self) -> int:
        """Delete every entry; returns how many were removed."""
        removed = 0
        if not self.directory.is_dir():
            return 0
        for path in self.directory.glob("*/*.json"):
            try:
                path.unlink()
                removed += 1
            except OSError:
                pass
        return removed

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("*/*.json")) if self.directory.is_dir() else 0
