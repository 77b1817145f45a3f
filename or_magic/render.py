"""Turn-level rendering: footer, error card, reasoning, tool calls, citations, notices, images, bundles.

Pure functions from plain data to HTML / markdown / text. The HTML uses small inline styles with JupyterLab
CSS variables (so it follows the theme, dark included) and never contains ``<style>``, ``<script>`` or a
remote resource. Everything that comes from the model or the API (answer, reasoning, tool arguments,
citation titles, error messages, even model names) is escaped; the answer itself goes through
:func:`or_magic.markdown.render_markdown` / :func:`or_magic.markdown.safe_markdown`.

The markdown names (``render_markdown``, ``safe_markdown``, ``plain_text``, ``MarkdownStream``) are
re-exported here so callers need one module.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from .markdown import (
    LINK_REL,
    MarkdownStream,
    escape_text,
    is_safe_url,
    plain_text,
    render_markdown,
    safe_markdown,
)

__all__ = [
    "ErrorView",
    "Footer",
    "MarkdownStream",
    "TurnView",
    "usd",
    "citations_html",
    "error_card_html",
    "error_card_text",
    "final_bundle",
    "footer_html",
    "footer_text",
    "image_bundle",
    "notice_html",
    "plain_text",
    "reasoning_html",
    "render_markdown",
    "safe_markdown",
    "text_only",
    "tool_calls_html",
    "waiting_html",
]

_MUTED = "color:var(--jp-ui-font-color2)"
_SMALL = "font-size:var(--jp-content-font-size0, 0.85em)"
_SEP = " · "
#: Reasoning shown while streaming is the tail only (cost per update stays bounded).
STREAMING_REASONING_CHARS = 2000


# --------------------------------------------------------------------------------------- numbers
def _seconds(x: float) -> str:
    if x < 1:
        return f"{x:.2f} s"
    if x < 100:
        return f"{x:.1f} s"
    return f"{x:.0f} s"


def usd(x: float) -> str:
    """``$0.000012`` rather than ``$1.2e-05`` or ``$0.0000``: two significant digits below a cent, four above."""
    if x == 0:
        return "$0"
    if abs(x) >= 0.01:
        return f"${x:.4f}".rstrip("0").rstrip(".")
    return "$" + format(Decimal(f"{x:.2g}"), "f")


def _rate(x: float) -> str:
    return f"{x:.0f} tok/s" if x >= 10 else f"{x:.1f} tok/s"


def _tokens(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


# ---------------------------------------------------------------------------------------- footer
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


def _footer_parts(f: Footer) -> list[tuple[str, str]]:
    """(kind, text) pieces, in reading order; the kind picks a colour in HTML."""
    parts: list[tuple[str, str]] = []
    if f.model and f.provider:
        parts.append(("model", f"{f.model} via {f.provider}"))
    elif f.model or f.provider:
        parts.append(("model", f.model or f"via {f.provider}"))
    if f.prompt_tokens is not None or f.completion_tokens is not None:
        tok = f"{_tokens(f.prompt_tokens)}→{_tokens(f.completion_tokens)} tok"
        if f.reasoning_tokens:
            tok += f" ({f.reasoning_tokens:,} reasoning)"
        parts.append(("", tok))
    if f.cost is not None:
        parts.append(("", usd(f.cost)))
    if f.cached_tokens or f.cache_write_tokens:
        parts.append(("", _cache_text(f)))
    if f.ttft is not None:
        parts.append(("", f"first token {_seconds(f.ttft)}"))
    if f.elapsed is not None:
        parts.append(("", f"total {_seconds(f.elapsed)}"))
    if f.tokens_per_s:
        parts.append(("", _rate(f.tokens_per_s)))
    if f.finish_reason and f.finish_reason not in ("stop", "tool_calls"):
        parts.append(("warn", f"finish: {f.finish_reason}"))
    if f.status:
        parts.append(("error" if f.status == "error" else "warn", f.status))
    if f.sandbox:
        parts.append(("", "sandbox"))
    return parts


def _cache_text(f: Footer) -> str:
    """``prompt cache: 1,234 read, 56 written, saved $0.0003``: only the figures the response gave."""
    said = [f"{f.cached_tokens:,} read" if f.cached_tokens else "",
            f"{f.cache_write_tokens:,} written" if f.cache_write_tokens else "",
            f"saved {usd(f.cache_saved)}" if f.cache_saved else ""]
    return "prompt cache: " + ", ".join(x for x in said if x)


def footer_text(f: Footer) -> str:
    """One line, e.g. ``sandbox/echo via Sandbox · 12→34 tok · $0.000012 · first token 0.21 s``."""
    return _SEP.join(text for _, text in _footer_parts(f))


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
    return (
        f'<div class="or-magic-footer" style="margin-top:0.4em;{_SMALL};{_MUTED}">{_SEP.join(pieces)}</div>'
    )


# ------------------------------------------------------------------------------------ error card
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
        meta.append(f"retry after {_seconds(e.retry_after)}")
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
        lines.append(_SEP.join(meta))
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
        rows.append(f'<div style="{_SMALL};{_MUTED}">{escape_text(_SEP.join(meta))}</div>')
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


# -------------------------------------------------------------------------------------- reasoning
def _words(text: str) -> str:
    n = len(text.split())
    return f"{n:,} word" + ("" if n == 1 else "s")


def reasoning_html(text: str, *, streaming: bool = False) -> str:
    """The model's reasoning in a collapsed ``<details>``; while streaming only its tail, as plain text."""
    if not text.strip():
        return ""
    if streaming:
        shown = text if len(text) <= STREAMING_REASONING_CHARS else "…" + text[-STREAMING_REASONING_CHARS:]
        summary = f"Reasoning… ({_words(text)})"
        body = f'<div style="white-space:pre-wrap">{escape_text(shown)}</div>'
    else:
        summary = f"Reasoning ({_words(text)})"
        body = render_markdown(text)
    return (
        f'<details class="or-magic-reasoning" style="margin:0 0 0.5em 0;{_MUTED}">'
        f'<summary style="cursor:pointer;{_SMALL}">{escape_text(summary)}</summary>'
        '<div style="border-left:2px solid var(--jp-border-color2);padding-left:0.75em;'
        f'font-size:0.9em">{body}</div></details>'
    )


