"""The small line under an answer: model, tokens, cost, prompt cache, timings, status."""

from __future__ import annotations

from dataclasses import dataclass

from .markdown import escape_text
from .render_style import MUTED, SEP, SMALL, rate, seconds, tokens, usd


@dataclass
class Footer:
    """What the small line under an answer says; every field is optional."""

    model: str | None = None
    provider: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost: float | None = None
    cached_tokens: int | None = None  # prompt tokens read from the provider's prompt cache
    cache_write_tokens: int | None = None  # prompt tokens written to it
    cache_saved: float | None = None  # USD the cache saved, when the response says
    ttft: float | None = None  # seconds to the first token
    elapsed: float | None = None  # seconds, whole request
    tokens_per_s: float | None = None
    status: str = ""  # "", "interrupted", "cached", "error", "incomplete", "stale"
    sandbox: bool = False
    finish_reason: str | None = None


def _model_part(f: Footer) -> list[tuple[str, str]]:
    if f.model and f.provider:
        return [("model", f"{f.model} via {f.provider}")]
    if f.model or f.provider:
        return [("model", f.model or f"via {f.provider}")]
    return []


def _usage_parts(f: Footer) -> list[tuple[str, str]]:
    """Tokens, cost and the prompt cache: what the answer used."""
    parts: list[tuple[str, str]] = []
    if f.prompt_tokens is not None or f.completion_tokens is not None:
        tok = f"{tokens(f.prompt_tokens)}→{tokens(f.completion_tokens)} tok"
        if f.reasoning_tokens:
            tok += f" ({f.reasoning_tokens:,} reasoning)"
        parts.append(("", tok))
    if f.cost is not None:
        parts.append(("", usd(f.cost)))
    if f.cached_tokens or f.cache_write_tokens:
        parts.append(("", _cache_text(f)))
    return parts


def _timing_parts(f: Footer) -> list[tuple[str, str]]:
    parts: list[tuple[str, str]] = []
    if f.ttft is not None:
        parts.append(("", f"first token {seconds(f.ttft)}"))
    if f.elapsed is not None:
        parts.append(("", f"total {seconds(f.elapsed)}"))
    if f.tokens_per_s:
        parts.append(("", rate(f.tokens_per_s)))
    return parts


def _state_parts(f: Footer) -> list[tuple[str, str]]:
    """An unusual finish, the turn's status and the sandbox mark, coloured when they warn."""
    parts: list[tuple[str, str]] = []
    if f.finish_reason and f.finish_reason not in ("stop", "tool_calls"):
        parts.append(("warn", f"finish: {f.finish_reason}"))
    if f.status:
        parts.append(("error" if f.status == "error" else "warn", f.status))
    if f.sandbox:
        parts.append(("", "sandbox"))
    return parts


def _footer_parts(f: Footer) -> list[tuple[str, str]]:
    """(kind, text) pieces, in reading order; the kind picks a colour in HTML."""
    return _model_part(f) + _usage_parts(f) + _timing_parts(f) + _state_parts(f)


def _cache_text(f: Footer) -> str:
    """``prompt cache: 1,234 read, 56 written, saved $0.0003``: only the figures the answer gave."""
    said = [f"{f.cached_tokens:,} read" if f.cached_tokens else "",
            f"{f.cache_write_tokens:,} written" if f.cache_write_tokens else "",
            _saved_text(f.cache_saved)]
    return "prompt cache: " + ", ".join(x for x in said if x)


def _saved_text(saved: float | None) -> str:
    """What caching saved; a first write costs more than plain prompt tokens, so it can be a premium."""
    if not saved:
        return ""
    return f"saved {usd(saved)}" if saved > 0 else f"writing cost {usd(-saved)} more"


def footer_text(f: Footer) -> str:
    """One line, e.g. ``sandbox/echo via Sandbox · 12→34 tok · $0.000012 · first token 0.21 s``."""
    return SEP.join(text for _, text in _footer_parts(f))


_KIND_COLOR = {"warn": "var(--jp-warn-color1)", "error": "var(--jp-error-color1)"}


def footer_html(f: Footer) -> str:
    """The footer as a small muted line (status words coloured)."""
    pieces = []
    for kind, text in _footer_parts(f):
        if kind == "model":
            pieces.append(f"<code>{escape_text(text)}</code>")
        elif kind in _KIND_COLOR:
            pieces.append(f'<span style="color:{_KIND_COLOR[kind]}">{escape_text(text)}</span>')
        else:
            pieces.append(escape_text(text))
    if not pieces:
        return ""
    return f'<div class="or-magic-footer" style="margin-top:0.4em;{SMALL};{MUTED}">{SEP.join(pieces)}</div>'
