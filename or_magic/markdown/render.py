"""Safe HTML for untrusted markdown: the one parser configuration and its render rules.

Raw HTML is escaped, only ``http(s)``/``mailto`` links survive (opening in a new tab), images are never
loaded (they become "🖼 alt" links), code is highlighted with CSS classes, math is left as ``$…$`` text for
JupyterLab's MathJax, and the TeX commands that could make MathJax emit links, styles or macros are defanged.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml, unescapeAll
from markdown_it.token import Token
from mdit_py_plugins.dollarmath import dollarmath_plugin

from .highlight import code_html
from .safe import HTTP_URL, IMAGE_MARK, LINK_REL, escape_text, is_safe_url

_MATH_OPTIONS: dict[str, Any] = {
    # Pandoc-like: "$5 and $10" is money, not math; "$$…$$" blocks may contain blank lines.
    "allow_labels": False,
    "allow_space": False,
    "allow_digits": False,
    "allow_blank_lines": True,
    "double_inline": True,
}


def base_md(*, html: bool, math: bool) -> MarkdownIt:
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
    if inside_link or not HTTP_URL.match(src):
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
def render_md() -> MarkdownIt:
    """The markdown-it instance used for every HTML render (built once)."""
    md = base_md(html=False, math=True)
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


def render_tokens(tokens: Sequence[Token], env: dict[str, Any]) -> str:
    md = render_md()
    return md.renderer.render(tokens, md.options, env)


def render_markdown(text: str) -> str:
    """Whole-document safe HTML for untrusted markdown (see the module docstring for the rules)."""
    md = render_md()
    env: dict[str, Any] = {}
    return md.renderer.render(md.parse(text, env), md.options, env)

