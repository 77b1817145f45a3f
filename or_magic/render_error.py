"""The error card: what went wrong, where, and what to do, without a traceback or anything secret."""

from __future__ import annotations

from dataclasses import dataclass

from .markdown import escape_text
from .render_style import MUTED, SEP, SMALL, seconds


@dataclass
class ErrorView:
    """The readable parts of an error: no traceback, nothing secret (the caller scrubs the key)."""

    kind: str
    status: int | None = None
    message: str = ""
    provider: str | None = None
    detail: str | None = None  # the useful part of metadata.raw
    hint: str | None = None
    generation_id: str | None = None
    retry_after: float | None = None


def _error_meta(e: ErrorView) -> list[str]:
    meta = []
    if e.provider:
        meta.append(f"provider: {e.provider}")
    if e.retry_after is not None:
        meta.append(f"retry after {seconds(e.retry_after)}")
    if e.generation_id:
        meta.append(f"generation: {e.generation_id}")
    return meta


def _error_title(e: ErrorView) -> str:
    return f"{e.kind} ({e.status})" if e.status is not None else e.kind


def error_card_text(e: ErrorView) -> str:
    """The card as plain text lines."""
    lines = [f"⚠ {_error_title(e)}: {e.message}".rstrip(": ")]
    meta = _error_meta(e)
    if meta:
        lines.append(SEP.join(meta))
    if e.detail:
        lines.append(f"detail: {e.detail}")
    if e.hint:
        lines.append(f"hint: {e.hint}")
    return "\n".join(lines)


def error_card_html(e: ErrorView) -> str:
    """A bordered card in the theme's error colour: type and status, message, provider, detail, hint."""
    rows = [
        f'<div><strong style="color:var(--jp-error-color1)">⚠ {escape_text(_error_title(e))}</strong></div>',
    ]
    if e.message:
        rows.append(f'<div style="white-space:pre-wrap">{escape_text(e.message)}</div>')
    meta = _error_meta(e)
    if meta:
        rows.append(f'<div style="{SMALL};{MUTED}">{escape_text(SEP.join(meta))}</div>')
    if e.detail:
        rows.append(
            '<pre style="margin:0.3em 0;padding:0.3em 0.5em;white-space:pre-wrap;word-break:break-word;'
            f'background:var(--jp-layout-color2)">{escape_text(e.detail)}</pre>'
        )
    if e.hint:
        rows.append(f"<div>💡 {escape_text(e.hint)}</div>")
    return (
        '<div class="or-magic-error" role="alert" style="margin:0.5em 0;padding:0.4em 0.75em;'
        "border:1px solid var(--jp-error-color1);border-left-width:4px;border-radius:4px;"
        f'color:var(--jp-content-font-color1)">{"".join(rows)}</div>'
    )
