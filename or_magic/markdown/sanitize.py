"""The markdown *source* of an answer made safe for renderers that allow raw HTML and remote images.

JupyterLab renders ``text/markdown`` with raw HTML and images enabled, so the source itself must be safe.
Ordinary markdown, code and math stay byte-identical; raw HTML is escaped, images become links, bad link
destinations are dropped. The result is re-parsed (with and without math) until nothing unsafe is left.
No library sanitises markdown source, hence this hand-written pass over markdown-it's token map.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Any

from markdown_it.token import Token

from .safe import HTTP_URL, IMAGE_MARK, SCHEME, TEX_DANGER, WORD_JOINER, defang_tex, is_safe_url
from .source_map import Span, analysis_md, map_inline

_TAG_START = re.compile(r"[A-Za-z/!?]")
# Something a lenient HTML parser could take for a tag (some allow newlines in unquoted attribute values).
_LOOSE_TAG = re.compile(r"<[A-Za-z/!?][^<>]{0,4000}>")
_INLINE_PARENTS = {"paragraph_open", "heading_open", "th_open", "td_open"}
_LT_SAFE_DEST = re.compile(r"<(?=(?i:https?://|mailto:))")


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


def _link_edits(edits: _Edits, src: str, span: Span, pos_map: list[int], strict: bool) -> bool:
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


@dataclass
class _Doc:
    """The source being analysed, split into lines, with each line's start offset."""

    src: str
    math: bool  # the full pass (dollar math on, strict links) or the no-math view (HTML only)
    lines: list[str] = field(init=False)
    starts: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.lines = self.src.split("\n")
        self.starts = [0]
        for line in self.lines[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)
        self.starts.append(len(self.src) + 1)

    def line_range(self, a: int, b: int) -> tuple[int, int]:
        n = len(self.lines)
        return self.starts[min(a, n)], min(self.starts[min(b, n)], len(self.src))


def _analyze(src: str, *, math: bool) -> tuple[list[tuple[int, int, str]], bool]:
    """Edits that make ``src`` safe as seen by one parser (``math``: the full pass; else HTML only).

    The flag is False when something unsafe was found that could not be mapped back to the source.
    """
    md = analysis_md(math)
    env: dict[str, Any] = {"_refs_rec": []}
    tokens = md.parse(src, env)
    doc = _Doc(src, math)
    edits = _Edits(len(src))
    html_lines: list[int] = []
    resolved = True
    containers = _container_lines(tokens, len(doc.lines))
    cursors: dict[int, int] = {}
    env_inline: dict[str, Any] = {"references": env.get("references", {})}
    for i, tok in enumerate(tokens):
        if tok.map is None:
            continue
        if tok.type in ("fence", "code_block"):
            _code_edits(doc, tok, edits, containers)
        elif tok.type in ("math_block", "math_block_label"):
            edits.mark(edits.keep_lt, *doc.line_range(*tok.map))
            edits.mark(edits.math, *doc.line_range(*tok.map))
        elif tok.type == "html_block":
            html_lines.extend(range(*tok.map))
        elif tok.type == "inline" and i and tokens[i - 1].type in _INLINE_PARENTS:
            rec: list[Span] = []
            env_inline["_rec"] = rec
            md.inline.parse(tok.content, md, env_inline, [])
            ok = _inline_edits(doc, tok, tokens[i - 1].type, rec, cursors, edits)
            resolved = ok and resolved
    resolved = _reference_edits(doc, env["_refs_rec"], edits) and resolved
    _html_block_edits(doc, html_lines, edits)
    if math:
        _lt_and_tex_edits(doc, set(html_lines), edits)
    return edits.items, resolved


def _container_lines(tokens: list[Token], n_lines: int) -> tuple[bytearray, int]:
    """Which lines are inside a quote or list, and the first such line."""
    inside = bytearray(n_lines + 1)
    first = n_lines
    for tok in tokens:
        if tok.map and tok.type in ("blockquote_open", "bullet_list_open", "ordered_list_open"):
            inside[tok.map[0] : tok.map[1]] = b"\x01" * (tok.map[1] - tok.map[0])
            first = min(first, tok.map[0])
    return inside, first


