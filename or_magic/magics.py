"""``%%chat`` and ``%chat``: thin adapters that parse their line, then call the session.

Importing this module is cheap (IPython only): the client, renderer and pydantic load on the first
request, so ``%load_ext or_magic`` stays fast.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from traitlets import Bool, Enum, Float, Int, TraitError, Unicode, validate

from . import defaults as D
from . import options

if TYPE_CHECKING:  # pragma: no cover
    from IPython.core.interactiveshell import InteractiveShell

    from .session import Session

NO_KEY_NOTICE = ("or_magic: no OPENROUTER_API_KEY set. Run %chat key to enter one (kept in memory only), "
                 "or %chat sandbox to try the offline sandbox.")


@magics_class
class ChatMagics(Magics):
    """Chat with OpenRouter models. Defaults below are configurable: ``%config ChatMagics.model = "…"``."""

    model = Unicode(D.MODEL, help="Default model id").tag(config=True)
    temperature = Float(None, allow_none=True, min=D.TEMPERATURE_RANGE[0], max=D.TEMPERATURE_RANGE[1],
                        help="Default sampling temperature (0..2)").tag(config=True)
    max_tokens = Int(None, allow_none=True, min=D.MAX_TOKENS_MIN, help="Default maximum answer tokens").tag(
        config=True)
    top_p = Float(None, allow_none=True, min=D.TOP_P_RANGE[0], max=D.TOP_P_RANGE[1],
                  help="Default nucleus sampling (0..1)").tag(config=True)
    system = Unicode(None, allow_none=True, help="Default system prompt for new threads").tag(config=True)
    stream = Bool(True, help="Stream answers as they are generated").tag(config=True)
    show_reasoning = Bool(True, help="Show the model's reasoning in a collapsed section").tag(config=True)
    update_rate = Float(D.UPDATE_RATE, min=D.UPDATE_RATE_RANGE[0], max=D.UPDATE_RATE_RANGE[1],
                        help="Display updates per second while streaming (at most)").tag(config=True)
    raise_on_error = Bool(False, help="Also fail the cell when a request fails (stops Run All)").tag(
        config=True)
    max_retries = Int(D.MAX_RETRIES, min=D.MAX_RETRIES_RANGE[0], max=D.MAX_RETRIES_RANGE[1],
                      help="Retries for 408/429/5xx and connection errors, before the first byte").tag(config=True)
    read_timeout = Float(D.READ_TIMEOUT, min=D.READ_TIMEOUT_RANGE[0], max=D.READ_TIMEOUT_RANGE[1],
                         help="Seconds to wait between bytes of an answer").tag(config=True)
    cache = Bool(False, help="Answer repeated identical requests from the on-disk cache (record/replay)").tag(
        config=True)
    cache_dir = Unicode(None, allow_none=True, help="Cache directory (default ~/.cache/or_magic/responses)").tag(
        config=True)
    budget = Float(None, allow_none=True, min=D.BUDGET_MIN,
                   help="USD this notebook may spend; requests past it are refused").tag(config=True)

    prompt_cache = Enum(("auto", "on", "off"), D.PROMPT_CACHE,
                        help="Top-level cache_control: auto (models that need it), on (always), off").tag(config=True)

    @validate("model")
    def _valid_model(self, proposal: Any) -> str:
        value = proposal["value"].strip()
        if not value or any(c.isspace() for c in value):
            raise TraitError(f"ChatMagics.model must be a model id such as 'openai/gpt-4o-mini' (got {value!r})")
        return value

    def __init__(self, shell: InteractiveShell | None = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._session: Session | None = None
        self.cell_id: str | None = None
        self.raw_cell = ""
        self.execution = 0  # bumped before every cell: calls within one run are separate turns
        if shell is not None:
            shell.events.register("pre_run_cell", self._remember_cell)

    def _remember_cell(self, info: Any) -> None:
        """JupyterLab and Notebook 7 send each cell's id; a re-run then replaces that cell's turns as a group."""
        self.cell_id = getattr(info, "cell_id", None)
        self.raw_cell = getattr(info, "raw_cell", "") or ""
        self.execution += 1

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
    @options.with_options
    @line_cell_magic
    def chat(self, line: str, cell: str | None = None) -> Any:
        """Send the cell to an OpenRouter model and stream the answer into the cell's output.

        ``%chat SUBCOMMAND`` manages the conversation: history, threads, reset, undo, models, usage, error,
        key, sandbox, export, load, restore, cache, config, panel, fix, keep, batches.
        ``%chat [options] question`` asks in one line.
        """
        options.refuse_secrets(line)
        if cell is None:
            return self._line(line)
        return self._send(line, cell)

    def _line(self, line: str) -> Any:
        """``%chat``: a subcommand, the help, or a one-line prompt (a typo of a subcommand is refused)."""
        from .commands import RAW_ARGUMENT, SUBCOMMANDS, run_command
        from .subcommand_line import HELP_WORDS, check_words, refuse_near_miss

        if line.strip() in HELP_WORDS:
            print(self.chat.__doc__ or "", self.chat.parser.format_help(), sep="\n")
            return None
        words = line.split(None, 1)
        if words and words[0] in SUBCOMMANDS:
            rest = words[1] if len(words) > 1 else ""
            if words[0] in RAW_ARGUMENT:
                return run_command(self, words[0], rest)
            check_words(words[0], options.split_argument(rest))
            return run_command(self, words[0], self._subcommand_argument(rest))
        refuse_near_miss(line, SUBCOMMANDS)
        return self._send(line, None)

    def _send(self, line: str, cell: str | None) -> Any:
        """A turn from the line's options and the cell (or the rest of the line)."""
        line = options.expand_variables(line, self.shell.user_ns if self.shell else {}, self._secrets())
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

    def _secrets(self) -> tuple[str, ...]:
        """The key in use (``%chat key``), refused wherever a variable would carry it into a request."""
        key = self._session.api_key if self._session is not None else None
        return (key,) if key else ()

    def _parse(self, line: str) -> Any:
        return options.parse(line, self.chat)

    def _subcommand_argument(self, arg: str) -> str:
        """The subcommand's words, unquoted like option values; ``$name`` is the variable's value, as in prompts."""
        words = options.split_argument(arg)
        if any("$" in w for w in words):  # `%chat export $path`
            from .context import interpolate

            ns = self.shell.user_ns if self.shell else {}
            words = [interpolate(w, ns) if "$" in w else w for w in words]
        return " ".join(words)


