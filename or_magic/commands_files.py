"""``%chat`` subcommands that read or write files: export, load, restore (the threads) and cache (answers).

load and restore check the whole file before they replace anything, and refuse while a thread is answering;
export never writes a key.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from IPython.core.error import UsageError

from .notebook import notebook_path
from .subcommand_line import refuse_while_busy

if TYPE_CHECKING:  # pragma: no cover
    from .magics import ChatMagics


def cmd_export(magics: ChatMagics, arg: str) -> None:
    """%chat export FILE [--force]: JSON that %chat load reads back; a .md file gets readable markdown."""
    from .archive import path_argument
    from .conversation import ConversationFileError

    name, flags = path_argument(arg, frozenset({"--force"}))
    if not name:
        raise UsageError("%chat export FILE [--force] (.json, or .md for markdown)")
    store = magics.session.store
    try:
        path = store.export(name, force="--force" in flags, secrets=[magics.session.api_key or ""])
    except ConversationFileError as err:
        raise UsageError(f"%chat export: {err}") from None
    print(f"exported {sum(len(t.turns) for t in store.threads.values())} turns to {path}")


def cmd_load(magics: ChatMagics, arg: str) -> None:
    """%chat load FILE: replace the threads with an export (checked whole first; nothing changes if it is bad)."""
    from .archive import path_argument
    from .conversation import ConversationFileError

    name, _ = path_argument(arg)
    if not name:
        raise UsageError("%chat load FILE")
    refuse_while_busy(magics.session.store, "load")
    try:
        magics.session.store.load(name, secrets=[magics.session.api_key or ""])
    except ConversationFileError as err:
        raise UsageError(f"cannot load {name!r}: {err}") from None
    print(f"loaded threads: {', '.join(magics.session.store.names())}")


def cmd_cache(magics: ChatMagics, arg: str) -> None:
    """%chat cache on|off|clear|status: record answers and replay identical requests from disk."""
    from .cache import ResponseCache

    action = arg.strip() or "status"
    cache = ResponseCache(magics.cache_dir or None)
    if action == "on":
        magics.cache = True
        print(f"cache on: identical requests are answered from {cache.directory} (marked 'cached', no cost)")
    elif action == "off":
        magics.cache = False
        print("cache off: every request goes to the API")
    elif action == "clear":  # only files that are provably cache entries are counted or deleted
        print(f"removed {cache.clear()} cached answers from {cache.directory}")
    elif action == "status":
        print(f"cache {'on' if magics.cache else 'off'}: {len(cache)} answers in {cache.directory}")
    else:
        raise UsageError("%chat cache on|off|clear|status")


def cmd_restore(magics: ChatMagics, arg: str) -> None:
    """%chat restore [NOTEBOOK]: rebuild the threads from the turns saved in the notebook's outputs."""
    from .archive import path_argument, read_json
    from .conversation import ConversationFileError

    path = path_argument(arg)[0] or notebook_path(magics.shell)
    if not path:
        raise UsageError("%chat restore NOTEBOOK.ipynb (the notebook's path is not known to this kernel)")
    refuse_while_busy(magics.session.store, "restore")
    try:
        count = magics.session.store.restore_notebook(read_json(Path(path)), secrets=[magics.session.api_key or ""])
    except ConversationFileError as err:
        raise UsageError(f"cannot restore from {path!r}: {err}") from None
    print(f"restored {count} turns from {path}" if count else f"no saved turns in {path} (run and save it first)")