# ------------------------------------------------------------------------------------- tool calls
def _tool_call(call: Any) -> tuple[str, str]:
    """(name, pretty arguments) from an OpenAI-shaped or a flat tool call."""
    if not isinstance(call, dict):
        return "tool", str(call)
    fn = call.get("function") if isinstance(call.get("function"), dict) else call
    name = str(fn.get("name") or call.get("name") or "tool")
    args = fn.get("arguments", fn.get("args", ""))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else ""
        except ValueError:
            return name, args  # a partial or invalid JSON string: show it as is
    if isinstance(args, str):
        return name, args
    return name, json.dumps(args, indent=2, ensure_ascii=False, default=str)


def tool_calls_html(calls: list[dict[str, Any]]) -> str:
    """Each tool call: its name, its arguments as pretty JSON and, once it ran, its result (or error), in a
    collapsible card. A call carries ``result``/``error`` keys when the notebook executed it."""
    out = []
    for call in calls or []:
        name, args = _tool_call(call)
        outcome = ""
        if isinstance(call, dict) and ("result" in call or call.get("error")):
            error = call.get("error")
            label = "error" if error else "result"
            outcome = (f'<div style="margin-top:0.3em">{label}:</div>'
                       '<pre style="margin:0.2em 0;white-space:pre-wrap;word-break:break-word">'
                       f"{escape_text(str(error or call.get('result') or '')[:20000])}</pre>")
        mark = " ✖" if isinstance(call, dict) and call.get("error") else ""
        out.append(
            f'<details class="or-magic-tool-call" style="margin:0.3em 0;{_SMALL}">'
            f'<summary style="cursor:pointer">🔧 tool call <code>{escape_text(name)}</code>{mark}</summary>'
            '<pre style="margin:0.3em 0;white-space:pre-wrap;word-break:break-word">'
            f"{escape_text(args)}</pre>{outcome}</details>"
        )
    return "".join(out)


def _tool_calls_text(calls: list[dict[str, Any]]) -> list[str]:
    lines = []
    for call in calls or []:
        name, args = _tool_call(call)
        line = f"🔧 tool call {name}: {args}"
        if isinstance(call, dict) and ("result" in call or call.get("error")):
            line += f" → {'error: ' if call.get('error') else ''}{call.get('error') or call.get('result')}"
        lines.append(line)
    return lines


