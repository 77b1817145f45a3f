"""Magic arguments -> validated request parameters and display options.

One list, :data:`OPTIONS`, describes every option: it generates the ``%%chat`` magic's ``magic_arguments``
decorators and the parser the panel's option box uses, so both faces accept exactly the same line. This
module turns the parsed namespace plus the defaults (``ChatMagics`` config, or the panel's controls) into
the options that steer the turn; the request body fields are built by :mod:`.option_params`. Every mistake
is a plain one-line ``UsageError``, raised before anything is sent or any state changes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from . import defaults as D
from .option_params import Defaults, identifier, model_id, request_params, split_list
from .tokens import split_line

REASONING_EFFORTS = ("minimal", "low", "medium", "high")
SORTS = ("price", "throughput", "latency")

_VAR = re.compile(r"(?<![\w$])\$([A-Za-z_][A-Za-z0-9_]*)")
_KEY_LIKE = re.compile(r"\bsk-or-[A-Za-z0-9-]{6,}")


@dataclass
class ChatOptions:
    """What one ``%%chat`` cell asks for."""

    params: dict[str, Any] = field(default_factory=dict)  # request body fields, messages excluded
    system: str | None = None
    thread: str | None = None
    new: bool = False
    memory: bool = True
    out: str | None = None
    dry_run: bool = False
    stream: bool = True
    cache: bool = True  # False with --no-cache
    schema: str | None = None  # a notebook variable: pydantic model or JSON-schema dict
    context: list[str] = field(default_factory=list)  # notebook variables to describe to the model
    images: list[str] = field(default_factory=list)  # paths, URLs or variable names
    files: list[str] = field(default_factory=list)
    audio: list[str] = field(default_factory=list)  # paths, URLs or variables holding wav/mp3 bytes
    prompt_cache: bool = True  # False with --no-prompt-cache
    compare: list[str] = field(default_factory=list)  # --compare: the models asked side by side
    keep: str | None = None  # --keep: the compared model whose answer becomes the turn
    tools: list[str] = field(default_factory=list)  # notebook functions the model may call
    max_steps: int = D.MAX_STEPS
    cells: str | None = None  # --cells SPEC: executed cells to put before the message
    code: bool = False  # --code: propose the answer's Python code as a new cell below
    map_var: str | None = None  # --map: a notebook DataFrame/Series/list, one request per row
    concurrency: int = D.MAP_CONCURRENCY
    fresh: bool = False  # --fresh: ignore the map's journal, send every row again
    batch: bool = False  # --batch: submit the rows to the Batch API instead of sending them

    @property
    def model(self) -> str:
        return str(self.params.get("model", ""))


# (flags, argparse keywords): the one description of the %%chat line, for the magic and the panel
OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("-m", "--model"), {"help": "OpenRouter model id, e.g. openai/gpt-4o-mini (default: ChatMagics.model)"}),
    (("--models",), {"metavar": "A,B", "help": "fallback models, comma-separated, tried in order"}),
    (("-t", "--temperature"), {"type": float, "help": "sampling temperature, 0..2"}),
    (("--top-p",), {"type": float, "help": "nucleus sampling, 0..1"}),
    (("--max-tokens",), {"type": int, "help": "maximum tokens in the answer"}),
    (("--seed",), {"type": int, "help": "sampling seed (best effort)"}),
    (("--stop",), {"action": "append", "help": "stop sequence (repeatable, at most 4)"}),
    (("-s", "--system"), {"help": "system prompt for this thread"}),
    (("--reasoning",), {"choices": REASONING_EFFORTS, "help": "reasoning effort"}),
    (("--reasoning-tokens",), {"type": int, "metavar": "N", "help": "reasoning budget in tokens"}),
    (("--web",), {"action": "store_true", "help": "let the model search the web (OpenRouter's web_search tool)"}),
    (("--web-results",), {"type": int, "metavar": "N",
                          "help": "web results per search, {}..{} (implies --web)".format(*D.WEB_RESULTS_RANGE)}),
    (("--provider-order",), {"metavar": "A,B", "help": "providers to try first, comma-separated"}),
    (("--sort",), {"choices": SORTS, "help": "route to the cheapest, fastest or lowest-latency provider"}),
    (("--json",), {"action": "store_true", "help": "ask for a JSON object answer"}),
    (("--no-stream",), {"action": "store_true", "help": "wait for the whole answer instead of streaming"}),
    (("--chat",), {"metavar": "NAME", "help": "named thread to continue (default: 'default')"}),
    (("--new",), {"action": "store_true", "help": "start the thread over"}),
    (("--once",), {"action": "store_true", "help": "no memory: send only this message, keep nothing"}),
    (("-o", "--out"), {"metavar": "VAR", "help": "bind the answer text to a notebook variable"}),
    (("--dry-run",), {"action": "store_true", "help": "show the exact request, send nothing"}),
    (("--param",), {"action": "append", "metavar": "KEY=JSON", "help": "any other request field (repeatable)"}),
    (("--no-cache",), {"action": "store_true", "help": "bypass the response cache for this cell"}),
    (("--no-prompt-cache",), {"action": "store_true",
                              "help": "send no cache_control marker for this cell (see ChatMagics.prompt_cache)"}),
    (("--compare",), {"metavar": "A,B", "help": f"ask {D.COMPARE_MODELS[0]}..{D.COMPARE_MODELS[1]} models at once, "
                      "side by side; none continues the thread unless --keep"}),
    (("--keep",), {"metavar": "MODEL", "help": "with --compare: keep this model's answer as the turn"}),
    (("--schema",), {"metavar": "NAME",
                     "help": "structured answer: a pydantic model or JSON-schema dict variable"}),
    (("--context",), {"action": "append", "metavar": "VAR", "help": "describe a notebook variable to the model"}),
    (("--image",), {"action": "append", "metavar": "X",
                    "help": "attach an image: path, URL or variable (repeatable)"}),
    (("--audio",), {"action": "append", "metavar": "X",
                    "help": "attach wav/mp3 audio: path, URL or bytes variable (repeatable)"}),
    (("--file",), {"action": "append", "metavar": "X", "help": "attach a file, e.g. a PDF: path, URL or variable"}),
    (("--tools",), {"metavar": "F,G", "help": "notebook functions the model may call"}),
    (("--max-steps",), {"type": int, "metavar": "N",
                        "help": f"tool-call round trips at most (default {D.MAX_STEPS})"}),
    (("--cells",), {"metavar": "SPEC",
                    "help": "put executed cells before the message: all, N, N-M or -K (last K), comma-separated"}),
    (("--code",), {"action": "store_true", "help": "propose the answer's Python code as a new cell below"}),
    (("--map",), {"metavar": "VAR", "help": "send the cell once per row of a DataFrame, Series or list ($column)"}),
    (("--concurrency",), {"type": int, "metavar": "N",
                          "help": f"with --map: requests in flight (default {D.MAP_CONCURRENCY})"}),
    (("--fresh",), {"action": "store_true", "help": "with --map: send every row again (ignore earlier answers)"}),
    (("--batch",), {"action": "store_true", "help": "with --map: submit the rows as one Batch API job"}),
    (("words",), {"nargs": "*",
                  "help": "with %%%%chat: nothing; with %%chat: a subcommand, or a one-line prompt"}),
)


def with_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate ``func`` with one ``magic_arguments`` argument per entry of :data:`OPTIONS` (its ``.parser``)."""
    for flags, kwargs in reversed(OPTIONS):
        func = argument(*flags, **kwargs)(func)
    return magic_arguments()(func)


