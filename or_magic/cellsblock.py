"""``--cells SPEC``: which executed cells go into a request, and the text block that carries them.

``SPEC`` is comma-separated parts: ``all``, ``N`` and ``N-M`` (execution counts, as ``%history`` numbers
them), and ``-K`` (the last K cells run before the current one). Chat cells are always left out: their
turns are already in the thread. Each cell shows its source, what it printed, its result (``Out[N]``,
described as ``--context`` describes a variable) and its error; each cell and the whole block are bounded,
and what was cut is said. Key-shaped strings are scrubbed from the block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import defaults
from .cells import CellHistory
from .context import describe
from .errors import scrub
from .fence import fence_for

__all__ = ["CellsBlock", "SpecPart", "parse_spec", "select_cells", "cells_block", "render_cell"]

_PART = re.compile(r"^(?:(?P<all>all)|-(?P<last>\d+)|(?P<start>\d+)(?:\s*-\s*(?P<end>\d+))?)$")
_SPEC_HELP = "use all, N, N-M or -K, comma-separated (for example 3,5-7 or -2)"


@dataclass(frozen=True)
class SpecPart:
    """One part of a SPEC: ``kind`` is ``all``, ``range`` (first..last) or ``last`` (count)."""

    kind: str
    first: int = 0
    last: int = 0


@dataclass(frozen=True)
class CellsBlock:
    """The block to put before the message, its size, and the cells it holds."""

    text: str
    numbers: tuple[int, ...]
    left_out: tuple[int, ...] = ()  # cells selected but dropped to keep the block within its limit

    @property
    def chars(self) -> int:
        return len(self.text)


def parse_spec(spec: str) -> list[SpecPart]:
    """Parse ``all``, ``N``, ``N-M``, ``-K`` parts; a mistake raises ValueError with a one-line message."""
    text = (spec or "").strip()
    if not text:
        raise ValueError(f"--cells needs a SPEC: {_SPEC_HELP}")
    parts: list[SpecPart] = []
    for raw in text.split(","):
        item = raw.strip().lower()
        match = _PART.match(item)
        if not match:
            shown = raw.strip() or "an empty part"
            raise ValueError(f"--cells: cannot read {shown!r}: {_SPEC_HELP}")
        parts.append(_part(match, raw.strip()))
    return parts


def _part(match: re.Match[str], raw: str) -> SpecPart:
    if match.group("all"):
        return SpecPart("all")
    if match.group("last") is not None:
        count = int(match.group("last"))
        if count == 0:
            raise ValueError("--cells: -0 selects no cell; -K means the last K cells (K ≥ 1)")
        return SpecPart("last", last=count)
    first = int(match.group("start"))
    last = int(match.group("end")) if match.group("end") is not None else first
    if first == 0 or last == 0:
        raise ValueError("--cells: cells are numbered from 1, as %history numbers them")
    if last < first:
        raise ValueError(f"--cells: {raw!r} runs backwards; write {last}-{first}")
    return SpecPart("range", first, last)


def select_cells(spec: str | list[SpecPart], cells: CellHistory, *, current: int | None = None) -> list[int]:
    """Execution counts the SPEC selects, ascending, chat cells and the current cell left out.

    ``current`` is the cell asking (default: the running cell, else the next count). Naming a cell that
    has not run yet raises ValueError.
    """
    parts = parse_spec(spec) if isinstance(spec, str) else spec
    if current is None:
        current = cells.running or cells.last_number() + 1
    known = [n for n in cells.executed(before=current) if not cells.is_chat(n)]
    chosen: set[int] = set()
    for part in parts:
        if part.kind == "all":
            chosen.update(known)
        elif part.kind == "last":
            chosen.update(known[-part.last :])
        else:
            if part.last >= current:
                raise ValueError(f"--cells: cell {part.last} has not run before this one "
                                 f"(the last is {current - 1})" if current > 1 else "--cells: no cell has run yet")
            chosen.update(n for n in known if part.first <= n <= part.last)
    return sorted(chosen)


def cells_block(
    spec: str | list[SpecPart],
    cells: CellHistory,
    *,
    current: int | None = None,
    cell_chars: int = defaults.CELL_CHARS,
    max_chars: int = defaults.CELLS_CHARS,
) -> CellsBlock:
    """The selected cells as text for the request, oldest first, within ``cell_chars`` each and
    ``max_chars`` in all (the most recent cells are kept when they do not all fit)."""
    numbers = select_cells(spec, cells, current=current)
    if not numbers:
        text = "Notebook cells: none of the selected cells has run (chat cells are left out)."
        return CellsBlock(text, ())
    sections = [scrub(render_cell(n, cells, max_chars=cell_chars)) for n in numbers]
    header = "Notebook cells, in the order they ran (source, printed text, result, error):"
    kept: list[int] = []
    used = len(header)
    for i in range(len(sections) - 1, -1, -1):  # newest first, so the cells closest to the question stay
        if used + len(sections[i]) + 2 > max_chars and kept:
            break
        used += len(sections[i]) + 2
        kept.insert(0, i)
    left_out = tuple(numbers[: kept[0]])
    parts = [header]
    if left_out:
        parts.append(f"({len(left_out)} earlier selected cell(s) left out to keep this block under "
                     f"{max_chars:,} characters: {_numbers_text(left_out)})")
    parts += [sections[i] for i in kept]
    return CellsBlock(_fit("\n\n".join(parts), max_chars), tuple(numbers[i] for i in kept), left_out)


def render_cell(number: int, cells: CellHistory, *, max_chars: int = defaults.CELL_CHARS) -> str:
    """One cell: source, printed text, result, error, in at most ``max_chars`` characters."""
    record = cells.record(number)
    budget = max(max_chars, 400)
    source = cells.source(number) or ""
    parts = [f"### Cell In[{number}]", _fenced(source.rstrip("\n"), "python", budget // 2)]
    printed = record.printed.text() if record else ""
    if printed.strip():
        parts += ["Printed:", _fenced(printed, "", budget // 4, keep_end=True)]
    has_result, value = cells.result(number)
    if has_result:
        described = describe(value, f"Out[{number}]", max_chars=min(defaults.CONTEXT_CHARS, budget // 3))
        parts.append(described.replace(f"Notebook variable `Out[{number}]`", f"Result `Out[{number}]`", 1))
    if record and record.error:
        trace = _fenced(record.error.traceback, "", budget // 3, keep_end=True)
        parts += [f"Failed with {record.error.summary()}:", trace]
    return _fit("\n".join(parts), budget)


def _fenced(text: str, info: str, budget: int, *, keep_end: bool = False) -> str:
    """``text`` fenced, cut to ``budget`` (keeping both ends when the end matters, as for printed text)."""
    fence = fence_for(text)
    if len(text) > budget and keep_end:
        half = budget // 2
        text = text[:half] + f"\n… [{len(text) - 2 * half:,} characters cut] …\n" + text[-half:]
    elif len(text) > budget:
        text = text[:budget] + f"\n… [{len(text) - budget:,} more characters cut]"
    return f"{fence}{info}\n{text}\n{fence}"


def _fit(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    keep = max(limit - 50, 0)
    return text[:keep] + f"\n… [cut: {len(text) - keep:,} more characters]"


def _numbers_text(numbers: tuple[int, ...]) -> str:
    shown = ", ".join(f"In[{n}]" for n in numbers[:10])
    return shown + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")