# -------------------------------------------------------------------------------------- citations
def _citations(annotations: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(url, title) of the url_citation annotations, de-duplicated, in order; other kinds ignored."""
    seen: set[str] = set()
    out = []
    for ann in annotations or []:
        if not isinstance(ann, dict) or ann.get("type") != "url_citation":
            continue
        data = ann.get("url_citation") if isinstance(ann.get("url_citation"), dict) else ann
        url = str(data.get("url") or "").strip()
        if not url or url in seen:
            continue
        seen.add(url)
        title = str(data.get("title") or "").strip()
        out.append((url, title))
    return out


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or url
    except ValueError:
        return url


def citations_html(annotations: list[dict[str, Any]]) -> str:
    """Web citations as a numbered list of safe links (non-http(s) URLs are shown as text)."""
    cites = _citations(annotations)
    if not cites:
        return ""
    items = []
    for url, title in cites:
        label = escape_text(title or _host(url))
        if is_safe_url(url) and url.lower().startswith(("http://", "https://")):
            link = f'<a href="{escape_text(url)}" target="_blank" rel="{LINK_REL}">{label}</a>'
            host = f' <span style="{_MUTED}">{escape_text(_host(url))}</span>' if title else ""
            items.append(f"<li>{link}{host}</li>")
        else:
            items.append(f"<li>{label} <code>{escape_text(url)}</code></li>")
    return (
        f'<div class="or-magic-citations" style="margin-top:0.5em;{_SMALL}">'
        f'<div style="{_MUTED}">Sources</div>'
        f'<ol style="margin:0.2em 0;padding-left:1.6em">{"".join(items)}</ol></div>'
    )


# ---------------------------------------------------------------------------------------- notices
def waiting_html(model: str, elapsed: float) -> str:
    """Shown before the first token, refreshed with the elapsed time."""
    return (
        f'<div class="or-magic-waiting" style="{_SMALL};{_MUTED}">⏳ waiting for '
        f"<code>{escape_text(model)}</code>… {escape_text(_seconds(max(elapsed, 0.0)))}</div>"
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
        f'<div class="or-magic-notice or-magic-notice-{cls}" style="margin:0.3em 0;{_SMALL};color:{color};'
        f'white-space:pre-wrap">{icon} {label}{escape_text(text)}</div>'
    )


def _notice_text(kind: str, text: str) -> str:
    icon, _ = _NOTICES.get(kind, ("ℹ", ""))
    return f"{icon} {text}"


# ------------------------------------------------------------------------------------------ images
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|jpg|gif|webp);base64,(.*)", re.IGNORECASE | re.DOTALL)
_MAGIC = [
    ("image/png", lambda b: b.startswith(b"\x89PNG\r\n\x1a\n")),
    ("image/jpeg", lambda b: b.startswith(b"\xff\xd8\xff")),
    ("image/gif", lambda b: b.startswith((b"GIF87a", b"GIF89a"))),
    ("image/webp", lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP"),
]


def image_bundle(data_url: str) -> dict[str, object] | None:
    """A display bundle for an image the API returned as a base64 data URL; None for anything else.

    Never a remote URL (loading it could leak data) and never SVG (it can carry script). The declared
    type must match the bytes' signature (a mismatch is corrected to the real type).
    """
    if not isinstance(data_url, str):
        return None
    m = _DATA_IMAGE.fullmatch(data_url.strip())
    if m is None:
        return None
    b64 = re.sub(r"\s+", "", m.group(2))
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    mime = next((name for name, test in _MAGIC if test(raw[:16])), None)
    if mime is None:
        return None
    size = len(raw) / 1024
    return {mime: b64, "text/plain": f"<image {mime}, {size:,.1f} KB>"}


# ------------------------------------------------------------------------------------------ turns
@dataclass
class TurnView:
    """Everything one answer shows (images are separate outputs, see :func:`image_bundle`)."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    footer: Footer | None = None
    error: ErrorView | None = None
    status: str = ""  # "", "interrupted", "error", "stale"


_STATUS_NOTICE = {
    "interrupted": "interrupted — the answer above is partial",
    "stale": "stale — an earlier cell of this conversation was re-run after this one",
    "incomplete": "incomplete — the stream ended before the answer finished",
    "error": "failed",
    "invalid": "the answer above does not match the requested schema",
    "max-steps": "stopped at the --max-steps limit: the model's last tool calls were not run",
}


def _status_notice(view: TurnView) -> tuple[str, str] | None:
    if view.error is not None and view.text and view.status == "error":  # the answer above stopped short
        return "partial", "partial — the answer above stopped when the error below happened"
    if not view.status or (view.status == "error" and view.error is not None):
        return None
    return view.status, _STATUS_NOTICE.get(view.status, view.status)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>$|~!&])")
