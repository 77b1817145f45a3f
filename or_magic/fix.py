"""``%chat fix [N]``: the request that asks the model to explain a failed cell and correct it.

The message holds the cell's source, its error with the traceback of the user's frames, and short
descriptions of the variables the failing statement uses (found with ``ast``, described as ``--context``
describes them, with a small budget each). It ends with the instruction to answer with a brief explanation
and the whole corrected cell as one Python code block, which :mod:`or_magic.codecells` then proposes as a
new cell. With no failed cell there is nothing to send: :class:`NoFailedCell` says so in one line.
"""

from __future__ import annotations

import ast
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import defaults
from .cells import CellHistory
from .context import describe
from .errors import NoFailedCell, scrub

__all__ = ["FixRequest", "NoFailedCell", "fix_request", "failing_names"]

INSTRUCTION = (
    "Explain briefly why this notebook cell failed, then give the corrected cell as ONE ```python code "
    "block holding the whole cell, ready to run. Do not give other code blocks."
)


@dataclass(frozen=True)
class FixRequest:
    """The message to send for ``%chat fix``, which cell it is about, and the variables it describes."""

    number: int
    message: str
    variables: tuple[str, ...]

    @property
    def chars(self) -> int:
        return len(self.message)


def fix_request(
    cells: CellHistory,
    namespace: Mapping[str, Any],
    number: int | None = None,
    *,
    current: int | None = None,
) -> FixRequest:
    """Build the fix message for cell ``number`` (default: the most recent failed cell before ``current``).

    Raises :class:`NoFailedCell` when there is nothing to fix.
    """
    if current is None:
        current = cells.running or cells.last_number() + 1
    if number is None:
        number = cells.last_failed(before=current)
        if number is None:
            raise NoFailedCell("no failed cell to fix: every cell run since the extension was loaded succeeded")
    record = cells.record(number)
    if record is None or record.error is None or record.is_chat:
        raise NoFailedCell(f"cell In[{number}] did not fail (or ran before the extension was loaded): "
                           "nothing to fix")
    source = cells.source(number) or ""
    names = failing_names(source, record.error.line, namespace)
    parts = [f"Cell In[{number}] failed with {record.error.summary()}.", "", "The error:",
             _fenced(record.error.traceback, "")]
    line = _line(source, record.error.line)
    if line:
        parts += ["", f"It failed at line {record.error.line}: `{line.strip()}`"]
    if names:
        parts += ["", "Variables that line uses, as they are now:"]
        parts += [describe(namespace[n], n, max_chars=defaults.FIX_VARIABLE_CHARS) for n in names]
    # the cell comes last, right before the instruction: the code to correct is the message's last block
    parts += ["", "The cell to correct:", _fenced(_clip(source.rstrip("\n")), "python"), "", INSTRUCTION]
    return FixRequest(number, scrub("\n".join(parts)), tuple(names))


def failing_names(source: str, line: int | None, namespace: Mapping[str, Any]) -> list[str]:
    """Names the statement at ``line`` reads that hold data in ``namespace`` (modules and functions skipped)."""
    statement = _statement_at(source, line)
    if statement is None:
        return []
    found: list[str] = []
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and node.id not in found:
            found.append(node.id)
    names = [n for n in sorted(found, key=lambda n: _position(statement, n))
             if n in namespace and not n.startswith("_") and _is_data(namespace[n])]
    return names[: defaults.FIX_VARIABLES]


def _statement_at(source: str, line: int | None) -> ast.stmt | None:
    """The innermost statement of ``source`` that spans ``line`` (IPython syntax made Python first)."""
    if not line:
        return None
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        tree = ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError, ImportError):
        return None
    best: ast.stmt | None = None
    for node in ast.walk(tree):
        end = getattr(node, "end_lineno", None) or getattr(node, "lineno", 0)
        if isinstance(node, ast.stmt) and node.lineno <= line <= end and (
            best is None or (end - node.lineno) <= (best.end_lineno or best.lineno) - best.lineno
        ):
            best = node
    return best


def _position(statement: ast.stmt, name: str) -> tuple[int, int]:
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and node.id == name:
            return node.lineno, node.col_offset
    return 0, 0


def _is_data(value: Any) -> bool:
    return not isinstance(value, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type,
                                  types.MethodType))


def _line(source: str, line: int | None) -> str:
    lines = source.splitlines()
    return lines[line - 1] if line and 0 < line <= len(lines) else ""


def _clip(text: str, limit: int = defaults.CELL_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n# … [{len(text) - limit:,} more characters cut]"


def _fenced(text: str, info: str) -> str:
    fence = "````" if "```" in text else "```"
    return f"{fence}{info}\n{text}\n{fence}"
