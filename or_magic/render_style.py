"""The shared look of every card and line: inline style snippets and how amounts read.

Kept apart so the footer, the error card, the notices and the answer parts agree on one muted colour, one small
size, one separator, and one way to write dollars, seconds, rates and counts.
"""

from __future__ import annotations

from decimal import Decimal

MUTED = "color:var(--jp-ui-font-color2)"
SMALL = "font-size:var(--jp-content-font-size0, 0.85em)"
SEP = " · "


def seconds(x: float) -> str:
    """``0.21 s``, ``12.3 s``, ``140 s``: precision that shrinks as the figure grows."""
    if x < 1:
        return f"{x:.2f} s"
    if x < 100:
        return f"{x:.1f} s"
    return f"{x:.0f} s"


def usd(x: float) -> str:
    """``$0.000012`` rather than ``$1.2e-05`` or ``$0.0000``: two significant digits below a cent, four above."""
    if x == 0:
        return "$0"
    if abs(x) >= 0.01:
        return f"${x:.4f}".rstrip("0").rstrip(".")
    return "$" + format(Decimal(f"{x:.2g}"), "f")


def rate(x: float) -> str:
    """Tokens per second, one decimal only when the figure is small."""
    return f"{x:.0f} tok/s" if x >= 10 else f"{x:.1f} tok/s"


def tokens(n: int | None) -> str:
    """A token count with thousands separators; ``?`` when the response did not say."""
    return "?" if n is None else f"{n:,}"


def words(text: str) -> str:
    """``1 word`` / ``1,234 words``: the size of a text a reader can picture."""
    n = len(text.split())
    return f"{n:,} word" + ("" if n == 1 else "s")
