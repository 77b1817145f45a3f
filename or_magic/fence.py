"""The code fence that can hold any text: longer than every backtick run inside it, so the text cannot close it."""

from __future__ import annotations

import re

_BACKTICKS = re.compile(r"`+")


def fence_for(text: str) -> str:
    """At least three backticks, one more than the longest run in ``text``."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    return "`" * max(3, longest + 1)
