"""Where requests go: ``%chat key`` and ``%chat sandbox [off]``.

Moving between the offline sandbox and the real API is always said out loud, with the server it now
talks to, so nobody pays for a request they believed was offline (or the other way round).
"""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING

from IPython.core.error import StdinNotImplementedError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from .magics import ChatMagics

SANDBOX_MODEL = "sandbox/echo"


def cmd_key(magics: ChatMagics, arg: str) -> None:
    """%chat key: ask for the API key with a hidden prompt; it stays in this kernel's memory only.

    After ``%chat sandbox`` it also leaves the sandbox: a key is for the real API.
    """
    if arg.strip():
        raise UsageError("type the key at the hidden prompt, not on the line (it would be saved in the notebook)")
    try:
        key = getpass.getpass("OpenRouter API key (hidden): ").strip()
    except (EOFError, OSError, StdinNotImplementedError):
        raise UsageError("%chat key needs an interactive prompt and there is none here (a headless run); "
                         "set OPENROUTER_API_KEY in the environment instead") from None
    if not key:
        print("no key entered; nothing changed")
        return
    session = magics.session
    left = leave_sandbox(magics) if session.sandbox is not None else ""
    session.api_key = key
    print("key set for this kernel (memory only; not saved in the notebook)" + (f". {left}" if left else ""))


def cmd_sandbox(magics: ChatMagics, arg: str) -> None:
    """%chat sandbox [off]: send every later request to the offline sandbox, or go back to the real server."""
    action = arg.strip()
    if action == "off":
        left = leave_sandbox(magics)
        print(f"or_magic: {left}" if left else "or_magic: the sandbox is not in use; nothing changed")
        return
    if action not in ("", "on"):
        raise UsageError(f"%chat sandbox [on|off] (got {action!r})")
    session = magics.session
    url = session.start_sandbox()
    note = ""
    if not magics.model.startswith("sandbox/"):
        session.model_before_sandbox = magics.model
        magics.model = SANDBOX_MODEL
        note = f" Default model is now {SANDBOX_MODEL}; %chat models lists the others."
    print(f"or_magic: using the offline SANDBOX at {url}: scripted answers, no network, no key, no cost.{note}")


def leave_sandbox(magics: ChatMagics) -> str:
    """Stop the sandbox, restore the default model it replaced; say where requests go now ("" if not in it)."""
    session = magics.session
    if session.sandbox is None:
        return ""
    session.stop_sandbox()
    restored = ""
    if session.model_before_sandbox and magics.model.startswith("sandbox/"):
        magics.model, restored = session.model_before_sandbox, f", default model {session.model_before_sandbox}"
    session.model_before_sandbox = None
    server = session.client().server_url
    keyless = "" if session.has_key() else " No API key is set: %chat key to enter one."
    return f"left the offline sandbox: requests now go to {server} (real, paid requests{restored}).{keyless}"