@with_options
def chat(line: str, cell: str | None = None) -> None:
    """The %%chat line's grammar, for faces that are not the magic (the panel's option box)."""


def parse(line: str, magic: Any = chat) -> Any:
    """Split the line (quotes as in a shell, JSON kept verbatim) and parse it with the options' parser."""
    try:
        argv = split_line(line)
    except ValueError as err:
        raise UsageError(f"cannot parse the magic line: {err}") from None
    try:
        return magic.parser.parse_args(argv)
    except UsageError as err:
        raise UsageError(str(err).strip().splitlines()[-1]) from None


def split_argument(arg: str) -> list[str]:
    """A subcommand's words, quoted the same way as the options (``%chat history 'a b'`` = ``--chat 'a b'``)."""
    try:
        return split_line(arg)
    except ValueError as err:
        raise UsageError(f"cannot parse the line: {err}") from None


def refuse_secrets(line: str) -> None:
    """Keys on the magic line would be saved in the notebook: refuse them before parsing."""
    if _KEY_LIKE.search(line):
        raise UsageError("an API key must not be written in a cell (it would be saved in the notebook); "
                         "use %chat key or the OPENROUTER_API_KEY environment variable")


def expand_variables(line: str, namespace: dict[str, Any], secrets: tuple[str, ...] = ()) -> str:
    """Replace ``$name`` with the notebook variable's value (JSON for containers); ``$$`` is a literal ``$``.

    IPython's own ``{}``/``$`` expansion is off for the magic (``no_var_expand``) so JSON survives;
    this is the explicit, documented way to refer to a variable instead. A value holding the key in use
    (``secrets``, ``$OPENROUTER_API_KEY``) or anything shaped like an OpenRouter key is refused, so it can
    reach no option, request, turn or error message.
    """
    from .redact import has_secret, secrets_in_use

    keys = secrets_in_use(*secrets)

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in namespace:
            raise UsageError(f"${name}: no such variable in the notebook")
        obj = namespace[name]
        text = json.dumps(obj) if isinstance(obj, (dict, list, tuple, bool)) or obj is None else str(obj)
        if has_secret(text, keys):
            raise UsageError(f"${name} holds an API key; keys are never put into a request (nothing was sent)")
        return _shell_quote(text)

    return _VAR.sub(value, line).replace("$$", "$")


