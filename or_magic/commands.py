"""What ``%%chat`` and the ``%chat`` subcommands do, once their line is parsed.

Kept apart from :mod:`or_magic.magics` so the magic stays a thin parser and this module (which pulls in
the client and renderer) loads only when a command actually runs.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.display import display

from . import render
from .client import build_request_body
from .commands_access import cmd_key, cmd_sandbox
from .commands_files import cmd_cache, cmd_export, cmd_load, cmd_restore
from .conversation import content_text
from .display import HandleSink, TerminalSink
from .errors import OpenRouterError
from .prepare import Surroundings, check_out, prepare_request
from .session import TurnFailed, TurnRequest, error_view
from .stored import stored_turn_view, turn_flags

if TYPE_CHECKING:  # pragma: no cover
    from .magics import ChatMagics
    from .options import ChatOptions


def _in_kernel(magics: ChatMagics) -> bool:
    return getattr(magics.shell, "kernel", None) is not None


def _show(html_text: str, plain: str) -> None:
    display({"text/html": html_text, "text/plain": plain}, raw=True)


# -- %%chat ----------------------------------------------------------------------------------------
def run_chat(magics: ChatMagics, opts: ChatOptions, prompt: str, *, owns_cell: bool = True) -> None:
    """Send one turn (or show it, with --dry-run), then bind --out and honour raise_on_error."""
    if opts.map_var:
        from .map_cell import run_map_cell

        return run_map_cell(magics, opts, prompt, surroundings(magics))
    session = magics.session
    check_out(opts.out, getattr(magics.shell, "user_ns_hidden", None) or {})
    if opts.compare:
        from .commands_compare import run_compare

        return run_compare(magics, opts, prompt, surroundings(magics), show_dry_run)
    req, notes = prepare(magics, opts, prompt)
    if opts.dry_run:
        return show_dry_run(magics, req, notes)
    sink = HandleSink(show_reasoning=magics.show_reasoning, owns_cell=owns_cell, shown=_shown(magics)) \
        if _in_kernel(magics) else TerminalSink(show_reasoning=magics.show_reasoning)
    try:
        result = session.run_turn(req, sink, interval=1.0 / max(magics.update_rate, 0.5))
    except Exception as err:  # a thread busy in the panel, a bad --param type: a card, not a traceback
        if isinstance(err, OpenRouterError) or type(err).__name__ == "TurnInterrupted":
            raise
        sink.final(render.TurnView(error=error_view(err), status="error"), [])
        if magics.raise_on_error:
            raise TurnFailed(f"{type(err).__name__}: {err}") from None
        return None
    if result.error is None and opts.out:
        magics.shell.user_ns[opts.out] = result.value if opts.schema else result.text
    if result.error is None and not result.interrupted and opts.code:
        propose_answer_code(magics, result.text)
    if result.error is not None and magics.raise_on_error:
        raise TurnFailed(f"{type(result.error).__name__}: {result.error}")
    return None


def prepare(magics: ChatMagics, opts: ChatOptions, prompt: str) -> tuple[TurnRequest, list[str]]:
    """The cell's request, by the step the panel uses too (see :mod:`or_magic.prepare`)."""
    return prepare_request(opts, prompt, surroundings(magics))


def surroundings(magics: ChatMagics) -> Surroundings:
    """What a request from this notebook is prepared against (the panel passes its own model list)."""
    session = magics.session
    return Surroundings(namespace=magics.shell.user_ns if magics.shell is not None else {}, store=session.store,
                        models=lambda: session.client().models(), cell_id=magics.cell_id,
                        execution=magics.execution,
                        default_system=magics.system, cells=_cell_history(magics),
                        secrets=(session.api_key or "",), prompt_cache=magics.prompt_cache)


def _shown(magics: ChatMagics) -> Any:
    """What the running cell shows, so the answer's final redraw keeps it (None: not recorded here)."""
    cells = _cell_history(magics)
    return cells.shown_now() if cells is not None else None


