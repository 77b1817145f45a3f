"""Code blocks as HTML: Pygments with CSS classes when the language is known, escaped text otherwise."""

from __future__ import annotations

import functools
import re
from typing import Any

from markdown_it.common.utils import escapeHtml

#: Largest code block handed to Pygments (its regex lexers can be slow on adversarial input).
MAX_HIGHLIGHT = 100_000


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
    """The same lexer, keeping leading/trailing newlines (a piece of a block may start with blank lines)."""
    if _lexer(name) is None:
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


def code_piece_html(code: str, lang: str = "", *, first: bool = True, last: bool = True) -> str:
    """Some lines of a code block still streaming, as a block of their own.

    ``first``/``last``: whether the piece starts/ends the block. Highlighted, the whole block drops blank
    lines at its two ends only, so a piece does the same at those ends and keeps them elsewhere. Each
    piece is lexed alone: a construct spanning two pieces (a long string) may be coloured differently
    from the whole block, which the final render lexes in one go.
    """
    lexer = _lexer_keep_newlines(lang.lower()) if lang else None
    if first and last:
        return code_html(code, lang)
    if lexer is None or len(code) > MAX_HIGHLIGHT:
        return "" if last and not code else f"<pre><code>{escapeHtml(code)}</code></pre>\n"
    code = code.lstrip("\n") if first else code
    if last:
        code = code.rstrip("\n")
        if not code:
            return ""  # only the blank lines the whole block drops at its end
        code += "\n"
    from pygments import highlight

    return f"{_HL_OPEN}{highlight(code, lexer, _formatter(True))}{_HL_CLOSE}"
