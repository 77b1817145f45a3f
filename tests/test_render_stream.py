"""MarkdownStream: frozen blocks + final tail equal the whole-document render; per-chunk work is bounded."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from or_magic.markdown import MarkdownStream, render_markdown

# A list whose first items were frozen is continued in a new <ul>/<ol start=N>: the same list to the eye.
SEAM = re.compile(r"</(ul|ol)>\n<\1(?: start=\"\d+\")?>\n")
# A code block whose first lines were frozen while open is continued in a new highlighted <pre>.
CODE_SEAM = '</pre></div>\n<div class="highlight"><pre><span></span>'


def norm(html: str) -> str:
    return SEAM.sub("", html).replace(CODE_SEAM, "")


def stream(
    text: str, cuts: list[int] | None = None, *, tail: bool = True, **kw: int
) -> tuple[list[str], str]:
    """Feed ``text`` split at ``cuts`` (default: every character); returns (frozen pieces, finish())."""
    s = MarkdownStream(**kw)
    bounds = sorted({0, len(text), *(cuts if cuts is not None else range(len(text)))})
    pieces = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        s.append(text[a:b])
        pieces.append(s.take_frozen())
        if tail:
            s.tail_html()
    end = s.finish()
    assert s.text == text
    return pieces, end


def assert_equivalent(text: str, cuts: list[int] | None = None, **kw: int) -> list[str]:
    pieces, end = stream(text, cuts, **kw)
    assert norm("".join(pieces) + end) == norm(render_markdown(text))
    return [p for p in pieces if p]


CORPUS = [
    """# Sorting in Python

Python has two ways to sort: `sorted()` returns a new list, `list.sort()` sorts in place.

## Examples

```python
nums = [3, 1, 2]

print(sorted(nums))  # [1, 2, 3]
```

1. **Stable**: equal keys keep their order.

   This matters when you sort by several keys.

2. **Key functions**: pass `key=`.
   - `key=len`
   - `key=str.lower`

3. **Reverse**: `reverse=True`.

That's it.
""",
    """The quadratic formula is $x = \\frac{-b \\pm \\sqrt{b^2-4ac}}{2a}$, and for $a_1*b_2$ we get

$$
\\begin{aligned}
f(x) &= x^2 \\\\

g(x) &= x_1 * y_2
\\end{aligned}
$$

Display math inline: $$E = mc^2$$ is famous. Money: $5 and $10.
""",
    """| Model | Context | Price |
|:------|--------:|:-----:|
| a | 128k | $1 |
| b | 1M | $2 |

> **Note**: tables end at a blank line.
> Quotes can span lines.

> A second quote.

Setext Heading
==============

Another one
-----------

***

    indented code

    with a blank line inside

Done.
""",
    """- tight a
- tight b
- tight c

- now the list is loose
- and stays loose

Paragraph.

* star list
* second

+ plus list

1) paren
2) ordered
""",
    """1. one
1. two
1. three

1. four (loose from here on)

1. five

Text after.

7. starts at seven
8. eight

9. nine
""",
    """- item one

  continuation paragraph of one

  ```bash
  echo "code in a list"

  echo "with a blank line"
  ```

- item two
  > quote in item

- item three
    - nested deeper

      nested para
""",
    """[link][docs] defined before use below.

[docs]: https://docs.example.com

Now [docs] and [docs][] and [Docs] resolve, and <https://auto.example/x> too.