_MD_LINE_START = re.compile(r"^([ \t]*)([#=+-]|\d+[.)])", re.MULTILINE)


def _md_escape(text: str) -> str:
    """Our own text as literal markdown: markup characters and line-start markers backslash-escaped."""
    return _MD_LINE_START.sub(r"\1\\\2", _MD_SPECIAL.sub(r"\\\1", text))


def _fenced(code: str, info: str = "") -> str:
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{code}\n{fence}"


def final_bundle(view: TurnView) -> dict[str, str]:
    """The final output of a turn: ``text/html`` (what JupyterLab shows), ``text/markdown`` (GitHub,
    nbconvert, diffs) and ``text/plain`` (the answer itself, then the footer/error lines)."""
    html = []
    if view.reasoning:
        html.append(reasoning_html(view.reasoning))
    if view.text:
        html.append(f'<div class="or-magic-answer">{render_markdown(view.text)}</div>')
    html.append(tool_calls_html(view.tool_calls))
    html.append(citations_html(view.annotations))
    notice = _status_notice(view)
    if notice is not None:
        html.append(notice_html(*notice))
    if not view.text and not view.tool_calls and view.error is None and not view.status:
        html.append(notice_html("empty", "the model returned an empty answer"))
    if view.error is not None:
        html.append(error_card_html(view.error))
    if view.footer is not None:
        html.append(footer_html(view.footer))

    md = [view.text.rstrip("\n")] if view.text.strip() else []
    for name, args in map(_tool_call, view.tool_calls or []):
        md.append(f"🔧 tool call `{_md_escape(name).replace('`', '')}`\n\n{_fenced(args, 'json')}")
    cites = _citations(view.annotations)
    if cites:
        rows = []
        for i, (url, title) in enumerate(cites, 1):
            label = _md_escape(title or _host(url))
            ok = is_safe_url(url) and url.lower().startswith(("http://", "https://")) and " " not in url
            rows.append(
                f"{i}. [{label}](<{url}>)" if ok and not re.search(r"[<>\s]", url) else f"{i}. {label}"
            )
        md.append("Sources:\n\n" + "\n".join(rows))
    if notice is not None:
        md.append(f"*{_md_escape(_notice_text(*notice))}*")
    if view.error is not None:
        lines = [f"> {_md_escape(line)}" for line in error_card_text(view.error).splitlines()]
        md.append("\\\n".join(lines))  # hard line breaks inside one quote
    if view.footer is not None and footer_text(view.footer):
        md.append(f"*{_md_escape(footer_text(view.footer))}*")

    return {
        "text/html": f'<div class="or-magic-turn">{"".join(html)}</div>',
        "text/markdown": safe_markdown("\n\n".join(md)),
        "text/plain": _plain(view, reasoning=False),
    }


def _plain(view: TurnView, *, reasoning: bool) -> str:
    head = []
    if reasoning and view.reasoning.strip():
        head.append(f"[reasoning: {_words(view.reasoning)}]")
    if view.text:
        head.append(plain_text(view.text).rstrip("\n"))
    tail = _tool_calls_text(view.tool_calls)
    cites = _citations(view.annotations)
    if cites:
        tail.append("Sources:")
        tail += [f"  {i}. {title + ' — ' if title else ''}{url}" for i, (url, title) in enumerate(cites, 1)]
    notice = _status_notice(view)
    if notice is not None:
        tail.append(_notice_text(*notice))
    if view.error is not None:
        tail.append(error_card_text(view.error))
    if view.footer is not None and footer_text(view.footer):
        tail.append(footer_text(view.footer))
    parts = ["\n\n".join(head)] if head else []
    if tail:
        parts.append("\n".join(tail))
    return "\n\n".join(parts)


def text_only(view: TurnView) -> str:
    """The turn for a terminal: reasoning size, answer, tool calls, sources, notices, error, footer."""
    return _plain(view, reasoning=True)
