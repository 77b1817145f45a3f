"""The markdown *source* of an answer made safe for renderers that allow raw HTML and remote images.

JupyterLab renders ``text/markdown`` with raw HTML and images enabled, so the source itself must be safe.
Ordinary markdown, code and math stay byte-identical; raw HTML is escaped, images become links, bad link
destinations are dropped. The result is re-parsed (with and without math) until nothing unsafe is left.
No library sanitises markdown source, hence this hand-written pass over markdown-it's token map.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token

from .render import base_md
from .safe import HTTP_URL, IMAGE_MARK, SCHEME, TEX_DANGER, WORD_JOINER, defang_tex, is_safe_url


@dataclass
class _Span:
    kind: str
    start: int
    end: int
    label_end: int = -1
    href: str = ""


def _recording_inline(kind: str, fn: Callable[[StateInline, bool], bool]) -> Callable[..., bool]:
    """Wrap an inline rule so that, when it consumes input for real, its source span is recorded."""

    def rule(state: StateInline, silent: bool) -> bool:
        rec: list[_Span] | None = state.env.get("_rec")
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
            rec.append(_Span(kind, start, state.pos, label_end, href))
        return ok

    return rule


def _recording_reference(fn: Callable[..., bool]) -> Callable[..., bool]:
    """Wrap the reference-definition block rule to record each definition's lines and destination."""

    def rule(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
        rec: list[_Span] | None = state.env.get("_refs_rec")
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
            rec.append(_Span("reference", start_line, state.line, -1, href))
        return ok

    return rule


@functools.cache
def _analysis_md(math: bool) -> MarkdownIt:
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


_TAG_START = re.compile(r"[A-Za-z/!?]")
# Something a lenient HTML parser could take for a tag (e.g. mistune allows newlines in unquoted values).
_LOOSE_TAG = re.compile(r"<[A-Za-z/!?][^<>]{0,4000}>")
_INLINE_PARENTS = {"paragraph_open", "heading_open", "th_open", "td_open"}
_LT_SAFE_DEST = re.compile(r"<(?=(?i:https?://|mailto:))")


def _map_inline(
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


class _Edits:
    """Source edits for one pass; ``protect`` marks characters that must not be escaped."""

    def __init__(self, n: int) -> None:
        self.items: list[tuple[int, int, str]] = []
        self.code = bytearray(n + 1)  # code: nothing at all changes there
        # code in a spot where renderers disagree (containers, lazy lines): only tag-like '<' is escaped
        self.loose_code = bytearray(n + 1)
        self.math = bytearray(n + 1)  # math: a '<' that a sloppy HTML parser could read as a tag gets a space
        self.keep_lt = bytearray(n + 1)  # a '<' that is not HTML (math, escapes, safe autolinks/dests)

    def mark(self, arr: bytearray, start: int, end: int) -> None:
        arr[start:end] = b"\x01" * (end - start)

    def add(self, start: int, end: int, repl: str) -> None:
        self.items.append((start, end, repl))


def _bad_href(href: str, strict: bool) -> bool:
    """Strict: anything but http(s)/mailto. Lenient (the no-math view): only other schemes."""
    if is_safe_url(href):
        return False
    return strict or bool(SCHEME.match(href))


def _link_edits(edits: _Edits, src: str, span: _Span, pos_map: list[int], strict: bool) -> bool:
    """Images become links (or text); links with a bad destination lose brackets and destination.

    Returns False when an unsafe link or image could not be located in the source.
    """
    unsafe = span.kind == "image" or _bad_href(span.href, strict)
    n = len(pos_map)
    if not (0 <= span.start < span.end <= n and 0 < span.label_end < span.end):
        return not unsafe
    s, le, e = pos_map[span.start], pos_map[span.label_end], pos_map[span.end - 1] + 1
    opener = "![" if span.kind == "image" else "["
    if src[s : s + len(opener)] != opener or src[le] != "]":
        return not unsafe
    if span.kind == "image":
        if HTTP_URL.match(span.href):
            edits.add(s, s + 2, f"[{IMAGE_MARK} ")
            edits.mark(edits.keep_lt, le, e)
        else:
            edits.add(s, s + 2, f"{IMAGE_MARK} ")
            edits.add(le, e, "")
    elif unsafe:
        edits.add(s, s + 1, "")
        edits.add(le, e, "")
    else:
        edits.mark(edits.keep_lt, le, e)
    return True


def _analyze(src: str, *, math: bool) -> tuple[list[tuple[int, int, str]], bool]:
    """Edits that make ``src`` safe as seen by one parser (``math``: the full pass; else HTML only).

    The flag is False when something unsafe was found that could not be mapped back to the source.
    """
    md = _analysis_md(math)
    env: dict[str, Any] = {"_refs_rec": []}
    tokens = md.parse(src, env)
    lines = src.split("\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    starts.append(len(src) + 1)
    edits = _Edits(len(src))
    html_lines: list[int] = []
    resolved = True

    def line_range(a: int, b: int) -> tuple[int, int]:
        return starts[min(a, len(lines))], min(starts[min(b, len(lines))], len(src))

    # Where renderers disagree, code is not fully protected (its tag-like '<' are escaped): a top-level
    # block right after a container line is a lazy continuation for some; an indented code block after
    # any list or quote is pulled into it by some. Fences elsewhere (in list items too) are code for all.
    in_container = bytearray(len(lines) + 1)
    first_container = len(lines)
    for tok in tokens:
        if tok.map and tok.type in ("blockquote_open", "bullet_list_open", "ordered_list_open"):
            in_container[tok.map[0] : tok.map[1]] = b"\x01" * (tok.map[1] - tok.map[0])
            first_container = min(first_container, tok.map[0])

    cursors: dict[int, int] = {}
    env_inline: dict[str, Any] = {"references": env.get("references", {})}
    for i, tok in enumerate(tokens):
        if tok.map is None:
            continue
        if tok.type in ("fence", "code_block"):
            first = tok.map[0]
            prev = lines[first - 1].strip() if first > 0 else ""
            after_container = tok.level == 0 and bool(prev) and bool(in_container[first - 1])
            if tok.type == "fence":
                solid = not after_container
            else:
                solid = tok.level == 0 and not prev and first < first_container
            edits.mark(edits.code if solid else edits.loose_code, *line_range(*tok.map))
        elif tok.type in ("math_block", "math_block_label"):
            edits.mark(edits.keep_lt, *line_range(*tok.map))
            edits.mark(edits.math, *line_range(*tok.map))
        elif tok.type == "html_block":
            html_lines.extend(range(*tok.map))
        elif tok.type == "inline":
            parent = tokens[i - 1].type if i else ""
            if parent not in _INLINE_PARENTS:
                continue
            rec: list[_Span] = []
            env_inline["_rec"] = rec
            md.inline.parse(tok.content, md, env_inline, [])
            pos_map = _map_inline(tok, parent, lines, starts, cursors)
            if pos_map is None:
                # Unmapped: every '<' here stays escapable, but a bad link or image cannot be fixed.
                if any(sp.kind == "image" or (sp.kind == "link" and _bad_href(sp.href, math)) for sp in rec):
                    resolved = False
                continue
            for sp in rec:
                if not (0 <= sp.start < sp.end <= len(pos_map)):
                    continue
                s, e = pos_map[sp.start], pos_map[sp.end - 1] + 1
                if sp.kind == "autolink":
                    safe = is_safe_url(sp.href) and not re.search(r"[\s\"'`]", src[s:e])
                    if safe:
                        edits.mark(edits.keep_lt, s, s + 1)
                    elif not math and src[s] == "<":  # the full pass escapes every unprotected '<'
                        edits.add(s, s + 1, "&lt;")
                elif sp.kind == "html_inline":
                    if not math and src[s] == "<":
                        edits.add(s, s + 1, "&lt;")
                elif not math and sp.kind != "image" and sp.kind != "link":
                    continue
                elif sp.kind == "backticks":
                    edits.mark(edits.code, s, e)
                elif sp.kind == "math_inline" or sp.kind == "escape":
                    edits.mark(edits.keep_lt, s, e)
                    if sp.kind == "math_inline":
                        edits.mark(edits.math, s, e)
                elif sp.kind in ("link", "image"):
                    resolved = _link_edits(edits, src, sp, pos_map, strict=math) and resolved

    for sp in env["_refs_rec"]:
        a, b = line_range(sp.start, sp.end)
        if _bad_href(sp.href, math):
            k = src.find("[", a, b)
            if k >= 0:
                edits.add(k, k, "\\")
            else:
                resolved = False
        elif math:
            for m in _LT_SAFE_DEST.finditer(src, a, b):
                edits.mark(edits.keep_lt, m.start(), m.start() + 1)

    # Raw HTML blocks: escape the '<' that opens each line; what remains is re-checked next pass.
    html_set = set(html_lines)
    for ln in html_lines:
        a, b = starts[ln], starts[ln] + len(lines[ln])
        k = src.find("<", a, b)
        if k >= 0 and not edits.code[k]:
            edits.add(k, k + 1, "&lt;")

    if math:
        for m in re.finditer("<", src):
            k = m.start()
            if edits.math[k] and not edits.code[k] and _LOOSE_TAG.match(src, k):
                edits.add(k + 1, k + 1, " ")  # TeX ignores the space; no parser sees a tag any more
                continue
            if edits.code[k] or edits.keep_lt[k]:
                continue
            if edits.loose_code[k] and not _TAG_START.match(src, k + 1):
                continue
            ln = bisect.bisect_right(starts, k) - 1
            if ln in html_set:
                continue
            edits.add(k, k + 1, "&lt;")
        for m in TEX_DANGER.finditer(src):
            if not edits.code[m.start()]:
                edits.add(m.start() + 1, m.start() + 1, WORD_JOINER)
    return edits.items, resolved


def _apply(src: str, items: list[tuple[int, int, str]]) -> str:
    """Apply non-overlapping edits (later overlapping ones wait for the next pass)."""
    out: list[str] = []
    pos = 0
    for start, end, repl in sorted(set(items)):
        if start < pos:
            continue
        out.append(src[pos:start])
        out.append(repl)
        pos = end
    out.append(src[pos:])
    return "".join(out)


def _blunt(src: str) -> str:
    """Last resort: no '<', no link or image syntax left anywhere (never expected in practice)."""
    return defang_tex(src).replace("<", "&lt;").replace("[", "\\[")


def safe_markdown(text: str, *, max_passes: int = 12) -> str:
    """The markdown source of an answer, made safe for renderers that allow raw HTML and images.

    Raw HTML is escaped (``<`` → ``&lt;``) outside code and math; ``![alt](url)`` becomes
    ``[🖼 alt](url)`` (plain text unless the URL is http(s)); links and reference definitions whose
    destination is not http(s)/mailto lose it; MathJax's dangerous commands are defanged. Everything else
    is byte-identical (newlines are normalised to ``\\n``). Each pass re-parses the result, with and
    without dollar math, until no edit is needed.
    """
    src = text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")
    for _ in range(max_passes):
        # The no-math view is checked only once the full pass is clean, so it sees the full pass's result.
        items, ok = _analyze(src, math=True)
        if not items and ok:
            items, ok = _analyze(src, math=False)
        if not items:
            if ok:
                return src
            break
        new = _apply(src, items)
        if new == src:
            break
        src = new
    return _blunt(src)

