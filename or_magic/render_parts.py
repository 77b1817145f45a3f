"""The parts of an answer besides its text: the model's reasoning, its tool calls and its web citations.

Everything here came from the model or the API, so every piece is escaped; links are kept only when safe.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from .markdown import LINK_REL, escape_text, is_safe_url, render_markdown
from .render_style import MUTED, SMALL, words

#: Reasoning shown while streaming is the tail only (cost per update stays bounded).
STREAMING_REASONING_CHARS = 2000


def reasoning_html(text: str, *, streaming: bool = False) -> str:
    """The model's reasoning in a collapsed ``<details>``; while streaming only its tail, as plain text."""
    if not text.strip():
        return ""
    if streaming:
        shown = text if len(text) <= STREAMING_REASONING_CHARS else "…" + text[-STREAMING_REASONING_CHARS:]
        summary = f"Reasoning… ({words(text)})"
        body = f'<div style="white-space:pre-wrap">{escape_text(shown)}</div>'
    else:
        summary = f"Reasoning ({words(text)})"
        body = render_markdown(text)
    return (
        f'<details class="or-magic-reasoning" style="margin:0 0 0.5em 0;{MUTED}">'
        f'<summary style="cursor:pointer;{SMALL}">{escape_text(summary)}</summary>'
        '<div style="border-left:2px solid var(--jp-border-color2);padding-left:0.75em;'
        f'font-size:0.9em">{body}</div></details>'
    )


# ------------------------------------------------------------------------------------- tool calls
def tool_call_parts(call: Any) -> tuple[str, str]:
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


def _ran(call: Any) -> bool:
    """Whether the notebook executed this call (it then carries ``result`` or ``error``)."""
    return isinstance(call, dict) and ("result" in call or bool(call.get("error")))


def _outcome_html(call: dict[str, Any]) -> str:
    error = call.get("error")
    label = "error" if error else "result"
    return (f'<div style="margin-top:0.3em">{label}:</div>'
            '<pre style="margin:0.2em 0;white-space:pre-wrap;word-break:break-word">'
            f"{escape_text(str(error or call.get('result') or '')[:20000])}</pre>")


def tool_calls_html(calls: list[dict[str, Any]]) -> str:
    """Each tool call: its name, its arguments as pretty JSON and, once it ran, its result (or error), in a
    collapsible card. A call carries ``result``/``error`` keys when the notebook executed it."""
    out = []
    for call in calls or []:
        name, args = tool_call_parts(call)
        outcome = _outcome_html(call) if _ran(call) else ""
        mark = " ✖" if isinstance(call, dict) and call.get("error") else ""
        out.append(
            f'<details class="or-magic-tool-call" style="margin:0.3em 0;{SMALL}">'
            f'<summary style="cursor:pointer">🔧 tool call <code>{escape_text(name)}</code>{mark}</summary>'
            '<pre style="margin:0.3em 0;white-space:pre-wrap;word-break:break-word">'
            f"{escape_text(args)}</pre>{outcome}</details>"
        )
    return "".join(out)


def tool_calls_text(calls: list[dict[str, Any]]) -> list[str]:
    """One plain line per tool call, with its result or error once it ran."""
    lines = []
    for call in calls or []:
        name, args = tool_call_parts(call)
        line = f"🔧 tool call {name}: {args}"
        if _ran(call):
            line += f" → {'error: ' if call.get('error') else ''}{call.get('error') or call.get('result')}"
        lines.append(line)
    return lines


# -------------------------------------------------------------------------------------- citations
def cited_links(annotations: list[dict[str, Any]]) -> list[tuple[str, str]]:
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


def url_host(url: str) -> str:
    """The host a link points at, to label an untitled citation; the URL itself if it has none."""
    try:
        return urlsplit(url).hostname or url
    except ValueError:
        return url


def is_web_link(url: str) -> bool:
    """A link we let the reader follow: safe, and http(s) only."""
    return is_safe_url(url) and url.lower().startswith(("http://", "https://"))


def citations_html(annotations: list[dict[str, Any]]) -> str:
    """Web citations as a numbered list of safe links (non-http(s) URLs are shown as text)."""
    cites = cited_links(annotations)
    if not cites:
        return ""
    items = []
    for url, title in cites:
        label = escape_text(title or url_host(url))
        if is_web_link(url):
            link = f'<a href="{escape_text(url)}" target="_blank" rel="{LINK_REL}">{label}</a>'
            host = f' <span style="{MUTED}">{escape_text(url_host(url))}</span>' if title else ""
            items.append(f"<li>{link}{host}</li>")
        else:
            items.append(f"<li>{label} <code>{escape_text(url)}</code></li>")
    return (
        f'<div class="or-magic-citations" style="margin-top:0.5em;{SMALL}">'
        f'<div style="{MUTED}">Sources</div>'
        f'<ol style="margin:0.2em 0;padding-left:1.6em">{"".join(items)}</ol></div>'
    )
