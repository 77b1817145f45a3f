"""Turn-level rendering: one answer as its final bundle (HTML, markdown, plain) or as terminal text.

Pure functions from plain data to HTML / markdown / text. The HTML uses small inline styles with JupyterLab
CSS variables (so it follows the theme, dark included) and never contains ``<style>``, ``<script>`` or a
remote resource. Everything that comes from the model or the API (answer, reasoning, tool arguments,
citation titles, error messages, even model names) is escaped; the answer itself goes through
:func:`or_magic.markdown.render_markdown` / :func:`or_magic.markdown.safe_markdown`.

The pieces live in their own modules (``render_footer``, ``render_error``, ``render_parts``,
``render_notice``, ``render_image``, ``render_style``); they and the markdown names (``render_markdown``,
``safe_markdown``, ``plain_text``, ``MarkdownStream``) are re-exported here so callers need one module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .fence import fence_for
from .markdown import MarkdownStream, plain_text, render_markdown, safe_markdown
from .render_error import ErrorView, error_card_html, error_card_text
from .render_footer import Footer, footer_html, footer_text
from .render_image import image_bundle
from .render_notice import notice_html, notice_text, waiting_html
from .render_parts import (
    citations_html,
    cited_links,
    is_web_link,
    reasoning_html,
    tool_call_parts,
    tool_calls_html,
    tool_calls_text,
    url_host,
)
from .render_style import usd, words

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
    fence = fence_for(code)
    return f"{fence}{info}\n{code}\n{fence}"


def final_bundle(view: TurnView) -> dict[str, str]:
    """The final output of a turn: ``text/html`` (what JupyterLab shows), ``text/markdown`` (GitHub,
    nbconvert, diffs) and ``text/plain`` (the answer itself, then the footer/error lines)."""
    return {
        "text/html": f'<div class="or-magic-turn">{_bundle_html(view)}</div>',
        "text/markdown": safe_markdown(_bundle_markdown(view)),
        "text/plain": _plain(view, reasoning=False),
    }


def _bundle_html(view: TurnView) -> str:
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
    return "".join(html)


def _bundle_markdown(view: TurnView) -> str:
    """The ``text/markdown`` copy (before it is made safe): answer, tool calls, sources, notice, error, footer."""
    md = [view.text.rstrip("\n")] if view.text.strip() else []
    for name, args in map(tool_call_parts, view.tool_calls or []):
        md.append(f"🔧 tool call `{_md_escape(name).replace('`', '')}`\n\n{_fenced(args, 'json')}")
    cites = cited_links(view.annotations)
    if cites:
        md.append("Sources:\n\n" + "\n".join(_source_line(i, url, title) for i, (url, title) in enumerate(cites, 1)))
    notice = _status_notice(view)
    if notice is not None:
        md.append(f"*{_md_escape(notice_text(*notice))}*")
    if view.error is not None:
        lines = [f"> {_md_escape(line)}" for line in error_card_text(view.error).splitlines()]
        md.append("\\\n".join(lines))  # hard line breaks inside one quote
    if view.footer is not None and footer_text(view.footer):
        md.append(f"*{_md_escape(footer_text(view.footer))}*")
    return "\n\n".join(md)


def _source_line(i: int, url: str, title: str) -> str:
    """A numbered source: a link only when the URL is a web link markdown can hold as it is."""
    label = _md_escape(title or url_host(url))
    return f"{i}. [{label}](<{url}>)" if is_web_link(url) and not re.search(r"[<>\s]", url) else f"{i}. {label}"


def _plain(view: TurnView, *, reasoning: bool) -> str:
    head = []
    if reasoning and view.reasoning.strip():
        head.append(f"[reasoning: {words(view.reasoning)}]")
    if view.text:
        head.append(plain_text(view.text).rstrip("\n"))
    tail = tool_calls_text(view.tool_calls)
    cites = cited_links(view.annotations)
    if cites:
        tail.append("Sources:")
        tail += [f"  {i}. {title + ' — ' if title else ''}{url}" for i, (url, title) in enumerate(cites, 1)]
    notice = _status_notice(view)
    if notice is not None:
        tail.append(notice_text(*notice))
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