def _code_edits(doc: _Doc, tok: Token, edits: _Edits, containers: tuple[bytearray, int]) -> None:
    """Protect a code block; where renderers disagree on it, only its tag-like '<' stay escapable.

    A top-level block right after a container line is a lazy continuation for some renderers; an
    indented code block after any list or quote is pulled into it by some. Fences elsewhere (in list
    items too) are code for all.
    """
    in_container, first_container = containers
    first = tok.map[0]  # type: ignore[index]
    prev = doc.lines[first - 1].strip() if first > 0 else ""
    after_container = tok.level == 0 and bool(prev) and bool(in_container[first - 1])
    indented_solid = tok.level == 0 and not prev and first < first_container
    solid = not after_container if tok.type == "fence" else indented_solid
    edits.mark(edits.code if solid else edits.loose_code, *doc.line_range(*tok.map))  # type: ignore[misc]


def _inline_edits(
    doc: _Doc, tok: Token, parent: str, rec: list[Span], cursors: dict[int, int], edits: _Edits
) -> bool:
    """Edits for the recorded spans of one inline token; False if an unsafe one could not be placed."""
    pos_map = map_inline(tok, parent, doc.lines, doc.starts, cursors)
    if pos_map is None:
        # Unmapped: every '<' here stays escapable, but a bad link or image cannot be fixed.
        return not any(sp.kind == "image" or (sp.kind == "link" and _bad_href(sp.href, doc.math)) for sp in rec)
    resolved = True
    for sp in rec:
        if 0 <= sp.start < sp.end <= len(pos_map):
            resolved = _span_edits(doc, sp, pos_map, edits) and resolved
    return resolved


def _span_edits(doc: _Doc, sp: Span, pos_map: list[int], edits: _Edits) -> bool:
    """Protect or fix one inline span (code, math, escape, autolink, raw HTML, link, image)."""
    src, math = doc.src, doc.math
    s, e = pos_map[sp.start], pos_map[sp.end - 1] + 1
    if sp.kind == "autolink":
        if is_safe_url(sp.href) and not re.search(r"[\s\"'`]", src[s:e]):
            edits.mark(edits.keep_lt, s, s + 1)
        elif not math and src[s] == "<":  # the full pass escapes every unprotected '<'
            edits.add(s, s + 1, "&lt;")
    elif sp.kind == "html_inline":
        if not math and src[s] == "<":
            edits.add(s, s + 1, "&lt;")
    elif not math and sp.kind not in ("image", "link"):
        return True
    elif sp.kind == "backticks":
        edits.mark(edits.code, s, e)
    elif sp.kind in ("math_inline", "escape"):
        edits.mark(edits.keep_lt, s, e)
        if sp.kind == "math_inline":
            edits.mark(edits.math, s, e)
    elif sp.kind in ("link", "image"):
        return _link_edits(edits, src, sp, pos_map, strict=math)
    return True


def _reference_edits(doc: _Doc, refs: list[Span], edits: _Edits) -> bool:
    """Reference definitions with a bad destination are escaped (``\\[``); safe ones keep their '<'."""
    resolved = True
    for sp in refs:
        a, b = doc.line_range(sp.start, sp.end)
        if _bad_href(sp.href, doc.math):
            k = doc.src.find("[", a, b)
            if k >= 0:
                edits.add(k, k, "\\")
            else:
                resolved = False
        elif doc.math:
            for m in _LT_SAFE_DEST.finditer(doc.src, a, b):
                edits.mark(edits.keep_lt, m.start(), m.start() + 1)
    return resolved


def _html_block_edits(doc: _Doc, html_lines: list[int], edits: _Edits) -> None:
    """Raw HTML blocks: escape the '<' that opens each line; what remains is re-checked next pass."""
    for ln in html_lines:
        a, b = doc.starts[ln], doc.starts[ln] + len(doc.lines[ln])
        k = doc.src.find("<", a, b)
        if k >= 0 and not edits.code[k]:
            edits.add(k, k + 1, "&lt;")


def _lt_and_tex_edits(doc: _Doc, html_set: set[int], edits: _Edits) -> None:
    """The full pass: escape every unprotected '<', space out tag-like '<' in math, defang TeX commands."""
    src = doc.src
    for m in re.finditer("<", src):
        k = m.start()
        if edits.math[k] and not edits.code[k] and _LOOSE_TAG.match(src, k):
            edits.add(k + 1, k + 1, " ")  # TeX ignores the space; no parser sees a tag any more
            continue
        if edits.code[k] or edits.keep_lt[k]:
            continue
        if edits.loose_code[k] and not _TAG_START.match(src, k + 1):
            continue
        if bisect.bisect_right(doc.starts, k) - 1 in html_set:
            continue
        edits.add(k, k + 1, "&lt;")
    for m in TEX_DANGER.finditer(src):
        if not edits.code[m.start()]:
            edits.add(m.start() + 1, m.start() + 1, WORD_JOINER)


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

