"""Safe markdown for untrusted model output: HTML, a safe markdown source, and an incremental stream.

Three entry points, one parser configuration (markdown-it-py "commonmark" + tables + strikethrough +
dollar math):

- :func:`render_markdown` turns model text into HTML that is safe to put in a *trusted* notebook output:
  raw HTML is escaped, only ``http(s)``/``mailto`` links survive (opening in a new tab), images are never
  loaded (they become "🖼 alt" links), code is highlighted by Pygments with CSS classes, math is left as
  ``$…$`` text for JupyterLab's MathJax, and the few TeX commands that could make MathJax emit links,
  styles or global macros are defanged.
- :func:`safe_markdown` returns the markdown *source* made safe for the ``text/markdown`` mime type, which
  JupyterLab renders with raw HTML and remote images enabled (FRONTEND.md Q4). Ordinary markdown, code and
  math stay byte-identical; raw HTML is escaped, images become links, bad link destinations are dropped.
  The result is re-parsed (with and without math) until nothing unsafe is left.
- :class:`MarkdownStream` renders a streamed answer incrementally: top-level blocks that can no longer
  change are rendered once (:meth:`MarkdownStream.take_frozen`), only the open tail is re-rendered.

This module knows nothing about IPython or the network.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml, unescapeAll
from markdown_it.rules_block import StateBlock
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from mdit_py_plugins.dollarmath import dollarmath_plugin

__all__ = [
    "MarkdownStream",
    "code_html",
    "defang_tex",
    "escape_text",
    "is_safe_url",
    "plain_text",
    "render_markdown",
    "safe_markdown",
]

LINK_REL = "noopener noreferrer nofollow"
IMAGE_MARK = "\U0001f5bc"  # 🖼

_SAFE_URL = re.compile(r"(?i)(?:https?://[^\s]|mailto:[^\s])")
_HTTP_URL = re.compile(r"(?i)https?://[^\s]")
_SCHEME = re.compile(r"(?i)[a-z][a-z0-9+.\-]*:")

# TeX commands that let MathJax (which JupyterLab runs over text/html and text/markdown outputs) emit
# links, CSS, classes/ids/data attributes, load extensions, or define macros for the whole page.
_TEX_DANGER = re.compile(
    r"\\(?=(?:href|url|style|class|cssId|data|bbox|require|mmlToken|enclose|texttip|toggle|mathtip|"
    r"def|gdef|edef|xdef|let|futurelet|newcommand|renewcommand|providecommand|newenvironment|"
    r"renewenvironment|DeclareMathOperator|Newextarrow|csname)(?![A-Za-z]))"
)
_WORD_JOINER = "\u2060"

#: Largest code block handed to Pygments (its regex lexers can be slow on adversarial input).
MAX_HIGHLIGHT = 100_000


# ----------------------------------------------------------------------------------------- helpers
def is_safe_url(url: str) -> bool:
    """Whether a (normalised) link destination may become an ``href``: absolute http(s) or mailto only."""
    return bool(_SAFE_URL.match(url))


def defang_tex(text: str) -> str:
    r"""Break ``\href``-like TeX commands with an invisible word joiner so MathJax cannot act on them."""
    if "\\" not in text:
        return text
    return _TEX_DANGER.sub("\\\\" + _WORD_JOINER, text)


def escape_text(text: str) -> str:
    """Escape untrusted text for HTML element content (also defanging MathJax commands)."""
    return escapeHtml(defang_tex(text))


def plain_text(text: str) -> str:
    """The ``text/plain`` form of an answer: the answer itself (plain text cannot run or load anything)."""
    return text


# ------------------------------------------------------------------------------- code highlighting
_LANG_NAME = re.compile(r"[A-Za-z0-9_+#.\-]{1,40}")


@functools.lru_cache(maxsize=256)
def _lexer(name: str) -> Any:
    """Pygments lexer for a fence's language, or None (cached: lexer lookup scans plugins)."""
    if not _LANG_NAME.fullmatch(name):
        return None
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        return get_lexer_by_name(name)
    except ClassNotFound:
        return None


@functools.lru_cache(maxsize=64)
def _lexer_keep_newlines(name: str) -> Any:
    """The same lexer, keeping leading/trailing newlines (for highlighting a block piece by piece)."""
    lexer = _lexer(name)
    if lexer is None:
        return None
    from pygments.lexers import get_lexer_by_name

    return get_lexer_by_name(name, stripnl=False)


