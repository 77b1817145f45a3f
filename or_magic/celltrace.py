"""A failed cell's error as a model should see it: type, message, and the traceback of the user's own code.

Frames inside the standard library, installed packages, IPython and ipykernel are dropped (counted, not
shown): they are noise for "why did my cell fail". Cells are named as IPython names them (``Cell In[7]``),
and the line of the failing cell where the error surfaced is kept for ``%chat fix``. Nothing here keeps a
reference to the exception or its frames, so a remembered error holds no memory beyond its text.
"""

from __future__ import annotations

import os
import site
import sysconfig
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["CellError", "cell_error"]

_MESSAGE_CHARS = 1000
_TRACEBACK_CHARS = 4000

CodeLabel = Callable[[str], "tuple[str, str] | None"]  # filename -> ("Cell", "In[7]"), as IPython's compiler


@dataclass(frozen=True)
class CellError:
    """Why a cell failed, as text: ``type_name: message``, the trimmed traceback, the failing line of the cell."""

    type_name: str
    message: str
    traceback: str
    line: int | None = None  # 1-based line of the cell where the error surfaced, if known

    def summary(self) -> str:
        return f"{self.type_name}: {self.message}" if self.message else self.type_name


def cell_error(exc: BaseException, number: int | None, label: CodeLabel | None = None) -> CellError:
    """Describe ``exc``, raised by cell ``number``, keeping only the user's frames of its traceback."""
    label = label or (lambda _filename: None)
    message = _clip(_message(exc), _MESSAGE_CHARS)
    if isinstance(exc, SyntaxError) and (exc.__traceback__ is None or _is_cell_syntax_error(exc, label)):
        text, line = _syntax_trace(exc, number)
    else:
        text, line = _frames_trace(exc, number, label)
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    if cause is not None:
        text += f"\n(raised while handling {type(cause).__name__}: {_clip(_message(cause), 200)})"
    text += f"\n{type(exc).__name__}: {message}" if message else f"\n{type(exc).__name__}"
    return CellError(type(exc).__name__, message, _clip_middle(text.strip("\n"), _TRACEBACK_CHARS), line)


def _frames_trace(exc: BaseException, number: int | None, label: CodeLabel) -> tuple[str, int | None]:
    frames = traceback.extract_tb(exc.__traceback__)
    kept = [f for f in frames if not _is_library(f.filename)]
    lines = ["Traceback (most recent call last, library frames left out):"]
    failing_line: int | None = None
    previous = None
    repeats = 0
    for frame in kept:
        named = label(frame.filename)
        where = f"{named[0]} {named[1]}" if named else f'File "{frame.filename}"'
        if named and number is not None and named[1] == f"In[{number}]":
            failing_line = frame.lineno
        key = (where, frame.lineno, frame.name)
        if key == previous:  # deep recursion: say how often instead of repeating
            repeats += 1
            continue
        if repeats:
            lines.append(f"  [the frame above repeated {repeats:,} more times]")
        previous, repeats = key, 0
        lines.append(f"  {where}, line {frame.lineno}, in {frame.name}")
        if frame.line:
            lines.append(f"    {frame.line.strip()}")
    if repeats:
        lines.append(f"  [the frame above repeated {repeats:,} more times]")
    if len(kept) < len(frames):
        lines.append(f"  ({len(frames) - len(kept)} frame(s) inside IPython or libraries not shown)")
    return "\n".join(lines), failing_line


def _is_cell_syntax_error(exc: SyntaxError, label: CodeLabel) -> bool:
    """A SyntaxError in the cell's own text (raised while compiling it), not one raised by code it ran."""
    return bool(exc.filename) and label(exc.filename or "") is not None


def _syntax_trace(exc: SyntaxError, number: int | None) -> tuple[str, int | None]:
    where = f"Cell In[{number}]" if number is not None else "The cell"
    lines = [f"  {where}, line {exc.lineno}"]
    if exc.text:
        lines.append(f"    {exc.text.rstrip()}")
        if exc.offset:
            indent = len(exc.text) - len(exc.text.lstrip())
            lines.append("    " + " " * max(exc.offset - 1 - indent, 0) + "^")
    return "\n".join(lines), exc.lineno


@lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    """Folders whose code is not the user's: the standard library, site-packages, IPython and ipykernel."""
    roots: set[str] = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(path)
    try:
        roots.update(site.getsitepackages())
        roots.add(site.getusersitepackages())
    except AttributeError:  # some embedded interpreters have no site helpers
        pass
    for module in ("IPython", "ipykernel", "traitlets", "zmq", "tornado", "asyncio"):
        spec = _find_spec(module)
        if spec:
            roots.add(spec)
    return tuple(os.path.normcase(os.path.realpath(r)) + os.sep for r in roots if r)


def _find_spec(module: str) -> str | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    origin = spec.origin if spec else None
    return os.path.dirname(origin) if origin else None


def _is_library(filename: str) -> bool:
    if not filename or filename.startswith("<frozen "):
        return bool(filename)
    path = os.path.normcase(os.path.realpath(filename)) if os.path.isabs(filename) else filename
    return path.startswith(_library_roots())


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return "<the exception's message could not be read>"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip_middle(text: str, limit: int) -> str:
    """Keep both ends (where the cell is, and the error itself), cut the middle."""
    if len(text) <= limit:
        return text
    keep = limit - 40
    cut = len(text) - keep
    return text[: keep // 2] + f"\n… [{cut:,} characters cut] …\n" + text[len(text) - (keep - keep // 2) :]
