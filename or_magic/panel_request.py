"""The panel's option box: parsed and checked like a ``%%chat`` line, then prepared by the cells' own step.

Everything here runs before anything is sent; a mistake is a one-line ``UsageError`` the panel shows in
its status line. The option box wins over the controls, which stand in for the magic's defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from . import compare, options
from .panel_models import model_note
from .prepare import Surroundings, check_out, prepare_request

if TYPE_CHECKING:  # pragma: no cover
    import ipywidgets as W

    from .magics import ChatMagics
    from .options import ChatOptions
    from .session import Session, TurnRequest
    from .types import ModelInfo


class RequestMixin:
    """The request part of :class:`~or_magic.panel.ChatPanel`: option box + controls -> request(s)."""

    magics: ChatMagics
    session: Session
    models: list[ModelInfo]
    prompt: W.Textarea
    options: W.Text
    model: W.Combobox
    max_tokens: W.IntSlider
    thread: W.Dropdown
    system: W.Textarea
    _system_shown: str

    def _read(self, message: str | None = None) -> tuple[ChatOptions, str]:
        """The options the box and the controls describe, checked as a cell's would be, and the prompt."""
        prompt = self.prompt.value if message is None else message
        if not prompt.strip():
            raise UsageError("type a message in the prompt box first")
        line = self.options.value
        options.refuse_secrets(line)
        ns = options.parse(options.expand_variables(line, self._namespace(), self._secrets()))
        if ns.words:
            raise UsageError(f"unexpected words in the options: {' '.join(ns.words)!r} (options start with -)")
        if ns.dry_run:
            raise UsageError("--dry-run is for %%chat cells; the panel sends what it shows")
        if ns.map:
            raise UsageError("--map is for %%chat cells: its progress and result table go in the cell's output")
        m = self.magics
        defaults = options.Defaults(model=self.model.value.strip(), temperature=m.temperature, top_p=m.top_p,
                                    max_tokens=self.max_tokens.value or None, stream=bool(m.stream))
        opts = options.build(ns, defaults)
        for model in opts.compare or [opts.model]:
            level, text = model_note(model, self.models)
            if level == "error":
                raise UsageError(text)
        check_out(opts.out, getattr(m.shell, "user_ns_hidden", None) or {})
        opts.thread = opts.thread or self.thread.value or self.session.store.DEFAULT
        if opts.system is None:
            opts.system = self.system.value.strip() or None
        return opts, prompt

    def _prepare(self, opts: ChatOptions, prompt: str) -> TurnRequest:
        req, _ = prepare_request(opts, prompt, self._env())
        return self._fit_system(req, opts)

    def _prepare_all(self, opts: ChatOptions, prompt: str) -> list[TurnRequest]:
        """``--compare``: one request per model, as a cell prepares them."""
        return [self._fit_system(req, opts) for req, _ in compare.prepare_requests(opts, prompt, self._env())]

    @staticmethod
    def _fit_system(req: TurnRequest, opts: ChatOptions) -> TurnRequest:
        if opts.system is None:  # an empty box is no system prompt (send() clears the thread's)
            req.system = None
        return req

    def _clear_emptied_system(self, req: TurnRequest) -> None:
        thread = self.session.store.get(req.thread)
        if req.system is None and thread.system and thread.system == self._system_shown:
            thread.system = None  # the box showed the thread's system prompt and the user emptied it

    def _env(self) -> Surroundings:
        """What the panel's requests are prepared against (its own model list; no cell)."""
        return Surroundings(namespace=self._namespace(), store=self.session.store, models=lambda: self.models,
                            cells=_cell_history(self.magics.shell), secrets=(self.session.api_key or "",),
                            prompt_cache=str(getattr(self.magics, "prompt_cache", "auto")))

    def _namespace(self) -> dict[str, Any]:
        shell = self.magics.shell
        return shell.user_ns if shell is not None else {}

    def _secrets(self) -> tuple[str, ...]:
        """The key set with ``%chat key``: refused in the option box like on a cell's line, whatever its shape."""
        key = self.session.api_key
        return (key,) if key else ()


def _cell_history(shell: Any) -> Any:
    """The notebook's executed cells (recorded since the extension loaded), for --cells."""
    from .cells import history

    return history(shell) if shell is not None else None