def load(ip: InteractiveShell) -> ChatMagics:
    """Register the magics once per shell and say how to get a key when none is set.

    After ``%unload_ext`` (``%reload_ext``, autoreload) the threads, key, sandbox and settings it left on
    the shell carry on, and the load says so: a reload never silently moves from the sandbox to paid requests.
    """
    existing = ip.magics_manager.registry.get("ChatMagics")
    if isinstance(existing, ChatMagics):
        return existing
    magics = ChatMagics(ip)
    ip.register_magics(magics)
    if not _carry_on(ip, magics):
        if not os.environ.get("OPENROUTER_API_KEY"):
            print(NO_KEY_NOTICE)
        from .notebook import restore_saved_turns

        restore_saved_turns(magics.shell, lambda: magics.session.store)
    from . import cells

    cells.install(ip)  # remembers executed cells for --cells and %chat fix (looks, never changes output)
    return magics


def unload(ip: InteractiveShell) -> None:
    """Remove ``%%chat`` / ``%chat`` and the cell hook; close the client and any sandbox."""
    magics = ip.magics_manager.registry.pop("ChatMagics", None)
    for kind in ("line", "cell"):
        ip.magics_manager.magics[kind].pop("chat", None)
    if isinstance(magics, ChatMagics):
        with contextlib.suppress(ValueError):
            ip.events.unregister("pre_run_cell", magics._remember_cell)
        if magics._session is not None:
            magics._session.close(keep_sandbox=True)  # connections close; the sandbox waits for a reload
        _keep(ip, magics)
    from . import cells

    cells.uninstall(ip)


_KEPT = "_or_magic_kept"  # on the shell: what an unload leaves for the next load


def _keep(ip: InteractiveShell, magics: ChatMagics) -> None:
    """Leave the session (threads, key, sandbox, spend) and the settings on the shell for a reload."""
    traits = {n: getattr(magics, n) for n in magics.trait_names() if magics.trait_metadata(n, "config")}
    setattr(ip, _KEPT, (magics._session, traits, magics.execution))


def _carry_on(ip: InteractiveShell, magics: ChatMagics) -> bool:
    """Hand what the last unload kept to the new magics and say what carried on; False when nothing was kept."""
    kept = ip.__dict__.pop(_KEPT, None) if hasattr(ip, "__dict__") else None
    if kept is None:
        return False
    session, traits, magics.execution = kept
    for name, value in traits.items():
        with contextlib.suppress(TraitError):
            setattr(magics, name, value)
    if session is not None:
        session.settings = magics
        magics._session = session
    print(_carry_on_note(magics))
    return True


def _carry_on_note(magics: ChatMagics) -> str:
    session = magics._session
    turns = sum(len(t.turns) for t in session.store.threads.values()) if session is not None else 0
    threads = len(session.store.threads) if session is not None else 0
    where = (f"still on the offline SANDBOX at {session.sandbox.url}" if session is not None and session.on_sandbox
             else "requests go to the configured server")
    return (f"or_magic reloaded: kept {threads} threads ({turns} turns), the key and the settings "
            f"(model {magics.model}); {where}.")
