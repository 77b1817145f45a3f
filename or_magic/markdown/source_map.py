"""Where things are in markdown source: a permissive parse that records each inline span's offsets.

markdown-it reports block positions as line ranges only; the sanitiser needs character offsets of links,
images, code spans, math and raw HTML to edit the source in place. These wrapped rules record them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token

from .render import base_md


@dataclass
class Span:
    kind: str
    start: int
    end: int
    label_end: int = -1
    href: str = ""


def _recording_inline(kind: str, fn: Callable[[StateInline, bool], bool]) -> Callable[..., bool]:
    """Wrap an inline rule so that, when it consumes input for real, its source span is recorded."""

    def rule(state: StateInline, silent: bool) -> bool:
        rec: list[Span] | None = state.env.get("_rec")
        if silent or rec is None:
            return fn(state, silent)
        start = state.pos
        label_end = -1
        if kind == "link" and state.src[start] == "[":
            label_end = state.md.helpers.parseLinkLabel(state, start, True)
        elif kind == "image" and state.src.startswith("![", start):
            label_end = state.md.helpers.parseLinkLabel(state, start + 1, False)
        n = len(state.tokens)
        ok = fn(state, silent)
        if ok:
            href = ""
            for t in state.tokens[n:]:
                if t.type in ("link_open", "image"):
                    href = str(t.attrGet("href") or t.attrGet("src") or "")
                    break
            rec.append(Span(kind, start, state.pos, label_end, href))
        return ok

    return rule


def _recording_reference(fn: Callable[..., bool]) -> Callable[..., bool]:
    """Wrap the reference-definition block rule to record each definition's lines and destination."""

    def rule(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
        rec: list[Span] | None = state.env.get("_refs_rec")
        if silent or rec is None:
            return fn(state, start_line, end_line, silent)
        refs = state.env.setdefault("references", {})
        state.env["references"] = {}
        try:
            ok = fn(state, start_line, end_line, silent)
            added = state.env["references"]
        finally:
            state.env["references"] = refs
        for label, value in added.items():
            refs.setdefault(label, value)
        if ok:
            href = next(iter(added.values()))["href"] if added else ""
            rec.append(Span("reference", start_line, state.line, -1, href))
        return ok

    return rule


@functools.cache
def analysis_md(math: bool) -> MarkdownIt:
    """A permissive parser (raw HTML on, every link accepted) that records where things are."""
    md = base_md(html=True, math=math)
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    md.core.ruler.disable(["inline", "text_join"])  # inline content is parsed per token, with recording
    kinds = {"backticks", "escape", "autolink", "html_inline", "link", "image", "math_inline"}
    for r in md.inline.ruler.__rules__:
        if r.name in kinds:
            md.inline.ruler.at(r.name, _recording_inline(r.name, r.fn))
    for r in md.block.ruler.__rules__:
        if r.name == "reference":
            md.block.ruler.at(r.name, _recording_reference(r.fn), {"alt": r.alt})
    return md


def map_inline(
    tok: Token, parent: str, lines: list[str], starts: list[int], cursors: dict[int, int]
) -> list[int] | None:
    """Source offset of each character of an inline token's content, or None if it cannot be aligned."""
    content = tok.content
    l0, l1 = tok.map  # type: ignore[misc]
    parts = content.split("\n")
    if len(parts) != l1 - l0:
        return None
    pos_map: list[int] = []
    for k, part in enumerate(parts):
        ln = l0 + k
        if ln >= len(lines):
            return None
        s, base = lines[ln], starts[ln]
        cell = parent in ("th_open", "td_open")
        cursor = cursors.get(ln, 0) if cell else 0
        p = -1
        if cell:
            p = s.find(part, cursor) if part else cursor
        elif part:
            # Paragraph lines are suffixes of their source lines (after container markers/indent);
            # heading text may be followed by a closing "#" sequence.
            pr, sr = part.rstrip(" \t"), s.rstrip(" \t")
            p = len(sr) - len(pr) if sr.endswith(pr) else s.rfind(part)
            if p >= 0 and s[p : p + len(part)] != part:
                p = -1
        else:
            p = len(s)
        if p >= 0:
            pos_map.extend(range(base + p, base + p + len(part)))
            end = p + len(part)
        else:  # not contiguous (escaped pipes, expanded tabs): align as a subsequence
            q = cursor
            for ch in part:
                while q < len(s) and s[q] != ch:
                    q += 1
                if q >= len(s):
                    return None
                pos_map.append(base + q)
                q += 1
            end = q
        if cell:
            cursors[ln] = end
        if k < len(parts) - 1:
            pos_map.append(base + len(s))  # the newline
    return pos_map
