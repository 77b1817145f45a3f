"""The one preparation step both faces share: validated options + a prompt -> one :class:`TurnRequest`.

The ``%%chat`` magic and the panel differ only in where the options and prompt come from (the magic line
and cell, or the panel's controls and option box) and which sink they pass. Everything here is checked
before anything is sent; every problem is a one-line ``UsageError``. The faces hand in what this step
needs (:class:`Surroundings`), so it imports neither of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from .session import TurnRequest

if TYPE_CHECKING:  # pragma: no cover
    from .conversation import ConversationStore
    from .options import ChatOptions
    from .types import ModelInfo


@dataclass
class Surroundings:
    """What a request is prepared against: the notebook's variables, the threads, the model list."""

    namespace: dict[str, Any]
    store: ConversationStore
    models: Callable[[], Sequence[ModelInfo]] = list  # /models, asked only when a check needs it
    cell_id: str | None = None
    execution: int | str | None = None  # which run of the cell (several calls in one run: one turn each)
    default_system: str | None = None  # used when neither the options nor the thread name one
    cells: Any = None  # the notebook's cells.CellHistory, for --cells (None: not installed)
    secrets: tuple[str, ...] = ()  # the key in use, scrubbed from what the notebook adds to a request
    prompt_cache: str = "auto"  # ChatMagics.prompt_cache: auto, on or off (see features.apply_prompt_cache)


def check_out(name: str | None, hidden: Mapping[str, Any]) -> None:
    """``-o NAME`` must not replace IPython's own names (``hidden``: ``get_ipython``, ``In``, ``exit``) or a
    builtin; one-line ``UsageError`` before anything is sent."""
    import builtins

    if name and (name in hidden or hasattr(builtins, name)):
        raise UsageError(f"-o {name}: that name belongs to IPython or Python; pick another variable name")


def prepare_request(opts: ChatOptions, prompt: str, env: Surroundings) -> tuple[TurnRequest, list[str]]:
    """Turn options and a message into a request: variables, context, attachments, schema, tools.

    ``notes`` say what was added (for --dry-run).
    """
    from .redact import secrets_in_use

    ns = env.namespace
    keys = secrets_in_use(*env.secrets)
    thread = env.store.get(opts.thread)
    system = opts.system if opts.system is not None else (thread.system or env.default_system or None)
    params = dict(opts.params)
    message = _interpolated(prompt, ns)
    for what, value in (("the message", message), ("the system prompt", system), ("the options", params)):
        _refuse_key(value, keys, what)
    notes: list[str] = []
    text: Any = _with_context(opts, message, ns, notes, keys)
    text = _with_cells(opts, text, env, notes)
    if opts.images or opts.files or opts.audio:
        text = _with_attachments(opts, text, params["model"], env, notes)
    spec = _schema(opts, ns, params)
    box = _toolbox(opts, ns, params)
    _check_max_tokens(params, env)
    _model_features(opts, params, env, notes)
    req = TurnRequest(prompt=text, params=params, thread=thread.name, system=system, memory=opts.memory,
                      new=opts.new, cell_id=env.cell_id, execution=env.execution, stream=opts.stream,
                      keep_system=opts.system is not None, cache=opts.cache, tools=box, max_steps=opts.max_steps,
                      schema=spec)
    return req, notes


def _interpolated(prompt: str, ns: dict[str, Any]) -> str:
    if "$" not in prompt:
        return prompt
    from .context import interpolate

    return interpolate(prompt, ns)


def _refuse_key(value: Any, keys: tuple[str, ...], what: str) -> None:
    """What the user typed or interpolated must not carry a key into the request: one line, nothing sent."""
    from .redact import has_secret

    if value is not None and has_secret(value, keys):
        raise UsageError(f"{what} holds an API key; keys are never sent to a model (nothing was sent)")


def _with_context(opts: ChatOptions, text: str, ns: dict[str, Any], notes: list[str],
                  keys: tuple[str, ...]) -> str:
    """``--context VAR``: the variables described; a key inside one (a config dict) is masked, not sent."""
    if not opts.context:
        return text
    from . import context
    from .redact import redact_text

    try:
        block = redact_text(context.context_block(opts.context, ns), keys)
    except KeyError as err:
        raise UsageError(str(err).strip("'\"")) from None
    notes.append(f"context: {', '.join(opts.context)} ({len(block):,} characters)")
    return f"{block}\n\n{text}"


