"""Notebook context for a prompt: ``--context VAR`` descriptions and ``$name`` interpolation.

``describe`` turns any object into a short, bounded text a model can read: a DataFrame as its shape, columns,
dtypes and first rows; an array as shape, dtype, a sample and simple statistics; containers and strings as a
bounded view. Big objects are never rendered in full (only their head or an elided ``reprlib`` view), and
nothing here imports numpy or pandas: objects are recognised by their type's module and attributes, so the
extension stays light to load. ``describe`` never raises; a failing ``__repr__`` is reported in the text.

``interpolate`` implements ``$name`` in a cell body. The rule, in full:

* ``$name`` (``name`` a Python identifier) is replaced by ``str(value)`` when ``name`` is a variable in the
  namespace. Anything else is left byte-identical: ``$5``, ``$undefined``, ``{braces}``, a lone ``$``.
* Math is left alone, as the renderer (markdown-it's dollar-math rule) would read it:

  - ``$$…$$`` display math, even across lines, and a ``$name`` right after another ``$``;
  - ``$name$``, the name immediately followed by ``$``;
  - inline math ``$name…$``: a later ``$`` on the same line that has a non-space character right before it
    and no digit right after it closes a math span (so ``$x^2$`` stays math even when ``x`` is defined,
    while ``$a and $b`` or ``costs $5`` are not math).

* Code is left alone: fenced code blocks (```` ``` ```` or ``~~~``) and inline code spans (`` `…` ``), so a
  pasted shell or PHP snippet keeps its ``$i`` even when the notebook has an ``i``.
* ``\\$name`` is an escape: where ``$name`` would have been replaced, ``\\$name`` becomes the literal text
  ``$name`` (the backslash is dropped). Where it would not have been replaced, the backslash stays too, so
  LaTeX's ``\\$`` survives.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import re
import reprlib
from collections.abc import Mapping
from typing import Any

from .errors import UnknownVariable
from .fence import fence_for

__all__ = ["UnknownVariable", "describe", "context_block", "interpolate"]

_TRUNCATED = "… [truncated]"
_CELL_CHARS = 40  # characters per table cell
_HEAD_ROWS = 5
_TABLE_COLUMNS = 20  # columns shown in a head table
_LISTED_COLUMNS = 60  # columns listed with their dtype
_STATS_LIMIT = 20_000_000  # elements: above this, skip statistics (they would not be cheap)


# ------------------------------------------------------------------------------------------- describe


def describe(obj: Any, name: str, *, max_chars: int = 4000) -> str:
    """A compact, bounded description of ``obj`` for the model, headed by the variable's name and kind."""
    max_chars = max(int(max_chars), 1)
    try:
        text = _describe(obj, name, max_chars)
    except Exception as exc:  # a broken object must not break the prompt
        header = f"Notebook variable `{name}` ({_type_name(obj)}):"
        text = f"{header}\n(could not be described: {_exc_text(exc)})"
    return _clip(text, max_chars)


def _describe(obj: Any, name: str, max_chars: int) -> str:
    kind = _kind(obj)
    if kind == "dataframe":
        summary, body = _frame(obj, max_chars)
    elif kind == "series":
        summary, body = _series(obj, max_chars)
    elif kind == "ndarray":
        summary, body = _array(obj, max_chars)
    elif isinstance(obj, str):
        summary, body = f"str, {len(obj):,} characters", _fenced(obj, max_chars)
    elif isinstance(obj, (bytes, bytearray)):
        summary, body = f"{type(obj).__name__}, {len(obj):,} bytes", _fenced(_repr(obj, max_chars), max_chars)
    elif isinstance(obj, (dict, list, tuple, set, frozenset)):
        summary = f"{_type_name(obj)}, {len(obj):,} item{'' if len(obj) == 1 else 's'}"
        body = _fenced(_repr(obj, max_chars), max_chars)
    else:
        summary, body = _type_name(obj), _fenced(_repr(obj, max_chars), max_chars)
    header = f"Notebook variable `{name}` ({summary}):"
    return f"{header}\n{body}"


