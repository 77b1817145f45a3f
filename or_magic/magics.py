"""``%%chat`` and ``%chat``: thin adapters that parse their line, then call the session.

Importing this module is cheap (IPython only): the client, renderer and pydantic load on the first
request, so ``%load_ext or_magic`` stays fast.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Bool, Float, Int, Unicode

from . import options

if TYPE_CHECKING:  # pragma: no cover
    from IPython.core.interactiveshell import InteractiveShell

    from .session import Session

NO_KEY_NOTICE = ("or_magic: no OPENROUTER_API_KEY set. Run %chat key to enter one (kept in memory only), "
                 "or %chat sandbox to try the offline sandbox.")


@magics_class
class ChatMagics(Magics):
    """Chat with OpenRouter models. Defaults below are configurable: ``%config ChatMagics.model = "…"``."""

    model = Unicode("openrouter/auto", help="Default model id").tag(config=True)
    temperature = Float(None, allow_none=True, help="Default sampling temperature (0..2)").tag(config=True)
    max_tokens = Int(None, allow_none=True, help="Default maximum answer tokens").tag(config=True)
    top_p = Float(None, allow_none=True, help="Default nucleus sampling (0..1)").tag(config=True)
    system = Unicode(None, allow_none=True, help="Default system prompt for new threads").tag(config=True)
    stream = Bool(True, help="Stream answers as they are generated").tag(config=True)
    show_reasoning = Bool(True, help="Show the model's reasoning in a collapsed section").tag(config=True)
    update_rate = Float(10.0, help="Display updates per second while streaming (at most)").tag(config=True)
    raise_on_error = Bool(False, help="Also fail the cell when a request fails (stops Run All)").tag(
        config=True)
    max_retries = Int(2, help="Retries for 408/429/5xx and connection errors, before the first byte").tag(
        config=True)
    read_timeout = Float(300.0, help="Seconds to wait between bytes of an answer").tag(config=True)
    cache = Bool(False, help="Answer repeated identical requests from the on-disk cache (record/replay)").tag(
        config=True)
    cache_dir = Unicode(None, allow_none=True, help="Cache directory (default ~/.cache/or_magic/responses)").tag(
        config=True)
    budget = Float(None, allow_none=True, help="USD this notebook may spend; requests past it are refused").tag(
        config=True)

    def __init__(self, shell: InteractiveShell | None = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._session: Session | None = None
        self.cell_id: str | None = None
        self.raw_cell = ""
        if shell is not None:
            shell.events.register("pre_run_cell", self._remember_cell)

    def _remember_cell(self, info: Any) -> None:
        """JupyterLab and Notebook 7 send each cell's id; a re-run then replaces that cell's turn."""
        self.cell_id = getattr(info, "cell_id", None)
        self.raw_cell = getattr(info, "raw_cell", "") or ""

    @property
    def session(self) -> Session:
        if self._session is None:
            from .session import Session

            self._session = Session(self)
        return self._session

    def defaults(self) -> options.Defaults:
        return options.Defaults(model=self.model, temperature=self.temperature, max_tokens=self.max_tokens,
                                top_p=self.top_p, system=self.system, stream=self.stream)

    @no_var_expand
    @magic_arguments()
    @argument("-m", "--model", help="OpenRouter model id, e.g. openai/gpt-4o-mini (default: ChatMagics.model)")
    @argument("--models", metavar="A,B", help="fallback models, comma-separated, tried in order")
    @argument("-t", "--temperature", type=float, help="sampling temperature, 0..2")
    @argument("--top-p", type=float, help="nucleus sampling, 0..1")
    @argument("--max-tokens", type=int, help="maximum tokens in the answer")
    @argument("--seed", type=int, help="sampling seed (best effort)")
    @argument("--stop", action="append", help="stop sequence (repeatable, at most 4)")
    @argument("-s", "--system", help="system prompt for this thread")
    @argument("--reasoning", choices=options.REASONING_EFFORTS, help="reasoning effort")
    @argument("--reasoning-tokens", type=int, metavar="N", help="reasoning budget in tokens")
    @argument("--web", action="store_true", help="let the model search the web (OpenRouter web plugin)")
    @argument("--provider-order", metavar="A,B", help="providers to try first, comma-separated")
    @argument("--sort", choices=options.SORTS, help="route to the cheapest, fastest or lowest-latency provider")
    @argument("--json", action="store_true", help="ask for a JSON object answer")
    @argument("--no-stream", action="store_true", help="wait for the whole answer instead of streaming")
    @argument("--chat", metavar="NAME", help="named thread to continue (default: 'default')")
    @argument("--new", action="store_true", help="start the thread over")
    @argument("--once", action="store_true", help="no memory: send only this message, keep nothing")
    @argument("-o", "--out", metavar="VAR", help="bind the answer text to a notebook variable")
    @argument("--dry-run", action="store_true", help="show the exact request, send nothing")
    @argument("--param", action="append", metavar="KEY=JSON", help="any other request field (repeatable)")
    @argument("--no-cache", action="store_true", help="bypass the response cache for this cell")
    @argument("--schema", metavar="NAME", help="structured answer: a pydantic model or JSON-schema dict variable")
    @argument("--context", action="append", metavar="VAR", help="describe a notebook variable to the model")
    @argument("--image", action="append", metavar="X", help="attach an image: path, URL or variable (repeatable)")
    @argument("--file", action="append", metavar="X", help="attach a file, e.g. a PDF: path, URL or variable")
    @argument("--tools", metavar="F,G", help="notebook functions the model may call")
    @argument("--max-steps", type=int, metavar="N", help="tool-call round trips at most (default 5)")
    @argument("words", nargs="*", help="with %%%%chat: nothing; with %%chat: a subcommand, or a one-line prompt")
    @line_cell_magic
    def chat(self, line: str, cell: str | None = None) -> Any:
        """Send the cell to an OpenRouter model and stream the answer into the cell's output.

        ``%chat SUBCOMMAND`` manages the conversation: history, threads, reset, undo, models, usage,
        error, key, sandbox, export, load, config, panel. ``%chat [options] question`` asks in one line.
        """
        options.refuse_secrets(line)
        if cell is None:
            from .commands import SUBCOMMANDS, run_command

            words = line.split(None, 1)
            if words and words[0] in SUBCOMMANDS:
                arg = words[1] if len(words) > 1 else ""
                if "$" in arg:  # `%chat export $path`: the variable's value, as in prompts
                    from .context import interpolate

                    arg = interpolate(arg, self.shell.user_ns if self.shell else {})
                return run_command(self, words[0], arg)
        line = options.expand_variables(line, self.shell.user_ns if self.shell else {})
        ns = self._parse(line)
        if cell is None:
            if not ns.words:
                raise UsageError("%chat needs a subcommand or a prompt; see %chat?")
            prompt = " ".join(ns.words)
        else:
            if ns.words:
                raise UsageError(f"unexpected words on the %%chat line: {' '.join(ns.words)!r} "
                                 "(the cell body is the message; options start with -)")
            prompt = cell.strip("\n")
            if not prompt.strip():
                raise UsageError("the cell is empty: write your message below the %%chat line")
        opts = options.build(ns, self.defaults())
        from .commands import run_chat

        # a `%%chat` cell is ours to clear at the end; `%chat` among other code must not erase its output
        owns_cell = cell is not None and self.raw_cell.lstrip().startswith("%%chat")
        return run_chat(self, opts, prompt, owns_cell=owns_cell)

    def _parse(self, line: str) -> Any:
        return options.parse(self.chat, line)


def load(ip: InteractiveShell) -> ChatMagics:
    """Register the magics once per shell and say how to get a key when none is set."""
    existing = ip.magics_manager.registry.get("ChatMagics")
    if isinstance(existing, ChatMagics):
        return existing
    magics = ChatMagics(ip)
    ip.register_magics(magics)
    if not os.environ.get("OPENROUTER_API_KEY"):
        print(NO_KEY_NOTICE)
    _restore_saved_turns(magics)
    return magics


def notebook_path(ip: InteractiveShell | None) -> str | None:
    """The notebook this kernel runs, when the server told it (JupyterLab / Notebook 7 do)."""
    ns = ip.user_ns if ip is not None else {}
    for candidate in (ns.get("__session__"), os.environ.get("JPY_SESSION_NAME")):
        if isinstance(candidate, str) and candidate.endswith(".ipynb") and os.path.isfile(candidate):
            return candidate
    return None


def _restore_saved_turns(magics: ChatMagics) -> None:
    """After a restart, rebuild the threads from the turns saved in the notebook's outputs."""
    path = notebook_path(magics.shell)
    if path is None:
        return
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        if '"or_magic"' not in text:  # cheap check before parsing
            return
        count = magics.session.store.restore_notebook(json.loads(text))
    except (OSError, ValueError):
        return
    if count:
        print(f"or_magic: restored {count} turns from {os.path.basename(path)} (no API calls)")


def unload(ip: InteractiveShell) -> None:
    """Remove ``%%chat`` / ``%chat`` and the cell hook; close the client and any sandbox."""
    magics = ip.magics_manager.registry.pop("ChatMagics", None)
    for kind in ("line", "cell"):
        ip.magics_manager.magics[kind].pop("chat", None)
    if isinstance(magics, ChatMagics):
        with contextlib.suppress(ValueError):
            ip.events.unregister("pre_run_cell", magics._remember_cell)
        if magics._session is not None:
            magics._session.close()