![an image](https://img.example/a.png) stays a link.
""",
    """~~~
tilde fence

with blank
~~~

````markdown
```python
inner fence
```
````

Text with ~~strike~~ and *emph* and **strong** and `code`.

#### Heading with trailing hashes ####
""",
    """A paragraph
that continues
lazily.
> quote right after
continued lazily

- list
right after
""",
    "No trailing newline at all, and *unfinished emphasis",
    "Windows\r\nline endings\r\n\r\n- a\r\n- b\r\n\r\ncode:\r\n```\r\nx\r\n```\r\n",
    "\n\n\nLeading blank lines\n\n\n\nand many blank lines\n\n\n",
    "$$\nunclosed math block\n\nstays open\n",
    "```python\nunclosed fence\n\nx = 1\n",
]


@pytest.mark.parametrize("text", CORPUS, ids=[f"doc{i}" for i in range(len(CORPUS))])
def test_stream_equals_whole_render_char_by_char(text: str) -> None:
    assert_equivalent(text)


@pytest.mark.parametrize("text", CORPUS, ids=[f"doc{i}" for i in range(len(CORPUS))])
@pytest.mark.parametrize("seed", range(6))
def test_stream_equals_whole_render_random_chunks(text: str, seed: int) -> None:
    rnd = random.Random(seed)
    cuts = sorted(rnd.sample(range(len(text)), min(len(text), rnd.randint(1, 40))))
    assert_equivalent(text, cuts)


def test_stream_without_tail_calls_and_one_chunk() -> None:
    for text in CORPUS:
        pieces, end = stream(text, tail=False)
        assert norm("".join(pieces) + end) == norm(render_markdown(text))
        pieces, end = stream(text, [])  # one chunk
        assert len(pieces) == 1 and norm(pieces[0] + end) == norm(render_markdown(text))


# ------------------------------------------------------------------------------ freezing rule
def test_each_block_once_in_order() -> None:
    pieces, end = stream("p1\n\np2\n\np3\n")
    assert [p for p in pieces if p] == ["<p>p1</p>\n", "<p>p2</p>\n"] and end == "<p>p3</p>\n"


def test_block_freezes_only_when_the_next_one_starts() -> None:
    s = MarkdownStream()
    s.append("para one\n\n")
    assert s.take_frozen() == "" and s.tail_html() == "<p>para one</p>\n"
    s.append("   \n")  # blank lines do not start a block
    assert s.take_frozen() == ""
    s.append("next")  # no newline yet: the line could still become anything
    assert s.take_frozen() == ""
    s.append("\n")
    assert s.take_frozen() == "<p>para one</p>\n" and s.tail_html() == "<p>next</p>\n"


def test_setext_underline_is_not_split_from_its_paragraph() -> None:
    s = MarkdownStream()
    s.append("Title\n")
    assert s.take_frozen() == ""
    s.append("-----\n\nbody\n")
    assert s.take_frozen() == "<h2>Title</h2>\n"


def test_fence_and_math_with_blank_lines_stay_open() -> None:
    s = MarkdownStream()
    s.append("```\na\n\n\nb\n\ntext\n")
    assert s.take_frozen() == ""
    s.append("```\n\nafter\n")
    assert s.take_frozen() == "<pre><code>a\n\n\nb\n\ntext\n</code></pre>\n"
    s = MarkdownStream()
    s.append("$$\na\n\nb\n\nc\n")
    assert s.take_frozen() == ""  # the closing $$ would merge all of it
    s.append("$$\n\nafter\n")
    assert s.take_frozen() == '<div class="math">$$\na\n\nb\n\nc\n$$</div>\n'


def test_loose_list_items_freeze_tight_ones_wait() -> None:
    s = MarkdownStream()
    s.append("- a\n- b\n- c\n")
    assert s.take_frozen() == ""  # tight so far: a blank line later would make it loose
    s.append("\n- d\n")
    assert (
        s.take_frozen()
        == "<ul>\n<li>\n<p>a</p>\n</li>\n<li>\n<p>b</p>\n</li>\n<li>\n<p>c</p>\n</li>\n</ul>\n"
    )
    s.append("- e\n")
    assert s.take_frozen() == "<ul>\n<li>\n<p>d</p>\n</li>\n</ul>\n"
    assert s.finish() == "<ul>\n<li>\n<p>e</p>\n</li>\n</ul>\n"


def test_ordered_list_continuation_keeps_numbering() -> None:
    frozen = assert_equivalent("1. a\n\n1. b\n\n1. c\n\n1. d\n")
    assert frozen[0].startswith("<ol>\n") and frozen[1].startswith('<ol start="2">\n')


def test_long_tight_list_is_split_and_numbered() -> None:
    text = "".join(f"1. item {i} with some words\n" for i in range(150)) + "\nafter\n"
    pieces, end = stream(text, list(range(0, len(text), 11)), list_split=512)
    frozen = [p for p in pieces if p]
    assert len(frozen) > 5 and any('<ol start="' in p for p in frozen)
    assert norm("".join(pieces) + end) == norm(render_markdown(text))


def test_long_open_fence_is_split_and_complete() -> None:
    body = "".join(f"line {i} = {i} * 2  # <b>\n" for i in range(800))
    text = f"```python\n{body}```\n\nafter\n"
    s = MarkdownStream(fence_split=1024)
    sizes, pieces = [], []
    for i in range(0, len(text), 80):
        s.append(text[i : i + 80])
        pieces.append(s.take_frozen())
        sizes.append(len(s.tail_html()))
    end = s.finish()
    assert max(sizes) < 20_000  # the open tail stays small (highlighted HTML of ~1 KB of code)
    html = "".join(pieces) + end
    assert html.count('<div class="highlight">') > 10
    assert re.sub(r"<[^>]+>", "", html).count("&lt;b&gt;") == 800  # every line once


def test_references_defined_earlier_resolve_later() -> None:
    text = "[r]: https://x.example\n\nfirst para\n\nsee [r]\n\nend\n"
    frozen = assert_equivalent(text)
    assert any('href="https://x.example"' in p for p in frozen)


def test_forward_references_are_fixed_by_the_final_render() -> None:
    text = "see [r]\n\nmiddle\n\n[r]: https://x.example\n"
    pieces, end = stream(text)
    assert "href" not in "".join(pieces)  # the streamed view cannot know yet
    assert 'href="https://x.example"' in render_markdown(text)


def test_text_crlf_and_misuse() -> None:
    s = MarkdownStream()
    for part in ["a\r", "\nb\r", "\r", "\n\r\n", "c"]:
        s.append(part)
    assert s.text == "a\r\nb\r\r\n\r\nc"
    assert s.finish() == render_markdown("a\nb\n\n\nc") and s.finish() == ""
    with pytest.raises(RuntimeError):
        s.append("x")
    assert MarkdownStream().finish() == "" and MarkdownStream().tail_html() == ""


def test_text_is_cached_not_rejoined() -> None:
    s = MarkdownStream()
    for _ in range(1000):
        s.append("ab")
    assert s.text == "ab" * 1000 and s.text is s.text
    assert len(s) == 2000 and bool(s) and not MarkdownStream()


# ------------------------------------------------------------------------------ bounded work
def long_answer(n_bytes: int, seed: int = 0) -> str:
    """An LLM-like answer of about ``n_bytes``: sections, loose lists, tight lists, code, tables, math."""
    rnd = random.Random(seed)
    words = [
        "the",
        "of",
        "model",
        "token",
        "stream",
        "render",
        "block",
        "list",
        "code",
        "math",
        "table",
        "answer",
    ]

    def sentence() -> str:
        return " ".join(rnd.choice(words) for _ in range(rnd.randint(6, 16))).capitalize() + "."

    parts, size, k = [], 0, 0
    while size < n_bytes:
        k += 1
        kind = k % 6
        if kind == 0:
            block = f"## Section {k}\n\n{sentence()} {sentence()} $x_{k}*y$."
        elif kind == 1:
            block = "\n\n".join(f"{i}. **Point {i}**: {sentence()}\n\n   {sentence()}" for i in range(1, 5))
        elif kind == 2:
            block = "\n".join(f"- {sentence()}" for _ in range(4))
        elif kind == 3:
            block = "```python\n" + "\n".join(f"x{i} = {i}  # {sentence()}" for i in range(6)) + "\n```"
        elif kind == 4:
            block = "| a | b |\n|---|---|\n" + "\n".join(f"| {i} | {sentence()} |" for i in range(4))
        else:
            block = f"$$\n\\sum_{{i={k}}}^n i\n$$\n\n> {sentence()}"
        parts.append(block)
        size += len(block) + 2
    return "\n\n".join(parts) + "\n"


def test_open_tail_stays_small_on_a_long_answer() -> None:
    text = long_answer(200_000)
    s = MarkdownStream()
    biggest = 0
    for i in range(0, len(text), 20):
        s.append(text[i : i + 20])
        s.take_frozen()
        biggest = max(biggest, len(s._tail_text()))  # noqa: SLF001 - the quantity the cost depends on
    s.finish()
    assert biggest < 3_000, biggest


def test_long_answer_equivalence() -> None:
    text = long_answer(30_000, seed=3)
    assert_equivalent(text, list(range(0, len(text), 13)))


# ---------------------------------------------------------------------------------- hypothesis
WORD = st.sampled_from(["alpha", "beta", "gamma", "delta", "x", "y", "z", "42", "foo", "bar"])
INLINE = st.sampled_from(
    ["*em*", "**strong**", "`co de`", "$x_1*y_2$", "[l](https://l.example)", "~~s~~", "a_b"]
)
text_line = st.lists(WORD | INLINE, min_size=1, max_size=8).map(" ".join)


def _indent(block: str, n: int) -> str:
    return "\n".join((" " * n + line) if line else "" for line in block.split("\n"))


paragraph = st.lists(text_line, min_size=1, max_size=3).map("\n".join)
heading = st.tuples(st.integers(1, 4), text_line).map(lambda t: "#" * t[0] + " " + t[1])
setext = st.tuples(text_line, st.sampled_from(["===", "---"])).map("\n".join)
code_lines = st.lists(st.sampled_from(["x = 1", "", "if a < b:", "    pass", "<b>html</b>"]), max_size=5)
fence = st.tuples(
    st.sampled_from(["```", "~~~", "````"]), st.sampled_from(["", "python", "js"]), code_lines
).map(lambda t: f"{t[0]}{t[1]}\n" + "\n".join(t[2]) + ("\n" if t[2] else "") + t[0])
math_block = st.lists(st.sampled_from(["a_1 * b_2", "", "\\frac{1}{2}"]), min_size=1, max_size=4).map(
    lambda ls: "$$\n" + "\n".join(ls) + "\n$$"
)
table = st.tuples(st.integers(1, 3), st.integers(0, 3)).map(
    lambda t: (
        "| "
        + " | ".join(f"h{i}" for i in range(t[0]))
        + " |\n|"
        + "---|" * t[0]
        + "".join("\n| " + " | ".join(f"c{r}{i}" for i in range(t[0])) + " |" for r in range(t[1]))
    )
)
hr = st.sampled_from(["---", "***", "___"])
simple = st.one_of(paragraph, heading, setext, fence, math_block, table, hr)


@st.composite
def md_list(draw: st.DrawFn) -> str:
    ordered = draw(st.booleans())
    marker = draw(st.sampled_from([".", ")"])) if ordered else draw(st.sampled_from(["-", "*", "+"]))
    numbering = draw(st.sampled_from(["seq", "ones", "start5"]))
    items = []
    for i in range(draw(st.integers(1, 5))):
        num = {"seq": i + 1, "ones": 1, "start5": 5 + i}[numbering]
        head = f"{num}{marker} " if ordered else f"{marker} "
        first = draw(text_line)
        extra = draw(st.lists(st.one_of(paragraph, fence, st.just("- nested\n- list")), max_size=2))
        body = first + "".join("\n\n" + _indent(b, len(head)) for b in extra)
        items.append(head + body)
    sep = draw(st.sampled_from(["\n", "\n\n"]))
    return sep.join(items)


blockquote = st.lists(st.one_of(paragraph, md_list()), min_size=1, max_size=2).map(
    lambda bs: "\n>\n".join(_indent(b, 0).replace("\n", "\n> ").join(["> ", ""]) for b in bs)
)
block = st.one_of(simple, md_list(), blockquote)
document = st.lists(block, min_size=1, max_size=8).map("\n\n".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document, st.lists(st.integers(0, 10_000), max_size=60))
def test_random_markdown_random_chunks_equivalent(text: str, cuts: list[int]) -> None:
    assert_equivalent(text, [c % (len(text) + 1) for c in cuts])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(alphabet=st.sampled_from(list("ab <>`$*_-#>|[]()!\n\t\r:&;/=\"'~1.")), max_size=200),
    st.lists(st.integers(0, 300), max_size=30),
)
def test_random_text_random_chunks_never_raises(text: str, cuts: list[int]) -> None:
    pieces, end = stream(text, [c % (len(text) + 1) for c in cuts])
    html = "".join(pieces) + end
    assert "<script" not in html and "<img" not in html
