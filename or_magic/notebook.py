"""The notebook file this kernel runs, and rebuilding threads from the turns saved in its outputs.

Below the faces: the magic (on load), ``%chat restore`` and the panel use it without importing each other.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .conversation import ConversationStore

MARKER = '"or_magic"'  # every saved turn's output metadata carries this key


def notebook_path(ip: Any) -> str | None:
    """The notebook this kernel runs, when the server told it (JupyterLab / Notebook 7 do)."""
    ns = ip.user_ns if ip is not None else {}
    for candidate in (ns.get("__session__"), os.environ.get("JPY_SESSION_NAME")):
        if isinstance(candidate, str) and candidate.endswith(".ipynb") and os.path.isfile(candidate):
            return candidate
    return None


def read_notebook(path: str) -> dict[str, Any]:
    """The notebook's JSON; ``OSError``/``ValueError`` when it cannot be read."""
    return json.loads(Path(path).expanduser().read_text(encoding="utf-8"))


def restore_saved_turns(ip: Any, store: Callable[[], ConversationStore]) -> int:
    """After a restart, rebuild the threads from the turns saved in the notebook's outputs (no API calls).

    ``store`` is called only when the notebook holds saved turns, so ``%load_ext`` stays fast (the session,
    with the client and pydantic, is created on first use).
    """
    path = notebook_path(ip)
    if path is None:
        return 0
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        if MARKER not in text:  # cheap check before parsing
            return 0
        count = store().restore_notebook(json.loads(text))
    except (OSError, ValueError):
        return 0
    if count:
        print(f"or_magic: restored {count} turns from {os.path.basename(path)} (no API calls)")
    return count