def _cell_history(magics: ChatMagics) -> Any:
    """The notebook's executed cells (installed by the extension), for --cells and %chat fix."""
    from .cells import history

    return history(magics.shell) if magics.shell is not None else None


def show_dry_run(magics: ChatMagics, req: TurnRequest, notes: list[str]) -> None:
    """Display exactly the request that would be sent, and change nothing."""
    session = magics.session
    messages = session.store.preview(req.thread, req.prompt, req.cell_id, system=req.system,
                                     memory=req.memory and not req.new, execution=req.execution)
    body = build_request_body(messages=messages, stream=req.stream, **req.params)
    url = f"{session.client().server_url}/chat/completions"
    text = json.dumps(body, indent=2, ensure_ascii=False)
    extra = "".join(f"; {n}" for n in notes)
    note = (f"dry run: nothing was sent. POST {url} ({len(text.encode()):,} bytes, {len(messages)} messages{extra}; "
            "Authorization header not shown)")
    html_text = (render.notice_html("dry run", note) +
                 render.render_markdown(f"```json\n{text}\n```"))
    _show(html_text, f"{note}\n{text}")


def propose_answer_code(magics: ChatMagics, answer: str) -> str | None:
    """``--code``: the answer's Python block(s) as a new cell below (never run); none: a one-line notice."""
    from .codecells import answer_code, propose_cell

    code = answer_code(answer)
    if code is None:
        print("or_magic: the answer has no Python code block, so no cell was proposed")
        return None
    return propose_cell(magics.shell, code) if magics.shell is not None else None


# -- %chat subcommands -----------------------------------------------------------------------------
def cmd_history(magics: ChatMagics, arg: str) -> None:
    """%chat history [NAME]: the thread's turns, oldest first."""
    thread = magics.session.store.get(arg.strip() or None)
    if not thread.turns:
        print(f"thread {thread.name!r} has no turns yet")
        return
    parts, plain = [], []
    if thread.system:
        parts.append(render.notice_html("system", thread.system))
        plain.append(f"[system] {thread.system}")
    sandbox = magics.session.on_sandbox
    for n, turn in enumerate(thread.turns, 1):
        flags = turn_flags(turn)
        label = f"{n}. {turn.model or '?'}" + (f" ({', '.join(flags)})" if flags else "")
        user = content_text(turn.user)
        view = stored_turn_view(turn, sandbox=sandbox)
        parts.append(f"<div style=\"margin:0.6em 0\"><b>You</b> <small>{html.escape(label)}</small>"
                     f"<blockquote>{render.render_markdown(user)}</blockquote>"
                     f"<div>{render.final_bundle(view)['text/html']}</div></div>")
        plain.append(f"--- {label}\n> {user}\n{render.text_only(view)}")
    _show("".join(parts), "\n".join(plain))


def cmd_threads(magics: ChatMagics, arg: str) -> None:
    """%chat threads: every thread with its number of turns."""
    store = magics.session.store
    rows = [(t.name, len(t.turns), t.system or "", "busy" if store.is_busy(t.name) else "")
            for t in (store.get(n) for n in store.names() or [store.DEFAULT])]
    _table(["thread", "turns", "system prompt", ""], rows)


def cmd_reset(magics: ChatMagics, arg: str) -> None:
    """%chat reset [NAME]: forget the thread's turns."""
    thread = magics.session.store.reset(arg.strip() or None)
    print(f"thread {thread.name!r} reset")


def cmd_undo(magics: ChatMagics, arg: str) -> None:
    """%chat undo [NAME]: remove the thread's last turn."""
    turn = magics.session.store.undo(arg.strip() or None)
    print("nothing to undo" if turn is None else f"removed the last turn ({content_text(turn.user)[:60]!r})")


