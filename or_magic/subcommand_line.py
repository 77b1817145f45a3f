"""Telling a ``%chat`` subcommand from a one-line prompt, and catching mistakes in subcommand lines.

A mistyped subcommand must not become a paid prompt: ``%chat histroy`` is sent nowhere. The rule: a line
of at most two words, without ``?`` or options, whose first word is a typo of a subcommand (difflib
ratio ≥ :data:`NEAR`), is refused with a suggestion; anything longer is a prompt (``%chat explain this``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from IPython.core.error import UsageError

NEAR = 0.8  # difflib ratio from which a word is taken as a typo of a subcommand
HELP_WORDS = frozenset({"-h", "--help", "help"})
# how many words each subcommand takes at most (the others parse their own argument: paths, options)
MAX_WORDS = {"threads": 0, "usage": 0, "error": 0, "config": 0, "panel": 0, "key": 0,
             "history": 1, "reset": 1, "undo": 1, "models": 1, "cache": 1, "sandbox": 1}


def check_words(name: str, words: list[str]) -> None:
    """Refuse words a subcommand does not take (they were silently ignored before)."""
    most = MAX_WORDS.get(name)
    if most is None or len(words) <= most:
        return
    extra = " ".join(words[most:])
    takes = "takes no argument" if most == 0 else "takes one argument"
    raise UsageError(f"%chat {name} {takes}; unexpected: {extra!r}")


def refuse_near_miss(line: str, names: Iterable[str]) -> None:
    """A short line whose first word is a typo of a subcommand: one line with a suggestion, nothing sent."""
    words = line.split()
    if not words or len(words) > 2 or "?" in line or any(w.startswith("-") for w in words):
        return
    close = difflib.get_close_matches(words[0].lower(), list(names), n=1, cutoff=NEAR)
    if close:
        raise UsageError(f"unknown subcommand {words[0]!r}, did you mean {close[0]}? (nothing was sent; "
                         "to ask the model, write a longer prompt or use %%chat)")


def refuse_while_busy(store: Any, what: str) -> None:
    """Replacing the threads while one answers (the panel) would drop that answer: refuse instead."""
    busy = [n for n in store.names() if store.is_busy(n)]
    if busy:
        raise UsageError(f"%chat {what}: thread {busy[0]!r} is answering (in the panel?); wait for it or stop "
                         "it, then try again (nothing was changed)")