def _shell_quote(text: str) -> str:
    """Quote a substituted value so ``arg_split`` keeps it as one token."""
    if text and not re.search(r"[\s'\"\\]", text):
        return text
    return "'" + text.replace("'", "'\"'\"'") + "'"


def build(ns: Any, defaults: Defaults) -> ChatOptions:
    """Validate a parsed namespace into :class:`ChatOptions` (raises ``UsageError`` on any mistake)."""
    params = request_params(ns, defaults)
    _check_run_options(ns)
    return ChatOptions(params=params, system=ns.system, thread=ns.chat, new=ns.new, memory=not ns.once,
                       out=identifier(ns.out) if ns.out else None, dry_run=ns.dry_run,
                       stream=False if ns.no_stream else defaults.stream, cache=not ns.no_cache,
                       schema=identifier(ns.schema, "--schema") if ns.schema else None,
                       context=[identifier(v, "--context") for v in ns.context or []],
                       images=list(ns.image or []), files=list(ns.file or []), audio=list(ns.audio or []),
                       prompt_cache=not ns.no_prompt_cache, **_compare(ns),
                       tools=[identifier(t, "--tools") for t in split_list(ns.tools, "--tools")] if ns.tools else [],
                       max_steps=ns.max_steps or D.MAX_STEPS, cells=_cells_spec(ns.cells), code=ns.code,
                       **_map_options(ns))


def _check_run_options(ns: Any) -> None:
    """The options that shape the turn rather than the request: step limit, output mode, thread name."""
    if ns.max_steps is not None and not 1 <= ns.max_steps <= D.MAX_STEPS_LIMIT:
        raise UsageError(f"--max-steps must be within 1..{D.MAX_STEPS_LIMIT} (got {ns.max_steps})")
    if ns.schema and ns.json:
        raise UsageError("use --schema or --json, not both")
    if ns.chat is not None and not ns.chat.strip():
        raise UsageError("--chat needs a thread name (leave --chat out for the default thread)")


def _compare(ns: Any) -> dict[str, Any]:
    """``--compare A,B[,C,D]`` and ``--keep MODEL``, checked: 2..4 distinct models, the kept one among them."""
    compare = getattr(ns, "compare", None)
    keep = getattr(ns, "keep", None)
    if not compare:
        if keep:
            raise UsageError("--keep MODEL goes with --compare A,B (or use %chat keep MODEL after a compare)")
        return {}
    models = [model_id(m) for m in split_list(compare, "--compare")]
    low, high = D.COMPARE_MODELS
    if not low <= len(models) <= high or len(set(models)) != len(models):
        raise UsageError(f"--compare needs {low} to {high} different models, comma-separated (got {compare!r})")
    if keep is not None and keep not in models:
        raise UsageError(f"--keep {keep!r} is not one of the compared models ({', '.join(models)})")
    if ns.no_stream:
        raise UsageError("--compare streams the answers side by side; drop --no-stream")
    return {"compare": models, "keep": keep}


def _cells_spec(spec: str | None) -> str | None:
    """``--cells SPEC`` checked now, so a mistake is one line before anything is sent."""
    if spec is None:
        return None
    from .cellsblock import parse_spec

    try:
        parse_spec(spec)
    except ValueError as err:
        raise UsageError(str(err)) from None
    return spec.strip()


def _map_options(ns: Any) -> dict[str, Any]:
    """``--map`` and its companions, checked together (they mean nothing without ``--map``)."""
    if not ns.map:
        used = [flag for flag, on in (("--concurrency", ns.concurrency is not None), ("--fresh", ns.fresh),
                                      ("--batch", ns.batch)) if on]
        if used:
            raise UsageError(f"{', '.join(used)} only applies with --map VAR")
        return {}
    clash = [flag for flag, on in (("--new", ns.new), ("--tools", ns.tools), ("--image", ns.image),
                                   ("--file", ns.file), ("--compare", getattr(ns, "compare", None))) if on]
    if clash:
        raise UsageError(f"--map sends one-shot requests: it cannot be combined with {', '.join(clash)}")
    low, high = D.MAP_CONCURRENCY_RANGE
    concurrency = ns.concurrency if ns.concurrency is not None else D.MAP_CONCURRENCY
    if not low <= concurrency <= high:
        raise UsageError(f"--concurrency must be within {low}..{high} (got {concurrency})")
    return {"map_var": identifier(ns.map, "--map"), "concurrency": concurrency, "fresh": ns.fresh,
            "batch": ns.batch}