def cmd_models(magics: ChatMagics, arg: str) -> None:
    """%chat models [FILTER]: id, context length, price per million tokens, modalities."""
    needle = arg.strip().lower()
    try:
        models = magics.session.client().models()
    except OpenRouterError as err:
        _error_card(magics, err)
        return
    rows = []
    for m in models:
        name = f"{m.id} {m.name or ''}".lower()
        if needle and needle not in name:
            continue
        pricing = m.pricing or {}
        arch = m.architecture or {}
        arch = arch if isinstance(arch, dict) else arch.model_dump()
        modalities = "+".join(arch.get("input_modalities") or []) + "→" + "+".join(
            arch.get("output_modalities") or [])
        rows.append((m.id, m.context_length or "", _per_million(pricing, "prompt"),
                     _per_million(pricing, "completion"), modalities))
    if needle and not rows:
        print(f"no model matches {arg.strip()!r} (of {len(models)}; %chat models lists them all)")
        return
    _table(["id", "context", "$/M in", "$/M out", "modalities"], rows)


def _per_million(pricing: Any, key: str) -> str:
    value = pricing.get(key) if isinstance(pricing, dict) else getattr(pricing, key, None)
    try:
        return f"{float(value) * 1e6:.2f}"
    except (TypeError, ValueError):
        return ""


def cmd_usage(magics: ChatMagics, arg: str) -> None:
    """%chat usage: tokens and cost of this notebook's committed turns, by model."""
    totals = magics.session.store.usage_by_model()
    rows = [(model, int(t["turns"]), int(t["prompt_tokens"]), int(t["cached_tokens"]), int(t["completion_tokens"]),
             f"${t['cost']:.6f}") for model, t in totals.items()]
    rows.append(("total", *(sum(r[i] for r in rows) for i in range(1, 5)),
                 f"${sum(t['cost'] for t in totals.values()):.6f}"))
    _table(["model", "turns", "tokens in", "cached in", "tokens out", "cost"], rows)
    saved = sum(t["cache_saved"] for t in totals.values())
    if saved:
        print(f"the prompt cache saved {render.usd(saved)}" if saved > 0 else
              f"writing the prompt cache cost {render.usd(-saved)} more than it saved so far")
    budget = magics.budget
    spent = magics.session.spent
    if budget is not None:
        left = render.usd(max(budget - spent, 0))
        print(f"spent {render.usd(spent)} of the {render.usd(budget)} budget ({left} left)")
    elif spent:
        print(f"spent ${spent:.6f} this session (failed and interrupted answers included); no budget set")
    from .reconcile import credit_line, reconciled_lines

    for line in reconciled_lines(magics.session.reconciled):
        print(line)
    credit = credit_line(magics.session.client())
    if credit:
        print(credit)


def cmd_error(magics: ChatMagics, arg: str) -> None:
    """%chat error: everything about the last error (metadata, raw body, headers; never the key)."""
    err = magics.session.last_error
    if err is None:
        print("no error so far")
        return
    details = json.dumps(err.to_dict(), indent=2, ensure_ascii=False, default=str)
    _show(render.error_card_html(error_view(err)) + render.render_markdown(f"```json\n{details}\n```"),
          f"{render.error_card_text(error_view(err))}\n{details}")


def cmd_config(magics: ChatMagics, arg: str) -> None:
    """%chat config: the defaults in force and where requests go (the key is never shown)."""
    session = magics.session
    client = session.client()
    rows = [(name, repr(getattr(magics, name))) for name in sorted(magics.trait_names())
            if magics.trait_metadata(name, "config")]
    rows.append(("server", client.server_url + (" (sandbox)" if session.on_sandbox else "")))
    rows.append(("api key", "set" if (session.api_key or _env_key()) else "not set"))
    _table(["setting", "value"], rows)


def _env_key() -> bool:
    return bool(os.environ.get("OPENROUTER_API_KEY"))


FIX_THREAD = "fix"
RAW_ARGUMENT = frozenset({"fix"})  # subcommands that parse their own options, so they get the line as typed