def _kind(obj: Any) -> str:
    """'dataframe', 'series', 'ndarray' or '' by duck typing (never importing pandas or numpy)."""
    cls = type(obj)
    module = getattr(cls, "__module__", "") or ""
    names = {getattr(c, "__name__", "") for c in getattr(cls, "__mro__", (cls,))}
    if module.startswith("pandas") or any(
        (getattr(c, "__module__", "") or "").startswith("pandas") for c in getattr(cls, "__mro__", ())
    ):
        if "DataFrame" in names and hasattr(obj, "columns") and hasattr(obj, "dtypes"):
            return "dataframe"
        if "Series" in names and hasattr(obj, "dtype"):
            return "series"
    if "ndarray" in names and hasattr(obj, "shape") and hasattr(obj, "dtype"):
        return "ndarray"
    return ""


def _type_name(obj: Any) -> str:
    """``pandas.DataFrame``, ``numpy.ndarray``, ``dict``, ``mymodule.Thing``: short but unambiguous."""
    cls = type(obj)
    module = getattr(cls, "__module__", "") or ""
    qualname = getattr(cls, "__qualname__", None) or getattr(cls, "__name__", "object")
    if module in ("builtins", "__main__", ""):
        return qualname
    if module.split(".")[0] in ("pandas", "numpy"):
        return f"{module.split('.')[0]}.{qualname}"
    return f"{module}.{qualname}"


def _exc_text(exc: BaseException) -> str:
    try:
        message = str(exc)
    except Exception:
        message = "<unprintable>"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


