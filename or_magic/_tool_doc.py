"""A tool's description and parameter descriptions from its docstring (Google, NumPy or Sphinx style).

No library reads all three styles into per-parameter text without pulling in a docs toolchain, so this
small parser stays.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any


def doc_parts(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """(first paragraph, {parameter: description}) from Google, NumPy or Sphinx docstrings."""
    doc = inspect.getdoc(fn) or ""
    if not doc:
        return "", {}
    lines = doc.splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip():
            if summary:
                break
            continue
        if _section(line) or line.strip().startswith(":param"):
            break
        summary.append(line.strip())
    return " ".join(summary), _param_docs(lines)


_SECTIONS = ("args", "arguments", "parameters", "params", "keyword args", "keyword arguments", "other parameters")
_OTHER_SECTIONS = (
    "returns", "return", "yields", "raises", "examples", "example", "notes", "note", "see also", "attributes",
    "references", "warnings", "warning", "todo",
)  # fmt: skip
_GOOGLE_ENTRY = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ENTRY = re.compile(r"^(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::.*)?$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _header(lines: list[str], i: int) -> str | None:
    """'google' / 'numpy' when line ``i`` opens a parameters section, 'other' for other sections."""
    text = lines[i].strip()
    underlined = i + 1 < len(lines) and len(lines[i + 1].strip()) >= 3 and set(lines[i + 1].strip()) == {"-"}
    name = text.rstrip(":").strip().lower()
    if underlined and name in _SECTIONS:
        return "numpy"
    if text.endswith(":") and name in _SECTIONS:
        return "google"
    if underlined or (text.endswith(":") and name in _OTHER_SECTIONS):
        return "other"
    return None


def _section(line: str) -> bool:
    """Whether a summary line already starts a docstring section (Google style)."""
    text = line.strip()
    return text.endswith(":") and text.rstrip(":").strip().lower() in (*_SECTIONS, *_OTHER_SECTIONS)


def _param_docs(lines: list[str]) -> dict[str, str]:
    """Each parameter's description, from Sphinx fields or Google / NumPy sections."""
    docs = _sphinx_params(lines)
    i = 0
    while i < len(lines):
        style = _header(lines, i) if lines[i].strip() else None
        if style not in ("google", "numpy"):
            i += 1
            continue
        # inspect.getdoc dedents every line but the first, so a section opening the docstring has its
        # entries at the same indent as its header
        base = _indent(lines[i]) if i else -1
        i += 2 if style == "numpy" else 1
        body: list[str] = []
        while i < len(lines):
            line = lines[i]
            if line.strip() and _indent(line) <= base and (style == "google" or _header(lines, i)):
                break
            body.append(line)
            i += 1
        _section_entries(body, style, docs)
    return docs


def _sphinx_params(lines: list[str]) -> dict[str, str]:
    """``:param name: text`` / ``:param int name: text``, continued on the following indented lines."""
    docs: dict[str, str] = {}
    for i, line in enumerate(lines):
        match = re.match(r"\s*:param\s+(?:[^:]*\s)?(\*{0,2}\w+)\s*:\s*(.*)", line)
        if match:
            text = [match.group(2).strip()]
            for more in lines[i + 1 :]:
                if not more.strip() or more.strip().startswith(":"):
                    break
                text.append(more.strip())
            docs[match.group(1).lstrip("*")] = " ".join(t for t in text if t)
    return docs


def _section_entries(body: list[str], style: str, docs: dict[str, str]) -> None:
    """Add a section's entries to ``docs``: a line at the entries' indent names parameters, deeper lines
    continue their description (NumPy puts the description only on those)."""
    entry_indent = min((_indent(b) for b in body if b.strip()), default=0)
    current: list[str] = []
    for line in body:
        if not line.strip():
            continue
        if _indent(line) == entry_indent:
            pattern = _GOOGLE_ENTRY if style == "google" else _NUMPY_ENTRY
            match = pattern.match(line.strip())
            current = [n.strip().lstrip("*") for n in match.group(1).split(",")] if match else []
            for name in current:
                docs[name] = match.group(2).strip() if (match and style == "google") else ""
        else:
            for name in current:
                docs[name] = (docs[name] + " " + line.strip()).strip()


# ------------------------------------------------------------------------------------------- schemas