@functools.cache
def _formatter(nowrap: bool = False) -> Any:
    from pygments.formatters import HtmlFormatter

    # CSS classes only: JupyterLab styles .highlight classes from its theme (dark theme included).
    return HtmlFormatter(nowrap=nowrap)


_HL_OPEN, _HL_CLOSE = '<div class="highlight"><pre><span></span>', "</pre></div>\n"


def code_html(code: str, lang: str = "") -> str:
    """A code block as HTML: Pygments classes when the language is known, else escaped ``<pre><code>``."""
    lexer = _lexer(lang.lower()) if lang else None
    if lexer is not None and len(code) <= MAX_HIGHLIGHT:
        from pygments import highlight

        return highlight(code, lexer, _formatter())
    return f"<pre><code>{escapeHtml(code)}</code></pre>\n"


# ------------------------------------------------------------------------------------ the renderer
_MATH_OPTIONS: dict[str, Any] = {
    # Pandoc-like: "$5 and $10" is money, not math; "$$…$$" blocks may contain blank lines.
    "allow_labels": False,
    "allow_space": False,
    "allow_digits": False,
    "allow_blank_lines": True,
    "double_inline": True,
}


def _base_md(*, html: bool, math: bool) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": html, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    if math:
        md.use(dollarmath_plugin, **_MATH_OPTIONS)
    return md