def cmd_fix(magics: ChatMagics, arg: str) -> None:
    """%chat fix [N] [options]: explain and correct the last failed cell (or In[N]), in thread 'fix';
    the corrected code is proposed as a new cell below, never run."""
    from . import options
    from .fix import NoFailedCell, fix_request
    from .redact import redact_text, secrets_in_use

    namespace = magics.shell.user_ns if magics.shell is not None else {}
    parsed = options.parse(options.expand_variables(arg, namespace, magics._secrets()), magics.chat)
    number = _fix_number(parsed.words)
    opts = options.build(parsed, magics.defaults())
    opts.thread, opts.code = opts.thread or FIX_THREAD, True
    cells = _cell_history(magics)
    if cells is None:
        raise UsageError("%chat fix: executed cells are not being recorded here (run it in a notebook)")
    try:
        request = fix_request(cells, namespace, number)
    except NoFailedCell as err:
        print(f"or_magic: {err}; nothing was sent")
        return None
    message = redact_text(request.message, secrets_in_use(magics.session.api_key))
    return run_chat(magics, opts, message, owns_cell=False)


def _fix_number(words: list[str]) -> int | None:
    if not words:
        return None
    if len(words) == 1 and words[0].isdigit() and int(words[0]) > 0:
        return int(words[0])
    raise UsageError(f"%chat fix [N] [options]: N is the number of the failed cell (got {' '.join(words)!r})")


def cmd_batches(magics: ChatMagics, arg: str) -> None:
    """%chat batches: the account's recent Batch API jobs, newest first, with their status and counts."""
    from .defaults import BATCH_LIST_LIMIT

    try:
        page = magics.session.client().batches.list(limit=BATCH_LIST_LIMIT)
    except OpenRouterError as err:
        _error_card(magics, err)
        return
    if not page.data:
        print("no batches")
        return
    rows = [(b.id, b.status, b.model or "", f"{b.request_counts.completed}/{b.request_counts.total}",
             b.request_counts.failed, _when(b.created_at)) for b in page.data]
    _table(["batch", "status", "model", "done", "failed", "created"], rows)


def _when(stamp: int | None) -> str:
    import datetime

    if not stamp:
        return ""
    return datetime.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


def cmd_panel(magics: ChatMagics, arg: str) -> Any:
    """%chat panel: the widget panel, sharing this notebook's threads and defaults."""
    from .panel import ChatPanel

    panel = ChatPanel(magics=magics)
    display(panel)
    return None


SUBCOMMANDS: dict[str, Callable[[ChatMagics, str], Any]] = {
    "history": cmd_history, "threads": cmd_threads, "reset": cmd_reset, "undo": cmd_undo,
    "models": cmd_models, "usage": cmd_usage, "error": cmd_error, "key": cmd_key, "sandbox": cmd_sandbox,
    "export": cmd_export, "load": cmd_load, "config": cmd_config, "panel": cmd_panel, "cache": cmd_cache,
    "restore": cmd_restore, "fix": cmd_fix, "batches": cmd_batches,
    "keep": lambda magics, arg: _keep(magics, arg),
}


def _keep(magics: ChatMagics, arg: str) -> None:
    """%chat keep MODEL: keep a compared model's answer (see :mod:`or_magic.commands_compare`)."""
    from .commands_compare import cmd_keep

    cmd_keep(magics, arg)


def run_command(magics: ChatMagics, name: str, arg: str) -> Any:
    return SUBCOMMANDS[name](magics, arg)


def _error_card(magics: ChatMagics, err: OpenRouterError) -> None:
    magics.session.last_error = err
    view = error_view(err)
    _show(render.error_card_html(view), render.error_card_text(view))


def _table(header: list[str], rows: list[tuple[Any, ...]]) -> None:
    head = "".join(f"<th style=\"text-align:left\">{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td style=\"text-align:left\">{html.escape(str(c))}</td>" for c in row)
                   + "</tr>" for row in rows)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in [tuple(header), *rows]]
    _show(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>", "\n".join(lines))


__all__ = ["SUBCOMMANDS", "RAW_ARGUMENT", "run_chat", "run_command", "propose_answer_code"]
