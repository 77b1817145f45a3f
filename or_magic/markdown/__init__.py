"""Safe markdown for untrusted model output: HTML, a safe markdown source, and an incremental stream.

One parser configuration (CommonMark + tables + strikethrough + dollar math), three entry points:

- :func:`render_markdown` (``render.py``): model text as HTML safe for a *trusted* notebook output.
- :func:`safe_markdown` (``sanitize.py``): the markdown *source* made safe for ``text/markdown``, which
  JupyterLab renders with raw HTML and remote images enabled.
- :class:`MarkdownStream` (``stream.py``): a streamed answer rendered incrementally, finished blocks once.

Below them: ``safe.py`` (link, TeX and escaping rules) and ``highlight.py`` (code blocks). The package
knows nothing about IPython or the network.
"""

from __future__ import annotations

from .highlight import MAX_HIGHLIGHT, code_html
from .render import render_markdown
from .safe import IMAGE_MARK, LINK_REL, defang_tex, escape_text, is_safe_url, plain_text
from .sanitize import safe_markdown
from .stream import MarkdownStream

__all__ = [
    "IMAGE_MARK",
    "LINK_REL",
    "MAX_HIGHLIGHT",
    "MarkdownStream",
    "code_html",
    "defang_tex",
    "escape_text",
    "is_safe_url",
    "plain_text",
    "render_markdown",
    "safe_markdown",
]
