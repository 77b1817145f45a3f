"""Incremental safe rendering of a streamed answer: frozen top-level blocks plus a re-rendered open tail."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markdown_it.common.utils import unescapeAll
from markdown_it.token import Token

from .highlight import code_piece_html
from .render import render_md, render_tokens


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


#: Complete lines of an open code block are frozen once they hold this many characters: the re-sent
#: tail stays a few lines long, and a long block becomes a few hundred pieces at most.
FENCE_SPLIT = 128

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
    - the last block, if a fenced code block still open, gives up its complete lines once they reach
      ``fence_split`` characters: they are frozen as their own ``<pre>`` piece and the block continues in
      a new one (the final render shows one block), so only its newest lines are ever re-sent;
    - nothing from a line that opens a ``$$`` block not yet closed is frozen (up to 200 lines), because
      its closing ``$$`` turns the lines in between into one math block.

    What incremental rendering cannot know (a reference definition that comes after its use, a tight
    list split by ``list_split`` that turns loose later, a split long code block) is right in the final
    whole-answer render, which callers do anyway.
    """

    def __init__(self, *, list_split: int = 4096, fence_split: int = FENCE_SPLIT) -> None:
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
        tail = self._tail_text()
        return self._render_src(self._prefix + tail) if tail else ""

    def finish(self) -> str:
        """HTML of everything not yet handed out (frozen but untaken, then the open tail); call once."""
        if self._finished:
            return ""
        if self._cr:
            self._cr = False
            self._tail.append("\n")
        src = self._prefix + self._tail_text()
        out = "".join(self._pending) + (self._render_src(src, final=True) if src else "")
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

    def _render_src(self, src: str, *, final: bool = False) -> str:
        """Render tail source; a last code block is rendered as the piece of one block it may be."""
        env = self._env()
        tokens = render_md().parse(src, env)
        self._apply_ctx(tokens)
        last = tokens[-1] if tokens else None
        if last is None or last.type != "fence" or last.level != 0:
            return render_tokens(tokens, env)
        first = not (self._prefix and last.map and last.map[0] == 0)  # not the rest of a split block
        closed = final or _fence_closed(last, src.split("\n"))
        return render_tokens(tokens[:-1], env) + _fence_piece(last, first=first, last=closed)

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
        """Move what can no longer change from the tail's complete lines to the pending frozen HTML."""
        tail = self._tail_text()
        nl = tail.rfind("\n")
        if nl < 0:
            return
        src = self._prefix + tail[: nl + 1]
        env = self._env()
        tokens = render_md().parse(src, env)
        continued = self._apply_ctx(tokens)
        blocks = _top_blocks(tokens)
        if not blocks:
            return
        lines = src.split("\n")  # ends with '' (src ends with a newline)
        cut = self._cut(tokens, blocks, lines)
        if cut.index == 0 and not cut.extra:
            return
        html = self._render_frozen(tokens[: cut.index], env)
        self._pending.append(html + cut.extra)
        self._refs = dict(env.get("references", {}))
        if cut.ctx is not None:
            self._ctx = cut.ctx
        elif cut.index > 0 or not continued:
            self._ctx = None
        # Drop the frozen source from the tail (the prefix, if any, is line 0 of ``src``).
        offset = sum(len(line) + 1 for line in lines[: cut.line]) - len(self._prefix)
        self._prefix = cut.prefix
        self._tail = [tail[max(offset, 0) :]]

    def _render_frozen(self, tokens: list[Token], env: dict[str, Any]) -> str:
        """HTML of whole frozen blocks; the first may end a code block split while streaming."""
        if not tokens:
            return ""
        first = tokens[0]
        if self._prefix and first.type == "fence" and first.level == 0 and first.map and first.map[0] == 0:
            return _fence_piece(first, first=False, last=True) + render_tokens(tokens[1:], env)
        return render_tokens(tokens, env)

    def _cut(self, tokens: list[Token], blocks: list[int], lines: list[str]) -> _Cut:
        """Where the frozen part ends: before the last top-level block, or inside it (list, code block)."""
        last, n_lines = blocks[-1], len(lines) - 1
        guard = _unclosed_math_line(tokens, lines, n_lines)
        if guard is not None:
            # Keep everything from the block holding an unclosed "$$" line open, and split nothing.
            index = next(b for b in blocks if tokens[b].map[1] > guard or b == last)  # type: ignore[index]
            return _Cut(index, tokens[index].map[0])  # type: ignore[index]
        cut = _Cut(last, tokens[last].map[0])  # type: ignore[index]
        if tokens[last].type in ("bullet_list_open", "ordered_list_open"):
            split = self._split_list(tokens, last, lines)
            if split is not None:
                cut.extra, cut.line, cut.ctx = split
        elif tokens[last].type == "fence":
            split = self._split_fence(tokens[last], lines)
            if split is not None:
                cut.extra, held = split
                cut.prefix, cut.line = lines[tokens[last].map[0]] + "\n", n_lines - held  # type: ignore[index]
        return cut

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
        html = render_tokens([*tokens[i : items[-1]], close], {})
        ctx = _ListCtx(lst.type, lst.markup, start + len(items) - 1, loose)
        return html, cut_line, ctx

    def _split_fence(self, tok: Token, lines: list[str]) -> tuple[str, int] | None:
        """HTML of the complete lines of a still open code block, once they are long enough to freeze.

        Trailing blank lines are held back (as a count of lines): if the block ends there, it drops them.
        """
        if _fence_closed(tok, lines):
            return None  # it freezes like any block once the next one starts
        body = tok.content.rstrip("\n")
        if len(body) < max(self._fence_split, 1):
            return None
        held = len(tok.content) - len(body) - 1
        tok.content = body + "\n"
        return _fence_piece(tok, first=not self._prefix, last=False), held


@dataclass
class _Cut:
    """How far ``_freeze`` freezes: blocks before ``index`` (source lines before ``line``), then ``extra``."""

    index: int
    line: int
    extra: str = ""  # HTML of the frozen part of the block at ``index`` (list items, code lines)
    ctx: _ListCtx | None = None  # how a split list goes on
    prefix: str = ""  # the opening line of a split code block, put back before the rest of its source


def _fence_closed(tok: Token, lines: list[str]) -> bool:
    """Whether the code block's last source line is its closing fence."""
    first, end = tok.map  # type: ignore[misc]
    closing = lines[end - 1].strip() if end - 1 > first else ""
    return bool(closing) and set(closing) == {tok.markup[0]} and len(closing) >= len(tok.markup)


def _fence_piece(tok: Token, *, first: bool, last: bool) -> str:
    """A code block, or the part of one that streamed since its last piece (see ``code_piece_html``)."""
    info = unescapeAll(tok.info).strip()
    return code_piece_html(tok.content, info.split(maxsplit=1)[0] if info else "", first=first, last=last)


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