class _Repr(reprlib.Repr):
    """reprlib with generous limits, reporting (rather than hiding) a failing ``__repr__``."""

    _WIDTHS = {3: 25, 2: 10}  # items shown per container by nesting level (top = 3); deeper: 5

    def __init__(self, budget: int) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxstring = min(max(budget // 4, 40), 2000)
        self.maxlong = 200
        self.maxother = max(budget, 40)

    def repr1(self, x: Any, level: int) -> str:
        """Fewer items the deeper we go, so nested containers cost O(25·10·5) at most, not 25³."""
        width = self._WIDTHS.get(level, 5)
        self.maxdict = self.maxlist = self.maxtuple = self.maxset = self.maxfrozenset = width
        self.maxdeque = self.maxarray = width
        return super().repr1(x, level)

    def repr_instance(self, x: Any, level: int) -> str:
        try:
            text = repr(x)
        except Exception as exc:
            return f"<{_type_name(x)} object: repr() failed with {_exc_text(exc)}>"
        if len(text) > self.maxother:
            keep = max(self.maxother - 5, 0)
            return text[: keep // 2] + " ... " + text[len(text) - (keep - keep // 2) :]
        return text


def _repr(obj: Any, budget: int) -> str:
    try:
        return _Repr(budget).repr(obj)
    except Exception as exc:  # e.g. a dict subclass whose items() raises
        return f"<{_type_name(obj)} object: repr() failed with {_exc_text(exc)}>"


def _fenced(text: str, budget: int) -> str:
    """``text`` in a code fence longer than any backtick run inside it, cut to fit ``budget``."""
    fence = fence_for(text)
    room = max(budget - 2 * len(fence) - 120, 20)  # leave space for the header and the fences
    if len(text) > room:
        text = text[:room] + f"… [{len(text) - room:,} more characters]"
    return f"{fence}\n{text}\n{fence}"


def _clip(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    if max_chars <= len(_TRUNCATED):
        return text[:max_chars]
    return text[: max_chars - len(_TRUNCATED)] + _TRUNCATED


def _cell(value: Any) -> str:
    """One table cell: short, single-line, pipes escaped."""
    if isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = value if isinstance(value, str) else _repr(value, _CELL_CHARS)
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= _CELL_CHARS else text[: _CELL_CHARS - 1] + "…"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _fit_lines(lines: list[str], budget: int) -> str:
    """Join lines, dropping whole lines (with a note) once ``budget`` is reached."""
    out: list[str] = []
    used = 0
    for i, line in enumerate(lines):
        if used + len(line) + 1 > budget:
            out.append(f"… ({len(lines) - i} more lines)")
            break
        out.append(line)
        used += len(line) + 1
    return "\n".join(out)


def _frame(df: Any, max_chars: int) -> tuple[str, str]:
    rows, cols = df.shape
    summary = f"{_type_name(df)}, {rows:,} row{'' if rows == 1 else 's'} × {cols:,} column{'' if cols == 1 else 's'}"
    budget = max_chars - 200
    listed = min(cols, _LISTED_COLUMNS)
    missing = _missing_counts(df, listed)
    lines = ["Columns (dtype" + (", missing values" if missing is not None else "") + "):"]
    for i, (column, dtype) in enumerate(zip(df.columns, df.dtypes, strict=False)):
        if i == listed:
            lines.append(f"- … and {cols - i:,} more columns")
            break
        extra = f", {missing[i]:,} missing" if missing is not None and missing[i] else ""
        lines.append(f"- `{_cell(column)}`: {dtype}{extra}")
    if missing is not None and rows and not any(missing):
        lines.append(f"No missing values{' in these columns' if listed < cols else ''}.")
    columns_text = _fit_lines(lines, budget // 2)
    head = df.iloc[:_HEAD_ROWS, :_TABLE_COLUMNS]
    header = [_cell(df.index.name or "")] + [_cell(c) for c in head.columns]
    table_rows = [
        [_cell(index)] + [_cell(v) for v in values]
        for index, values in zip(head.index, head.itertuples(index=False, name=None), strict=False)
    ]
    more = f" (first {_TABLE_COLUMNS} of {cols:,} columns)" if cols > _TABLE_COLUMNS else ""
    title = f"First {min(rows, _HEAD_ROWS)} rows{more}:" if rows else "No rows."
    table = _fit_lines(_table(header, table_rows).splitlines(), budget - len(columns_text)) if rows else ""
    return summary, "\n".join(part for part in (columns_text, title, table) if part)


def _missing_counts(df: Any, listed: int) -> list[int] | None:
    """Missing values per listed column, counted one column at a time so a big frame is never copied whole."""
    try:
        return [int(df.iloc[:, i].isna().sum()) for i in range(listed)]
    except Exception:
        return None


def _series(series: Any, max_chars: int) -> tuple[str, str]:
    size = len(series)
    label = f"name `{_cell(series.name)}`, " if series.name is not None else ""
    summary = f"{_type_name(series)}, {label}{size:,} value{'' if size == 1 else 's'}, dtype {series.dtype}"
    with contextlib.suppress(Exception):
        summary += f", {int(series.isna().sum()):,} missing"
    head = series.iloc[: _HEAD_ROWS * 2]
    rows = [[_cell(index), _cell(value)] for index, value in zip(head.index, head.tolist(), strict=False)]
    title = f"First {len(rows)} values:" if rows else "No values."
    lines = [title, *(_table([_cell(series.index.name or ""), "value"], rows).splitlines() if rows else [])]
    stats = _stats(series.to_numpy() if hasattr(series, "to_numpy") else None)
    if stats:
        lines.append(stats)
    return summary, _fit_lines(lines, max_chars - 200)


def _array(arr: Any, max_chars: int) -> tuple[str, str]:
    shape = tuple(int(n) for n in arr.shape)
    summary = f"{_type_name(arr)}, shape {shape}, dtype {arr.dtype}"
    if arr.ndim == 0:
        sample = arr
    elif arr.ndim == 1:
        sample = arr[:10]
    else:  # the first rows and columns of the first 2-D slice(s): bounded whatever the shape
        sample = arr[(slice(0, 2),) * (arr.ndim - 2) + (slice(0, 5), slice(0, 8))]
    elided = sample.size < arr.size
    text = _repr(sample.tolist(), max_chars // 2)
    lines = [f"{'Sample (first items)' if elided else 'Values'}: {text}"]
    stats = _stats(arr)
    if stats:
        lines.append(stats)
    return summary, _fit_lines(lines, max_chars - 200)


def _stats(arr: Any) -> str:
    """min/max/mean of a real numeric array, when cheap; '' otherwise (never raises)."""
    try:
        if arr is None or getattr(arr, "dtype", None) is None or arr.dtype.kind not in "iuf":
            return ""
        if arr.size == 0 or arr.size > _STATS_LIMIT:
            return ""
        import warnings

        import numpy  # present: we hold one of its arrays

        with numpy.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lo, hi, mean = (float(f(arr)) for f in (numpy.nanmin, numpy.nanmax, numpy.nanmean))
        if any(math.isnan(v) for v in (lo, hi, mean)):
            return ""
        return f"min {lo:.6g}, max {hi:.6g}, mean {mean:.6g}"
    except Exception:
        return ""


# ------------------------------------------------------------------------------------------- context block


def context_block(names: list[str], namespace: Mapping[str, Any], *, max_chars: int = 4000) -> str:
    """The text to put before the user's message: one ``describe`` section per variable (each ≤ max_chars)."""
    sections = []
    for name in dict.fromkeys(names):  # keep order, drop repeats
        if name not in namespace:
            visible = [key for key in namespace if isinstance(key, str) and not key.startswith("_")]
            raise UnknownVariable(name, difflib.get_close_matches(name, visible, n=2))
        sections.append(describe(namespace[name], name, max_chars=max_chars))
    return "\n\n".join(sections)


# ------------------------------------------------------------------------------------------- interpolate

_CANDIDATE = re.compile(r"(\\?)\$([^\W\d]\w*)")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_BACKTICKS = re.compile(r"`+")


def _protected(text: str) -> list[tuple[int, int]]:
    """Spans that interpolation must not touch: fenced code, inline code, ``$$…$$`` display math."""
    spans: list[tuple[int, int]] = []
    pos = 0
    fence: str | None = None
    fence_start = 0
    for line in text.splitlines(keepends=True):
        match = _FENCE.match(line)
        if fence is None and match:
            fence, fence_start = match.group(1), pos
        elif fence is not None and match and _closes(fence, match.group(1), line[match.end() :]):
            spans.append((fence_start, pos + len(line)))
            fence = None
        pos += len(line)
    if fence is not None:
        spans.append((fence_start, len(text)))

    def inside(i: int) -> bool:
        return any(a <= i < b for a, b in spans)

    # inline code: a backtick run closed by the next run of the same length (CommonMark)
    runs = [m for m in _BACKTICKS.finditer(text) if not inside(m.start())]
    i = 0
    while i < len(runs):
        opener = runs[i]
        closer = next((j for j in range(i + 1, len(runs)) if len(runs[j].group()) == len(opener.group())), None)
        if closer is None:
            i += 1
            continue
        spans.append((opener.start(), runs[closer].end()))
        i = closer + 1
    # display math: $$ … $$ pairs outside code
    marks = [m.start() for m in re.finditer(r"\$\$", text) if not inside(m.start())]
    for a, b in zip(marks[::2], marks[1::2], strict=False):
        spans.append((a, b + 2))
    return spans


def _closes(fence: str, mark: str, rest: str) -> bool:
    """A closing code fence: same character, at least as long, nothing after it."""
    return mark[0] == fence[0] and len(mark) >= len(fence) and not rest.strip()


def _opens_math(text: str, start: int) -> bool:
    """Whether the ``$`` at ``start`` opens inline math: a closing ``$`` later on the same line."""
    end = text.find("\n", start)
    line_end = len(text) if end == -1 else end
    j = text.find("$", start + 1, line_end)
    while j != -1:
        before = text[j - 1]
        after = text[j + 1] if j + 1 < len(text) else ""
        if not before.isspace() and before != "\\" and not after.isdigit():
            return True
        j = text.find("$", j + 1, line_end)
    return False


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """Replace ``$name`` with ``str(value)`` for defined variables, by the rule in this module's docstring."""
    if "$" not in text:
        return text
    spans: list[tuple[int, int]] | None = None
    out: list[str] = []
    last = 0
    for match in _CANDIDATE.finditer(text):
        escaped, name = match.group(1), match.group(2)
        dollar = match.start(2) - 1
        if name not in namespace:
            continue
        if dollar > 0 and text[dollar - 1] == "$":  # $$name: display math
            continue
        if text[match.end() : match.end() + 1] == "$":  # $name$: math
            continue
        if spans is None:
            spans = _protected(text)
        if any(a <= dollar < b for a, b in spans):
            continue
        if _opens_math(text, dollar):
            continue
        out.append(text[last : match.start()])
        out.append(f"${name}" if escaped else _str(namespace[name]))
        last = match.end()
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def _str(value: Any) -> str:
    try:
        return str(value)
    except Exception as exc:
        return f"<str() failed: {_exc_text(exc)}>"
