"""What makes untrusted text safe to show: allowed link targets, defanged MathJax commands, escaping.

Shared by the HTML renderer and the markdown-source sanitiser; knows nothing of markdown itself.
"""

from __future__ import annotations

import re

from markdown_it.common.utils import escapeHtml

LINK_REL = "noopener noreferrer nofollow"
IMAGE_MARK = "\U0001f5bc"  # 🖼

_SAFE_URL = re.compile(r"(?i)(?:https?://[^\s]|mailto:[^\s])")
HTTP_URL = re.compile(r"(?i)https?://[^\s]")
SCHEME = re.compile(r"(?i)[a-z][a-z0-9+.\-]*:")

# TeX commands that let MathJax (which JupyterLab runs over text/html and text/markdown outputs) emit
# links, CSS, classes/ids/data attributes, load extensions, or define macros for the whole page.
TEX_DANGER = re.compile(
    r"\\(?=(?:href|url|style|class|cssId|data|bbox|require|mmlToken|enclose|texttip|toggle|mathtip|"
    r"def|gdef|edef|xdef|let|futurelet|newcommand|renewcommand|providecommand|newenvironment|"
    r"renewenvironment|DeclareMathOperator|Newextarrow|csname)(?![A-Za-z]))"
)
WORD_JOINER = "\u2060"


def is_safe_url(url: str) -> bool:
    """Whether a (normalised) link destination may become an ``href``: absolute http(s) or mailto only."""
    return bool(_SAFE_URL.match(url))


def defang_tex(text: str) -> str:
    r"""Break ``\href``-like TeX commands with an invisible word joiner so MathJax cannot act on them."""
    if "\\" not in text:
        return text
    return TEX_DANGER.sub("\\\\" + WORD_JOINER, text)


def escape_text(text: str) -> str:
    """Escape untrusted text for HTML element content (also defanging MathJax commands)."""
    return escapeHtml(defang_tex(text))


def plain_text(text: str) -> str:
    """The ``text/plain`` form of an answer: the answer itself (plain text cannot run or load anything)."""
    return text
