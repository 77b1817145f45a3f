"""Small inline notices (interrupted, stale, dry run, busy…) and the line shown before the first token."""

from __future__ import annotations

import re

from .markdown import escape_text
from .render_style import MUTED, SMALL, seconds


def waiting_html(model: str, elapsed: float) -> str:
    """Shown before the first token, refreshed with the elapsed time."""
    return (
        f'<div class="or-magic-waiting" style="{SMALL};{MUTED}">⏳ waiting for '
        f"<code>{escape_text(model)}</code>… {escape_text(seconds(max(elapsed, 0.0)))}</div>"
    )


_NOTICES = {
    "interrupted": ("⏹", "var(--jp-warn-color1)"),
    "stopped": ("⏹", "var(--jp-warn-color1)"),
    "incomplete": ("⚠", "var(--jp-warn-color1)"),
    "stale": ("⟲", "var(--jp-ui-font-color2)"),
    "error": ("⚠", "var(--jp-error-color1)"),
    "busy": ("⏳", "var(--jp-warn-color1)"),
    "dry run": ("🧪", "var(--jp-info-color1, var(--jp-ui-font-color2))"),
    "cached": ("♻", "var(--jp-ui-font-color2)"),
}
_CLASS_SAFE = re.compile(r"[^a-z0-9]+")


def notice_html(kind: str, text: str) -> str:
    """A small inline notice (``interrupted``, ``stale``, ``dry run``, ``system``…)."""
    icon, color = _NOTICES.get(kind, ("ℹ", "var(--jp-ui-font-color2)"))
    cls = _CLASS_SAFE.sub("-", kind.lower()).strip("-") or "info"
    label = (
        f"<strong>{escape_text(kind)}</strong>: " if kind and kind.lower() not in text.lower()[:40] else ""
    )
    return (
        f'<div class="or-magic-notice or-magic-notice-{cls}" style="margin:0.3em 0;{SMALL};color:{color};'
        f'white-space:pre-wrap">{icon} {label}{escape_text(text)}</div>'
    )


def notice_text(kind: str, text: str) -> str:
    """The notice as one plain line: its icon, then the text."""
    icon, _ = _NOTICES.get(kind, ("ℹ", ""))
    return f"{icon} {text}"
