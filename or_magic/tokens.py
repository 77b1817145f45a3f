"""Split a magic line into words, keeping pasted JSON intact.

Quotes work as in a POSIX shell (``-s "text with spaces"``, ``'a b'``, ``\\ `` escapes), so quoted forms
keep working; but an unquoted ``{`` or ``[`` opens a bracketed region that is copied verbatim until its
brackets balance, JSON strings (and the spaces inside them) included. So
``--param provider={"order":["a","b"]}`` arrives as typed, where a shell would strip the quotes.
"""

from __future__ import annotations

_OPEN, _CLOSE = "{[", "}]"


def split_line(line: str) -> list[str]:
    """The words of ``line``; raises ``ValueError`` on an unclosed quote (an unclosed bracket runs to the end)."""
    words: list[str] = []
    word: list[str] = []
    in_word = False
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c.isspace():
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
            i += 1
            continue
        in_word = True
        if c == "'":
            end = line.find("'", i + 1)
            if end < 0:
                raise ValueError("No closing quotation")
            word.append(line[i + 1:end])
            i = end + 1
        elif c == '"':
            i = _double_quoted(line, i + 1, word)
        elif c == "\\":
            word.append(line[i + 1:i + 2])
            i += 2
        elif c in _OPEN:
            i = _bracketed(line, i, word)
        else:
            word.append(c)
            i += 1
    if in_word:
        words.append("".join(word))
    return words


def _double_quoted(line: str, i: int, word: list[str]) -> int:
    """Copy a shell double-quoted string's content (backslash escapes ``"``, ``\\``, ``$``); return the next index."""
    while i < len(line):
        c = line[i]
        if c == '"':
            return i + 1
        if c == "\\" and line[i + 1:i + 2] in ('"', "\\", "$"):
            word.append(line[i + 1])
            i += 2
            continue
        word.append(c)
        i += 1
    raise ValueError("No closing quotation")


def _bracketed(line: str, i: int, word: list[str]) -> int:
    """Copy a JSON-like bracketed region verbatim until its brackets balance; return the next index."""
    depth, start, in_string = 0, i, False
    while i < len(line):
        c = line[i]
        if in_string:
            if c == "\\":
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
            if depth == 0:
                word.append(line[start:i + 1])
                return i + 1
        i += 1
    word.append(line[start:])
    return len(line)
