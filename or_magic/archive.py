"""The conversation export format and notebook-saved turns: validated before they replace anything.

``%chat load`` and ``%chat restore`` read files a user may have edited, truncated or mixed up; every
field is checked against the models below first, so a bad file is one readable line and can never leave
threads that break ``%chat history`` or ``%chat usage`` later. ``write_new`` writes an export without
ever destroying what is already there. Imports nothing above the standard library, pydantic and redact.
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .errors import ConversationFileError

__all__ = ["EXPORT_FORMAT", "ConversationFileError", "parse_export", "parse_notebook", "path_argument", "read_json",
           "write_new"]

EXPORT_FORMAT = "or_magic.conversation/1"


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SavedUsage(BaseModel):
    """Token counts and cost: typed, since ``%chat usage`` adds them up."""

    model_config = ConfigDict(extra="allow")
    prompt_tokens: int | None = Field(default=None, ge=0)
    completion_tokens: int | None = Field(default=None, ge=0)
    cost: float | None = Field(default=None, ge=0)


class SavedTurn(_Lenient):
    """A turn as exported (and as saved in a notebook output's metadata)."""

    user: str | list[dict[str, Any]]
    assistant: dict[str, Any]
    text: str = ""
    cell_id: str | None = None
    execution: int | str | None = None
    status: Literal["ok", "interrupted"] = "ok"
    stale: bool = False
    model: str | None = None
    provider: str | None = None
    usage: SavedUsage = Field(default_factory=SavedUsage)
    params: dict[str, Any] = Field(default_factory=dict)
    extra: list[dict[str, Any]] = Field(default_factory=list)
    cached: bool = False
    created: float = 0.0
    id: str | None = None


class SavedThread(_Lenient):
    name: str = Field(min_length=1)
    system: str | None = None
    turns: list[SavedTurn] = Field(default_factory=list)


class SavedExport(_Lenient):
    format: Literal["or_magic.conversation/1"]
    threads: list[SavedThread]


class SavedOutput(_Lenient):
    """What a ``%%chat`` output carries in its metadata: the thread, its system prompt, the committed turn."""

    thread: str | None = None
    system: str | None = None
    turn: SavedTurn


class _Output(_Lenient):
    metadata: dict[str, Any] | None = None


class _Cell(_Lenient):
    cell_type: str = "code"
    outputs: list[_Output] = Field(default_factory=list)


class _Notebook(_Lenient):
    cells: list[_Cell]


_EXPORT = TypeAdapter(SavedExport)
_NOTEBOOK = TypeAdapter(_Notebook)
_OUTPUT = TypeAdapter(SavedOutput)


def _problem(err: ValidationError) -> str:
    """The first validation error as one line: where it is and what is wrong."""
    first = err.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "the top level"
    more = f" (and {err.error_count() - 1} more problems)" if err.error_count() > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


def _turn_dict(turn: SavedTurn) -> dict[str, Any]:
    data = turn.model_dump()
    data["usage"] = turn.usage.model_dump(exclude_none=True)
    if data["id"] is None:
        del data["id"]
    return data


def parse_export(data: Any) -> list[dict[str, Any]]:
    """The threads of an export as plain dicts (``name``, ``system``, ``turns``), or ConversationFileError."""
    if isinstance(data, dict) and data.get("format") != EXPORT_FORMAT:
        raise ConversationFileError(f"not an or_magic conversation export (format {data.get('format')!r:.60})")
    if not isinstance(data, dict):
        raise ConversationFileError(f"not an or_magic conversation export (a JSON {type(data).__name__})")
    try:
        export = _EXPORT.validate_python(data)
    except ValidationError as err:
        raise ConversationFileError(f"not a valid export: {_problem(err)}") from None
    return [{"name": t.name, "system": t.system, "turns": [_turn_dict(x) for x in t.turns]} for t in export.threads]


def parse_notebook(notebook: Any, key: str = "or_magic") -> list[tuple[str | None, str | None, dict[str, Any]]]:
    """``(thread, system, turn)`` for every saved turn, in notebook order; ConversationFileError if malformed."""
    try:
        cells = _NOTEBOOK.validate_python(notebook).cells
    except ValidationError as err:
        raise ConversationFileError(f"not a notebook: {_problem(err)}") from None
    found = []
    for n, cell in enumerate(cells, 1):
        for output in cell.outputs if cell.cell_type == "code" else []:
            saved = (output.metadata or {}).get(key)
            if saved is None:
                continue
            try:
                entry = _OUTPUT.validate_python(saved)
            except ValidationError as err:
                raise ConversationFileError(f"cell {n}: the saved turn is damaged: {_problem(err)}") from None
            found.append((entry.thread, entry.system, _turn_dict(entry.turn)))
    return found


def path_argument(arg: str, flags: frozenset[str] = frozenset()) -> tuple[str, set[str]]:
    """A subcommand's one path and the flags around it: ``"with space.json" --force``, ``with space.json``.

    A quoted path loses its quotes; an unquoted one is taken whole, spaces included (as ``$name`` expands).
    """
    words = arg.split()
    found: set[str] = set()
    while words and (words[0] in flags or words[-1] in flags):
        found.add(words.pop(0) if words[0] in flags else words.pop())
    text = arg.strip()
    for flag in found:
        text = text.removeprefix(flag).removesuffix(flag).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        try:
            parts = shlex.split(text)
        except ValueError:
            parts = []
        text = parts[0] if len(parts) == 1 else text[1:-1]
    return text, found


def read_json(path: str | Path) -> Any:
    """The JSON in ``path``, or one readable line saying why not (missing, a folder, not JSON, too deep)."""
    target = Path(path).expanduser()
    try:
        text = target.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise ConversationFileError(f"{str(target)!r} is a folder, not a file") from None
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise ConversationFileError(f"cannot read {str(target)!r}: {reason}") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise ConversationFileError(f"{str(target)!r} is nested too deeply to be an export") from None
    except ValueError as err:
        raise ConversationFileError(f"{str(target)!r} is not JSON: {err}") from None


def write_new(path: str | Path, text: str, *, force: bool = False) -> Path:
    """Write ``text`` to ``path`` atomically, never over a notebook and over another file only with ``force``."""
    target = Path(path).expanduser()
    if target.suffix.lower() == ".ipynb":
        raise ConversationFileError(f"{str(target)!r} is a notebook: an export never writes one "
                                    "(to read turns saved in a notebook, use %chat restore)")
    if target.is_dir():
        raise ConversationFileError(f"{str(target)!r} is a folder: give a file name")
    if target.exists() and not force:
        raise ConversationFileError(f"{str(target)!r} already exists: add --force to replace it")
    if target.exists() and not os.access(target, os.W_OK):
        raise ConversationFileError(f"{str(target)!r} is read-only: not replaced")
    if not target.parent.is_dir():
        raise ConversationFileError(f"no folder {str(target.parent)!r}: create it first")
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".or_magic-", suffix=".part")
    except OSError as err:
        raise ConversationFileError(f"cannot write in {str(target.parent)!r}: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise ConversationFileError(f"cannot write {str(target)!r}: {err.strerror or err}") from None
    return target