def _r_text(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return escape_text(tokens[idx].content)


def _r_fence(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    tok = tokens[idx]
    info = unescapeAll(tok.info).strip()
    return code_html(tok.content, info.split(maxsplit=1)[0] if info else "")


def _r_code_block(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return code_html(tokens[idx].content)


def _r_math_inline(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    tok = tokens[idx]
    return f'<span class="math">{escape_text(tok.markup + tok.content + tok.markup)}</span>'


def _r_math_inline_double(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return f'<span class="math display">{escape_text("$$" + tokens[idx].content + "$$")}</span>'


def _r_math_block(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return f'<div class="math">{escape_text("$$" + tokens[idx].content + "$$")}</div>\n'


def _r_link_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    tok = tokens[idx]
    tok.attrSet("target", "_blank")
    tok.attrSet("rel", LINK_REL)
    return self.renderToken(tokens, idx, options, env)


def _r_image(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    """An image in model text is never loaded (its URL can carry data out): show a link instead."""
    tok = tokens[idx]
    label = escape_text(f"{IMAGE_MARK} {self.renderInlineAsText(tok.children or [], options, env)}".rstrip())
    src = str(tok.attrGet("src") or "")
    inside_link = False
    for prev in reversed(tokens[:idx]):
        if prev.type in ("link_open", "link_close"):
            inside_link = prev.type == "link_open"
            break
    if inside_link or not _HTTP_URL.match(src):
        return label
    return (
        f'<a href="{escapeHtml(src)}" target="_blank" rel="{LINK_REL}" class="or-image-link" '
        f'title="image not loaded">{label}</a>'
    )


def _drop_unsafe_links(state: Any) -> None:
    """Core rule: remove link tokens whose href is not safe (e.g. ``[a]()`` yields an empty href)."""
    for tok in state.tokens:
        if tok.type != "inline" or not tok.children:
            continue
        children, keep, dropping = tok.children, [], False
        for child in children:
            if child.type == "link_open":
                dropping = not is_safe_url(str(child.attrGet("href") or ""))
                if dropping:
                    continue
            elif child.type == "link_close" and dropping:
                dropping = False
                continue
            keep.append(child)
        if len(keep) != len(children):
            tok.children = keep


@functools.cache
def _render_md() -> MarkdownIt:
    """The markdown-it instance used for every HTML render (built once)."""
    md = _base_md(html=False, math=True)
    md.validateLink = is_safe_url  # type: ignore[method-assign]
    md.core.ruler.push("or_drop_unsafe_links", _drop_unsafe_links)
    for name, rule in [
        ("text", _r_text),
        ("fence", _r_fence),
        ("code_block", _r_code_block),
        ("math_inline", _r_math_inline),
        ("math_inline_double", _r_math_inline_double),
        ("math_block", _r_math_block),
        ("link_open", _r_link_open),
        ("image", _r_image),
    ]:
        md.add_render_rule(name, rule)
    return md


def _render_tokens(tokens: Sequence[Token], env: dict[str, Any]) -> str:
    md = _render_md()
    return md.renderer.render(tokens, md.options, env)


def render_markdown(text: str) -> str:
    """Whole-document safe HTML for untrusted markdown (see the module docstring for the rules)."""
    md = _render_md()
    env: dict[str, Any] = {}
    return md.renderer.render(md.parse(text, env), md.options, env)


# ------------------------------------------------------------------------------- streaming render
@dataclass
class _FenceCache:
    """Highlighted HTML of the first lines of the open code block, so each update lexes only new lines."""

    lang: str = ""
    text: str = ""
    html: str = ""


#: Lines of an open code block are moved into the cache in pieces of about this many characters.
_FENCE_CACHE_PIECE = 512


@dataclass
class _ListCtx:
    """A top-level list whose first items were already frozen: how to render its continuation."""

    type: str  # "bullet_list_open" | "ordered_list_open"
    markup: str
    next_start: int
    loose: bool


def _top_blocks(tokens: Sequence[Token]) -> list[int]:
    return [i for i, t in enumerate(tokens) if t.level == 0 and t.nesting >= 0 and t.map is not None]


def _block_end(tokens: Sequence[Token], i: int) -> int:
    """Index just past the top-level block starting at token ``i``."""
    if tokens[i].nesting == 0:
        return i + 1
    depth = 0
    for j in range(i, len(tokens)):
        depth += tokens[j].nesting
        if depth == 0:
            return j + 1
    return len(tokens)


def _set_loose(tokens: Sequence[Token], start: int, end: int, loose: bool) -> None:
    for t in tokens[start:end]:
        if t.level == 2 and t.type in ("paragraph_open", "paragraph_close"):
            t.hidden = not loose


def _list_loose(tokens: Sequence[Token], start: int, end: int) -> bool:
    return any(t.level == 2 and t.type == "paragraph_open" and not t.hidden for t in tokens[start:end])


_UNCLOSED_MATH = re.compile(r"[ \t>]*\$\$(?!.*\$\$)")


class MarkdownStream:
    """Incremental safe rendering of a streamed markdown answer.

    Per-chunk work is bounded by the size of the still-open tail, never by the whole answer: ``append``
    only stores the delta; ``take_frozen`` parses the open tail's complete lines and hands out, once, the
    HTML of the top-level blocks that can no longer change; ``tail_html`` re-renders the rest.

    Freezing rule: CommonMark closes a top-level block for good when the next top-level block opens, so
    in a parse of the tail's complete lines every top-level block but the last is final. On top of that:

    - the last block, if a list, gives up its items but the last one when the list is already loose (it
      cannot become tight again), or, if tight, once its unfrozen part exceeds ``list_split`` characters;
      the continuation is rendered with the right ``start`` number and looseness;
    - the last block, if a fenced code block still open and longer than ``fence_split`` characters, is
      frozen so far and continues as a new ``<pre>`` (the final render shows one block); while open, its
      highlighted lines are cached so each update lexes only the newest ones;
    - nothing from a line that opens a ``$$`` block not yet closed is frozen (up to 200 lines), because
      its closing ``$$`` turns the lines in between into one math block.

    What incremental rendering cannot know (a reference definition that comes after its use, a tight
    list split by ``list_split`` that turns loose later, a split long code block) is right in the final
    whole-answer render, which callers do anyway.
    """

    def __init__(self, *, list_split: int = 4096, fence_split: int = 2048) -> None:
        self._chunks: list[str] = []
        self._len = 0
        self._tail: list[str] = []  # normalised, unfrozen text
        self._cr = False  # a "\r" held back in case "\n" follows in the next delta
        self._dirty = False  # a complete line arrived since the last freeze check
        self._pending: list[str] = []  # frozen HTML not yet taken
        self._prefix = ""  # the opening fence line of a long code block split while streaming
        self._refs: dict[str, Any] = {}
        self._ctx: _ListCtx | None = None
        self._finished = False
        self._list_split = list_split
        self._fence_split = fence_split
        self._fence_cache = _FenceCache()

    # -- input
    def append(self, delta: str) -> None:
        """Add streamed text; O(len(delta))."""
        if self._finished:
            raise RuntimeError("MarkdownStream.append() after finish()")
        if not delta:
            return
        self._chunks.append(delta)
        self._len += len(delta)
        s = delta
        if self._cr:
            s, self._cr = "\r" + s, False
        if s.endswith("\r"):
            s, self._cr = s[:-1], True
        if "\r" in s:
            s = s.replace("\r\n", "\n").replace("\r", "\n")
        if "\0" in s:
            s = s.replace("\0", "\ufffd")
        if s:
            self._tail.append(s)
            if "\n" in s:
                self._dirty = True

    def __len__(self) -> int:
        """Characters appended so far, in O(1) (``bool(stream)``: has any text arrived?)."""
        return self._len

    @property
    def text(self) -> str:
        """Everything appended so far, exactly as received (joined on demand, then cached)."""
        if len(self._chunks) > 1:
            self._chunks = ["".join(self._chunks)]
        return self._chunks[0] if self._chunks else ""

    # -- output
    def take_frozen(self) -> str:
        """Safe HTML of the blocks that became final since the last call ('' if none), each exactly once."""
        if self._dirty and not self._finished:
            self._dirty = False
            self._freeze()
        out = "".join(self._pending)
        self._pending.clear()
        return out

    def tail_html(self) -> str:
        """Safe HTML of the still-open tail (cost bounded by the tail's size)."""
        src = self._prefix + self._tail_text()
        if not src:
            return ""
        return self._render_src(src, cache_fence=True)

    def finish(self) -> str:
        """HTML of everything not yet handed out (frozen but untaken, then the open tail); call once."""
        if self._finished:
            return ""
        if self._cr:
            self._cr = False
            self._tail.append("\n")
        src = self._prefix + self._tail_text()
        out = "".join(self._pending) + (self._render_src(src) if src else "")
        self._pending.clear()
        self._tail, self._prefix, self._finished = [], "", True
        return out

    # -- internals
    def _tail_text(self) -> str:
        if len(self._tail) > 1:
            self._tail = ["".join(self._tail)]
        return self._tail[0] if self._tail else ""

    def _env(self) -> dict[str, Any]:
        return {"references": dict(self._refs)} if self._refs else {}

    def _render_src(self, src: str, *, cache_fence: bool = False) -> str:
        env = self._env()
        tokens = _render_md().parse(src, env)
        self._apply_ctx(tokens)
        last = tokens[-1] if tokens else None
        if cache_fence and last is not None and last.type == "fence" and last.level == 0:
            return _render_tokens(tokens[:-1], env) + self._open_fence_html(last)
        return _render_tokens(tokens, env)

    def _open_fence_html(self, tok: Token) -> str:
        """The last code block of the tail, highlighted piecewise: cached lines + the newest ones.

        Pieces are lexed separately, so a construct spanning a piece boundary (a long string) may be
        coloured differently while streaming; the frozen block and the final render lex it whole.
        """
        info = unescapeAll(tok.info).strip()
        lang = info.split(maxsplit=1)[0].lower() if info else ""
        content = tok.content
        lexer = _lexer_keep_newlines(lang) if lang else None
        if lexer is None or not content or len(content) > MAX_HIGHLIGHT:
            return code_html(content, lang)
        from pygments import highlight

        cache = self._fence_cache
        if cache.lang != lang or not content.startswith(cache.text):
            cache = self._fence_cache = _FenceCache(lang)
        rest = content[len(cache.text) :]
        while len(rest) > 2 * _FENCE_CACHE_PIECE:
            cut = rest.find("\n", _FENCE_CACHE_PIECE) + 1
            if cut <= 0:
                break
            cache.html += highlight(rest[:cut], lexer, _formatter(True))
            cache.text += rest[:cut]
            rest = rest[cut:]
        fresh = highlight(rest, lexer, _formatter(True)) if rest else ""
        return f"{_HL_OPEN}{cache.html}{fresh}{_HL_CLOSE}"

    def _apply_ctx(self, tokens: list[Token]) -> bool:
        """Render a list continued from frozen items with its real start number and looseness."""
        ctx = self._ctx
        if ctx is None or not tokens:
            return False
        first = tokens[0]
        if first.type != ctx.type or first.markup != ctx.markup:
            return False
        if ctx.type == "ordered_list_open":
            if ctx.next_start != 1:
                first.attrSet("start", ctx.next_start)
            elif first.attrs:
                first.attrs.pop("start", None)
        end = _block_end(tokens, 0)
        if ctx.loose:
            _set_loose(tokens, 0, end, True)
        elif _list_loose(tokens, 0, end):
            ctx.loose = True
        return True

    def _freeze(self) -> None:
        tail = self._tail_text()
        nl = tail.rfind("\n")
        if nl < 0:
            return
        src = self._prefix + tail[: nl + 1]
        env = self._env()
        tokens = _render_md().parse(src, env)
        continued = self._apply_ctx(tokens)
        blocks = _top_blocks(tokens)
        if not blocks:
            return
        lines = src.split("\n")  # ends with '' (src ends with a newline)
        n_lines = len(lines) - 1

        last = blocks[-1]
        cut_idx, cut_line = last, tokens[last].map[0]  # type: ignore[index]
        extra, new_ctx, new_prefix = "", None, ""
        guard = self._unclosed_math_line(tokens, lines, n_lines)
        if guard is not None:
            # Keep everything from the block holding an unclosed "$$" line open, and split nothing.
            cut_idx = next(b for b in blocks if tokens[b].map[1] > guard or b == last)  # type: ignore[index]
            cut_line = tokens[cut_idx].map[0]  # type: ignore[index]
        elif tokens[last].type in ("bullet_list_open", "ordered_list_open"):
            split = self._split_list(tokens, last, lines)
            if split is not None:
                extra, cut_line, new_ctx = split
        elif tokens[last].type == "fence":
            fence = self._split_fence(tokens[last], lines)
            if fence is not None:
                extra, new_prefix = fence
                cut_line = n_lines
        if cut_idx == 0 and not extra:
            return

        html = _render_tokens(tokens[:cut_idx], env) if cut_idx else ""
        self._pending.append(html + extra)
        self._refs = dict(env.get("references", {}))
        if new_ctx is not None:
            self._ctx = new_ctx
        elif cut_idx > 0 or not continued:
            self._ctx = None
        # Drop the frozen source from the tail (the prefix, if any, is line 0 of ``src``).
        offset = sum(len(line) + 1 for line in lines[:cut_line]) - len(self._prefix)
        self._prefix = new_prefix
        self._tail = [tail[max(offset, 0) :]]

    @staticmethod
    def _unclosed_math_line(tokens: Sequence[Token], lines: list[str], n_lines: int) -> int | None:
        """First of the last 200 lines that opens a "$$" block not closed yet (its lines may merge)."""
        first = max(0, n_lines - 200)
        covered = bytearray(n_lines + 1)
        for t in tokens:
            if t.map and t.type in ("fence", "code_block", "math_block", "math_block_label"):
                a, b = max(t.map[0], first), min(t.map[1], n_lines)
                if b > a:
                    covered[a:b] = b"\x01" * (b - a)
        for ln in range(first, n_lines):
            if not covered[ln] and _UNCLOSED_MATH.match(lines[ln]):
                return ln
        return None

    def _split_list(self, tokens: list[Token], i: int, lines: list[str]) -> tuple[str, int, _ListCtx] | None:
        """Freeze all but the last item of the open top-level list, if that is exact (or it is long)."""
        end = _block_end(tokens, i)
        items = [j for j in range(i + 1, end) if tokens[j].type == "list_item_open" and tokens[j].level == 1]
        if len(items) < 2:
            return None
        loose = _list_loose(tokens, i, end)
        lst = tokens[i]
        first_line, cut_line = lst.map[0], tokens[items[-1]].map[0]  # type: ignore[index]
        if not loose and sum(len(line) + 1 for line in lines[first_line:cut_line]) < self._list_split:
            return None
        start = 1
        if lst.type == "ordered_list_open":
            start = int(lst.attrGet("start") or 1)
        close = Token(lst.type.replace("_open", "_close"), lst.tag, -1)
        close.markup, close.block = lst.markup, True
        html = _render_tokens([*tokens[i : items[-1]], close], {})
        ctx = _ListCtx(lst.type, lst.markup, start + len(items) - 1, loose)
        return html, cut_line, ctx

    def _split_fence(self, tok: Token, lines: list[str]) -> tuple[str, str] | None:
        """Freeze a long, still open fenced code block so far; it goes on as a new block."""
        first, end = tok.map  # type: ignore[misc]
        closing = lines[end - 1].strip() if end - 1 > first else ""
        if closing and set(closing) == {tok.markup[0]} and len(closing) >= len(tok.markup):
            return None  # closed: it freezes like any block once the next one starts
        if len(tok.content) < self._fence_split:
            return None
        return _render_tokens([tok], {}), lines[first] + "\n"


# ------------------------------------------------------------------------- safe markdown source
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
    md = _base_md(html=True, math=math)
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
    return strict or bool(_SCHEME.match(href))


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
        if _HTTP_URL.match(span.href):
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
        for m in _TEX_DANGER.finditer(src):
            if not edits.code[m.start()]:
                edits.add(m.start() + 1, m.start() + 1, _WORD_JOINER)
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