def _with_cells(opts: ChatOptions, text: str, env: Surroundings, notes: list[str]) -> str:
    """``--cells SPEC``: the executed cells, oldest first, before everything else in the message."""
    if not opts.cells:
        return text
    if env.cells is None:
        raise UsageError("--cells: executed cells are not being recorded here (load the extension with "
                         "%load_ext or_magic in a notebook)")
    from .cellsblock import cells_block
    from .redact import redact_text, secrets_in_use

    try:
        block = cells_block(opts.cells, env.cells)
    except ValueError as err:
        raise UsageError(str(err)) from None
    shown = ", ".join(f"In[{n}]" for n in block.numbers) or "none"
    dropped = f"; left out to stay within the limit: {len(block.left_out)}" if block.left_out else ""
    notes.append(f"cells: {shown} ({block.chars:,} characters{dropped})")
    return f"{redact_text(block.text, secrets_in_use(*env.secrets))}\n\n{text}"


def _with_attachments(opts: ChatOptions, text: str, model: str, env: Surroundings, notes: list[str]) -> Any:
    from . import attachments

    parts = [_attach(attachments.image_part, x, env.namespace) for x in opts.images]
    parts += [_attach(attachments.file_part, x, env.namespace) for x in opts.files]
    if opts.audio:
        from .audio import audio_part

        parts += [_attach(audio_part, x, env.namespace) for x in opts.audio]
    info = _model_info(model, env)
    problem = attachments.check_modalities(model, info.input_modalities if info is not None else None, parts)
    if problem:
        raise UsageError(problem)
    notes.append(f"attachments: {len(parts)} ({sum(len(json.dumps(p)) for p in parts):,} bytes encoded)")
    return attachments.user_content(text, parts)


def _schema(opts: ChatOptions, ns: dict[str, Any], params: dict[str, Any]) -> Any:
    if not opts.schema:
        return None
    from . import schema

    try:
        spec = schema.resolve(_variable(ns, opts.schema, "--schema"), opts.schema)
    except (TypeError, ValueError) as err:
        raise UsageError(f"--schema {opts.schema}: {err}") from None
    params["response_format"] = spec.response_format()
    provider = params.setdefault("provider", {})
    if isinstance(provider, dict):
        provider.setdefault("require_parameters", True)  # only endpoints that honour the schema
    return spec


def _toolbox(opts: ChatOptions, ns: dict[str, Any], params: dict[str, Any]) -> Any:
    if not opts.tools:
        return None
    from . import tools

    fns = [_variable(ns, name, "--tools") for name in opts.tools]
    if not all(callable(f) for f in fns):
        raise UsageError("--tools takes notebook functions")
    try:
        box = tools.ToolBox(fns)
    except (TypeError, ValueError) as err:
        raise UsageError(f"--tools: {err}") from None
    from .features import is_server_tool

    server = [t for t in params.get("tools") or [] if is_server_tool(t)]  # --web's search tool stays
    params["tools"] = [*box.schemas, *server]
    return box


def _model_features(opts: ChatOptions, params: dict[str, Any], env: Surroundings, notes: list[str]) -> None:
    """What the model decides: the prompt-caching marker, and images asked of a model that makes them."""
    from .features import apply_output_modalities, apply_prompt_cache

    apply_prompt_cache(params, env.prompt_cache, opts.prompt_cache)
    if apply_output_modalities(params, _model_info(str(params.get("model", "")), env)):
        notes.append("modalities: image and text (the model makes images)")


def _check_max_tokens(params: dict[str, Any], env: Surroundings) -> None:
    """Refuse a ``max_tokens`` the model cannot answer with, when ``/models`` says its cap (else the API's 400)."""
    wanted = params.get("max_tokens")
    if not isinstance(wanted, int):
        return
    info = _model_info(str(params.get("model", "")), env)
    limit = info.max_completion_tokens if info is not None else None
    if limit is not None and wanted > limit:
        raise UsageError(f"--max-tokens {wanted:,} is more than {params['model']} can answer ({limit:,} tokens)")


def _model_info(model: str, env: Surroundings) -> ModelInfo | None:
    """The model's ``/models`` entry (a ``:variant`` uses its base model's); None when unknown or unavailable."""
    try:
        by_id = {m.id: m for m in env.models() if m.id}
    except Exception:  # offline, no key, a server error: nothing to check against, the API decides
        return None
    return by_id.get(model) or by_id.get(model.rpartition(":")[0] if ":" in model else "")


def _variable(ns: dict[str, Any], name: str, flag: str) -> Any:
    if name not in ns:
        raise UsageError(f"{flag} {name}: no such variable in the notebook")
    return ns[name]


def _attach(make: Callable[[Any], dict[str, Any]], spec: str, ns: dict[str, Any]) -> dict[str, Any]:
    """An attachment from a variable (by name) or a path/URL."""
    from .attachments import AttachmentError

    obj = ns[spec] if spec.isidentifier() and spec in ns else spec
    try:
        return make(obj)
    except AttachmentError as err:
        raise UsageError(str(err)) from None
