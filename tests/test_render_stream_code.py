"""A long code block streamed into MarkdownStream: its finished lines are handed out once, the re-sent tail stays
a line or two, and the pieces add up to the whole-answer render."""

from __future__ import annotations

import re

import pytest

from or_magic.markdown import MarkdownStream, render_markdown
from or_magic.markdown.stream import FENCE_SPLIT

CODE_SEAM = '</pre></div>\n<div class="highlight"><pre><span></span>'


def code_block(chars: int) -> str:
    """A fenced python block of at most ``chars`` characters (small enough to be highlighted whole)."""
    out, k = ["```python\n"], 0
    while True:
        fn = (f"def step_{k}(values: list[int]) -> list[int]:\n    \"\"\"Round {k}.\"\"\"\n"
              f"    return [v * {k} for v in values if v > 0]  # <b>{k}</b>\n\n")
        if sum(map(len, out)) + len(fn) + 4 > chars:
            return "".join(out) + "```\n"
        out.append(fn)
        k += 1


def stream_as_sink(text: str, flush_every: int) -> tuple[int, int, list[str], str]:
    """Feed ``text`` word by word, flushing like a display sink every ``flush_every`` characters.

    Returns (bytes a sink would send: each frozen piece once plus each changed tail, the largest tail,
    the frozen pieces, finish()).
    """
    s = MarkdownStream()
    sent, biggest, since, shown = 0, 0, 0, ""
    pieces: list[str] = []
    for word in re.findall(r"\S+\s*|\s+", text):
        s.append(word)
        since += len(word)
        if since >= flush_every:
            since = 0
            frozen = s.take_frozen()
            pieces.append(frozen)
            tail = s.tail_html()
            if tail != shown:
                sent, shown = sent + len(frozen) + len(tail), tail
            else:
                sent += len(frozen)
            biggest = max(biggest, len(tail))
    end = s.finish()
    return sent + len(end), biggest, pieces, end


@pytest.mark.parametrize(
    ("size", "flush_every", "limit"), [(100_000, 640, 1.5), (30_000, 200, 2.0), (30_000, 20, 6.0)]
)
def test_long_code_block_costs_about_its_final_size(size: int, flush_every: int, limit: float) -> None:
    """Fast streams (a flush per 640 characters) and slow ones (20): the block so far is never re-sent."""
    text = code_block(size)
    final = render_markdown(text)
    assert final.count('<div class="highlight">') == 1  # highlighted whole in the final render
    sent, biggest, pieces, end = stream_as_sink(text, flush_every)
    assert sent <= limit * len(final), sent / len(final)
    assert biggest < 10 * (FENCE_SPLIT + flush_every + 100), biggest  # the newest lines' HTML only
    assert ("".join(pieces) + end).replace(CODE_SEAM, "") == final


def test_finished_code_lines_are_frozen_once_each() -> None:
    text = code_block(20_000)
    _, _, pieces, end = stream_as_sink(text, 300)
    frozen = [p for p in pieces if p]
    assert len(frozen) > 20
    assert all(p.startswith('<div class="highlight"><pre>') for p in frozen)
    html = "".join(pieces) + end
    assert re.sub(r"<[^>]+>", "", html).count("&lt;b&gt;") == text.count("<b>")  # every line once, escaped
    assert "<b>" not in html


def test_blank_lines_at_a_piece_edge_are_kept() -> None:
    s = MarkdownStream(fence_split=1)
    s.append("```python\nx = 1\n\n")
    first = s.take_frozen()
    s.append("\ny = 2\n")
    second = s.take_frozen()
    s.append("```\n")
    joined = (first + second + s.finish()).replace(CODE_SEAM, "")
    assert joined == render_markdown("```python\nx = 1\n\n\ny = 2\n```\n")


def test_closing_fence_still_unfinished_is_not_frozen_as_code() -> None:
    s = MarkdownStream(fence_split=1)
    s.append("```\nline one\nline two\n``")
    assert s.take_frozen() == "<pre><code>line one\nline two\n</code></pre>\n"
    assert s.tail_html() == "<pre><code>``</code></pre>\n"  # could still become the closing fence
    s.append("`\n\nafter\n")
    assert s.take_frozen() == ""  # the block ends with no new line: no empty piece
    assert s.finish() == "<p>after</p>\n"
