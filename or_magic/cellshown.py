"""What the running cell shows, folded as a front end folds it, so a chat answer can redraw the cell whole.

The last step of a streamed answer clears the cell (one clean output, no leftover empty slots) and shows
again what else the cell had shown: a tool's ``print``, an earlier answer from a loop over
``run_cell_magic``, a plot. Our own streaming slots carry :data:`STREAMING` in their metadata and are not
kept. Memory is bounded by :data:`~or_magic.defaults.SHOWN_KEPT`: past it, the log gives up (``None``)
and the answer falls back to never clearing.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

from . import defaults

__all__ = ["STREAMING", "ShownOutputs", "replay"]

STREAMING = "or_magic_streaming"  # metadata flag of a slot that exists only while an answer streams


class ShownOutputs:
    """The outputs one cell shows now: streams merged, displays updated in place, clears applied."""

    def __init__(self, limit: int = defaults.SHOWN_KEPT) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._outs: list[dict[str, Any]] = []
        self._bytes = 0
        self._pending_clear = False
        self.overflow = False

    def read(self, kind: str, content: dict[str, Any]) -> None:
        """One outgoing iopub message of this cell."""
        with self._lock:
            if kind == "clear_output":
                if content.get("wait"):
                    self._pending_clear = True
                else:
                    self._clear()
                return
            if kind == "update_display_data":
                self._update(content)
                return
            if kind not in ("stream", "display_data"):
                return
            if self._pending_clear:
                self._clear()
            self._add(kind, content)

    def others(self) -> list[dict[str, Any]] | None:
        """What the cell shows besides streaming slots (copies), or None when too much was shown to keep."""
        with self._lock:
            if self.overflow:
                return None
            return [dict(o) for o in self._outs if not o["ours"]]

    def _clear(self) -> None:
        self._outs, self._bytes, self._pending_clear = [], 0, False

    def _add(self, kind: str, content: dict[str, Any]) -> None:
        size = len(json.dumps(content, default=str))
        self._bytes += size
        if self._bytes > self._limit:
            self.overflow = True
            return
        last = self._outs[-1] if self._outs else None
        if kind == "stream" and last and last["kind"] == "stream" and last["name"] == content.get("name"):
            last["text"] += str(content.get("text", ""))
            return
        ours = bool((content.get("metadata") or {}).get(STREAMING))
        self._outs.append({"kind": kind, "ours": ours, **content} if kind != "stream" else
                          {"kind": kind, "ours": False, "name": content.get("name"), "text": content.get("text", "")})

    def _update(self, content: dict[str, Any]) -> None:
        did = (content.get("transient") or {}).get("display_id")
        for out in self._outs:
            if did and (out.get("transient") or {}).get("display_id") == did:
                out["data"], out["metadata"] = content.get("data", {}), content.get("metadata", {})


def replay(outputs: list[dict[str, Any]], display: Any) -> None:
    """Show ``outputs`` again, in order (after the cell was cleared), through ``display`` and the streams."""
    for out in outputs:
        if out["kind"] == "stream":
            stream = sys.stderr if out.get("name") == "stderr" else sys.stdout
            stream.write(out.get("text", ""))
            stream.flush()
        else:
            transient = out.get("transient") or None
            display(out.get("data", {}), raw=True, metadata=out.get("metadata") or {},
                    **({"transient": transient} if transient else {}))
