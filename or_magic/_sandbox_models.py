"""Scripted fake models for :mod:`or_magic.sandbox`: the catalogue, what each model answers, error bodies.

A model's answer is a :class:`Plan`: a list of steps (deltas, hand-shaped chunks, pauses, a stall, a cut)
that the server either streams as SSE or folds into one non-streaming JSON body. Keeping one description per
model means the streaming and non-streaming answers cannot drift apart. Standard library only: the sandbox
must stay an honest fake that shares no code with the client it tests.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import random
import re
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PROVIDER = "Sandbox"
USER_ID = "user_sandbox"
DEFAULT_MODEL = "sandbox/echo"
REASONING_FORMAT = "anthropic-claude-v1"

# --------------------------------------------------------------------------------------------------- steps


@dataclass
class Delta:
    """One ordinary chunk for choice 0; the server adds the envelope and ``role`` (real chunks repeat it)."""

    delta: dict[str, Any]
    finish: str | None = None
    native: str | None = None


@dataclass
class Event:
    """A hand-shaped chunk (mid-stream errors); ``envelope=False`` sends the body bare, without id/object."""

    body: dict[str, Any]
    envelope: bool = True


@dataclass
class Raw:
    """A ``data:`` line sent verbatim, e.g. invalid JSON."""

    data: str


@dataclass
class Wait:
    """Silence before the next step; long silences carry ``: OPENROUTER PROCESSING`` keep-alives."""

    seconds: float


@dataclass
class Stall:
    """Total silence, no keep-alives, until the client leaves, the server stops, or ``seconds`` pass."""

    seconds: float


@dataclass
class Cut:
    """Drop the connection abruptly (no terminating chunk), like a crashed upstream."""


Step = Delta | Event | Raw | Wait | Stall | Cut


@dataclass
class HttpError:
    """A failure before any streaming: a plain HTTP error response."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Plan:
    """What a scripted model answers."""

    steps: list[Step] = field(default_factory=list)
    done: bool = True  # send ``data: [DONE]`` at the end
    send_usage: bool = True  # send the usage chunk before [DONE]
    error: HttpError | None = None  # fail before streaming instead
    body: bytes | None = None  # non-streaming body override (malformed JSON)
    hidden_reasoning: int = 0  # reasoning tokens billed but not returned (reasoning.exclude)
    searches: int = 0  # web searches billed


@dataclass
class Ask:
    """The parts of a chat request the scripts look at."""

    body: dict[str, Any]
    prompt: str  # text of the last user message
    has_auth: bool
    tally: Callable[[str], int]  # count calls per key (for sandbox/flaky), reset with the server

    @functools.cached_property
    def params(self) -> dict[str, float]:
        """``key=number`` knobs written in the prompt, e.g. ``chars=200000 rate=0``."""
        return {k: float(v) for k, v in _PARAM_RE.findall(self.prompt)}

    def param(self, name: str, default: float) -> float:
        return self.params.get(name, default)

    @property
    def max_tokens(self) -> int | None:
        value = self.body.get("max_completion_tokens") or self.body.get("max_tokens")
        return value if isinstance(value, int) and value > 0 else None


_PARAM_RE = re.compile(r"\b([a-z_]+)=(\d+(?:\.\d+)?)")
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_PIECE_RE = re.compile(r"\S+\s*|\s+")


def count_tokens(text: str) -> int:
    """A crude, deterministic token count: words and punctuation marks."""
    return len(_TOKEN_RE.findall(text))


def message_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a parts list joined by newlines."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(t for t in texts if isinstance(t, str))
    return ""


def last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message.get("content"))
    return ""


# ---------------------------------------------------------------------------------------------- catalogue

_CREATED = 1767225600  # 2026-01-01, fixed so the catalogue is deterministic
_BASE_PARAMS = ["max_tokens", "temperature", "top_p", "stop", "seed", "frequency_penalty", "presence_penalty"]


def _entry(
    model_id: str,
    title: str,
    description: str,
    *,
    inputs: tuple[str, ...] = ("text",),
    outputs: tuple[str, ...] = ("text",),
    extra_params: tuple[str, ...] = (),
    prompt: str = "0.0000001",
    completion: str = "0.0000004",
    web_search: str = "0",
    **extra: Any,
) -> dict[str, Any]:
    """One ``GET /models`` item, in the shape OpenRouter publishes."""
    context = 65536
    return {
        "id": model_id,
        "canonical_slug": model_id,
        "name": f"Sandbox (fake): {title}",
        "created": _CREATED,
        "description": f"Offline fake model, no real LLM behind it. {description}",
        "context_length": context,
        "architecture": {
            "modality": f"{'+'.join(inputs)}->{'+'.join(outputs)}",
            "input_modalities": list(inputs),
            "output_modalities": list(outputs),
            "tokenizer": "Other",
            "instruct_type": None,
        },
        "pricing": {
            "prompt": prompt,
            "completion": completion,
            "request": "0",
            "image": "0",
            "web_search": web_search,
            "internal_reasoning": "0",
        },
        "top_provider": {"context_length": context, "max_completion_tokens": 16384, "is_moderated": False},
        "per_request_limits": None,
        "supported_parameters": _BASE_PARAMS + list(extra_params),
        "default_parameters": {},
        "expiration_date": None,
        "knowledge_cutoff": None,
        "links": {"details": f"/api/v1/models/{model_id}/endpoints"},
        **extra,
    }


_MIDSTREAM_SHAPES = {
    "documented": "top-level error object plus a choice with finish_reason 'error' (the documented form)",
    "string-code": "error.code is a string ('server_error'), not a number",
    "raw-metadata": "older metadata {raw, provider_name} with raw as an object, no error_type",
    "empty-choices": "error next to choices: [] (no finish_reason at all)",
    "bare": "a bare {error, user_id} event with no id/choices, and no partial answer before it",
    "finish-only": "finish_reason 'error', native_finish_reason MALFORMED_FUNCTION_CALL, no error object",
}
ERROR_STATUSES = (400, 401, 402, 403, 404, 408, 413, 418, 422, 429, 500, 502, 503, 524, 529)


def _catalogue() -> dict[str, dict[str, Any]]:
    knobs = (
        "Prompt knobs: delay=S (silence before the first token), rate=N (chunks/s, 0 = no pacing). With a "
        "json_schema response_format it answers JSON that fits the schema (invalid_json=1: JSON that violates "
        "it, invalid_json=2: broken JSON, json_fence=1: inside a ```json fence)."
    )
    entries = [
        _entry("sandbox/echo", "Echo", f"Streams back your last message word by word. {knobs}"),
        _entry(
            "sandbox/markdown", "Markdown showcase", "Headings, lists, a table, code, inline/display math."
        ),
        _entry(
            "sandbox/reasoning",
            "Reasoning",
            "Streams reasoning (Anthropic-style, signed), then the answer. Honours reasoning.exclude.",
            extra_params=("reasoning", "include_reasoning"),
            reasoning={
                "supported_efforts": ["high", "medium", "low", "minimal", "none"],
                "default_effort": "medium",
                "default_enabled": True,
                "supports_max_tokens": True,
                "mandatory": False,
            },
        ),
        _entry(
            "sandbox/image",
            "Image",
            "A short text and one generated 64x64 PNG (delta.images).",
            inputs=("text", "image"),
            outputs=("image", "text"),
            extra_params=("modalities", "image_config"),
            completion="0.0000025",
        ),
        _entry(
            "sandbox/tools",
            "Tools",
            "Calls your first function tool with arguments built from its schema; answers tool results.",
            extra_params=("tools", "tool_choice", "parallel_tool_calls"),
        ),
        _entry(
            "sandbox/web",
            "Web citations",
            "An answer with url_citation annotations (example.org).",
            web_search="0.004",
        ),
        _entry(
            "sandbox/long",
            "Long answer",
            "A long deterministic markdown answer. Knobs: chars=N (size), rate=N (chunks/s, 0 = as fast as "
            "possible), chunk=N (characters per chunk). Defaults chars=4000 rate=200 chunk=20.",
        ),
        _entry("sandbox/slow", "Slow echo", "Echo paced at rate=N words per second (default 10)."),
        _entry(
            "sandbox/flaky",
            "Flaky",
            "Fails with 503 the first fail=N times (default 2) per prompt, then echoes.",
        ),
        _entry(
            "sandbox/stall", "Stall", "A few chunks, then total silence for stall=S seconds (default 600)."
        ),
        _entry("sandbox/disconnect", "Disconnect", "A few chunks, then drops the connection abruptly."),
        _entry(
            "sandbox/malformed", "Malformed", "A stream with one data line of invalid JSON in the middle."
        ),
        _entry(
            "sandbox/ratelimit", "Rate limited", "Upstream 429 with Retry-After: retry_after=S (default 1)."
        ),
        _entry(
            "sandbox/provider-error", "Provider error", "400 'Provider returned error' with metadata.raw."
        ),
        _entry("sandbox/error-html", "HTML error", "503 with a Cloudflare-style HTML page."),
        _entry(
            "sandbox/error-200", "Error in a 200", "HTTP 200 whose body (or only stream event) is an error."
        ),
    ]
    entries += [
        _entry(f"sandbox/midstream-{shape}", f"Mid-stream error ({shape})", f"Partial answer, then {text}.")
        for shape, text in _MIDSTREAM_SHAPES.items()
    ]
    entries += [
        _entry(
            f"sandbox/error-{status}",
            f"HTTP {status}",
            f"Always fails with HTTP {status} and a realistic body.",
        )
        for status in ERROR_STATUSES
    ]
    return {entry["id"]: entry for entry in entries}


MODELS: dict[str, dict[str, Any]] = _catalogue()


def list_models(output_modalities: str | None, supported_parameters: str | None) -> list[dict[str, Any]]:
    """``GET /models`` filtering, as OpenRouter does it: image-producing models only when asked for."""
    wanted = {m.strip() for m in (output_modalities or "text").split(",") if m.strip()}
    needed = {p.strip() for p in (supported_parameters or "").split(",") if p.strip()}
    out = []
    for model in MODELS.values():
        produces = set(model["architecture"]["output_modalities"])
        if "all" not in wanted and (not produces & wanted or ("image" in produces and "image" not in wanted)):
            continue
        if not needed <= set(model["supported_parameters"]):
            continue
        out.append(model)
    return out


# ------------------------------------------------------------------------------------------------ helpers


def pieces(text: str) -> list[str]:
    """Word-sized pieces whose concatenation is exactly ``text``."""
    return _PIECE_RE.findall(text)


def _limit(parts: list[str], max_tokens: int | None) -> tuple[list[str], bool]:
    """Keep whole pieces while they fit ``max_tokens``; report whether the answer was cut."""
    if max_tokens is None:
        return parts, False
    kept, used = [], 0
    for part in parts:
        used += count_tokens(part)
        if used > max_tokens:
            return kept, True
        kept.append(part)
    return kept, False


def _paced(parts: list[str], rate: float, **delta: Any) -> list[Step]:
    """Content deltas, ``rate`` per second (0 = back to back)."""
    steps: list[Step] = []
    gap = 1.0 / rate if rate > 0 else 0.0
    for part in parts:
        if gap:
            steps.append(Wait(gap))
        steps.append(Delta({"content": part, **delta}))
    return steps


_NATIVE = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "error": "error"}


def _finish(reason: str = "stop") -> Delta:
    return Delta({"content": ""}, reason, _NATIVE[reason])


def _text_plan(ask: Ask, text: str, rate: float) -> Plan:
    """Stream ``text`` word by word, honouring max_tokens and the ``rate=`` knob."""
    parts, cut = _limit(pieces(text), ask.max_tokens)
    steps = _paced(parts, ask.param("rate", rate))
    return Plan([*steps, _finish("length" if cut else "stop")])


def _short(text: str, size: int = 100) -> str:
    """Cut long text in the middle with '...', as OpenRouter does for flagged_input."""
    return text if len(text) <= size else f"{text[: size // 2]}...{text[-(size // 2 - 3) :]}"


_ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _stable_id(seed: str, size: int) -> str:
    """An id that is the same for the same request, so re-runs of a tool call look alike."""
    return "".join(random.Random(seed).choices(_ALPHANUMERIC, k=size))


def new_generation_id(created: int) -> str:
    """``gen-<unix>-<20 chars>``, the shape of real generation ids."""
    return f"gen-{created}-{''.join(random.choices(_ALPHANUMERIC, k=20))}"


# ------------------------------------------------------------------------------------------------- models


def _echo(ask: Ask) -> Plan:
    rate = 200.0 if len(pieces(ask.prompt)) <= 200 else 0.0  # long prompts come back at once
    return _text_plan(ask, ask.prompt, rate)


def _slow(ask: Ask) -> Plan:
    return _text_plan(ask, ask.prompt, 10.0)


# A raw string keeps the LaTeX backslashes; the escaped docstring quotes in the code sample are undone below.
MARKDOWN_SHOWCASE = r"""# Sandbox markdown showcase

This answer comes from **sandbox/markdown**, a *fake* model that exercises the renderer: `inline code`,
**bold**, *italic*, ~~strikethrough~~ and a [link to example.org](https://example.org/sandbox/markdown).

## Lists

- First level item
  - Nested item with `code`
  - Another nested item
    1. Third level, numbered
    2. Still numbered
- Back to the first level

1. Ordered one
2. Ordered two

## A table

| Model | Streams | Notes |
|:------|:-------:|------:|
| `sandbox/echo` | yes | repeats you |
| `sandbox/markdown` | yes | this answer |
| `sandbox/long` | yes | as long as you like |

## Code

```python
def fib(n: int) -> int:
    \"\"\"Return the n-th Fibonacci number.\"\"\"
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


print([fib(i) for i in range(10)])
```

## Math

Euler's identity inline: $e^{i\pi}+1=0$, a sum with underscores and stars: $\sum_{i=1}^n a_i * b_i$,
and a display integral:

$$\int_0^1 x^2\,dx = \frac13$$

> A blockquote: the sandbox never calls a real model, so nothing here costs money.

That is the whole showcase.
""".replace('\\"', '"')


def _markdown(ask: Ask) -> Plan:
    return _text_plan(ask, MARKDOWN_SHOWCASE, 200.0)


def _reasoning_wanted(body: dict[str, Any]) -> tuple[bool, bool]:
    """(reason at all, return the reasoning) from ``reasoning`` and legacy ``include_reasoning``."""
    cfg = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
    if cfg.get("enabled") is False or cfg.get("effort") == "none" or body.get("reasoning_effort") == "none":
        return False, False
    excluded = cfg.get("exclude") is True or body.get("include_reasoning") is False
    return True, not excluded


def _reasoning(ask: Ask) -> Plan:
    topic = _short(ask.prompt.strip() or "nothing in particular", 80)
    thought = (
        f"The user asks: “{topic}”. Let me think about this step by step. This is the sandbox, so no real "
        "model is thinking; the reasoning is scripted. First, restate the question. Second, look for the "
        "simplest answer. Third, check it. The answer should be short and honest."
    )
    answer = (
        f"**Answer.** You asked: “{topic}”. After thinking it over (see the reasoning above), the sandbox "
        "concludes that the answer is **42** — a scripted reply, not a real model's."
    )
    think, show = _reasoning_wanted(ask.body)
    steps: list[Step] = [Wait(0.05)]
    if think and show:
        for part in pieces(thought):
            steps.append(Wait(0.01))
            steps.append(Delta({"content": "", "reasoning": part, "reasoning_details": [_detail(part)]}))
        signature = base64.b64encode(hashlib.sha256(thought.encode()).digest() * 2).decode()
        steps.append(Delta({"content": "", "reasoning": "", "reasoning_details": [_detail("", signature)]}))
    elif think:
        steps.append(Wait(0.01 * len(pieces(thought))))  # it still thinks, silently
    steps.append(Wait(0.05))
    plan = _text_plan(ask, answer, 100.0)
    plan.steps[:0] = steps
    plan.hidden_reasoning = count_tokens(thought) if think and not show else 0
    return plan


def _detail(text: str, signature: str | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"type": "reasoning.text", "text": text}
    if signature is not None:
        detail["signature"] = signature
    detail.update(index=0, format=REASONING_FORMAT)
    return detail


@functools.cache
def gradient_png(width: int = 64, height: int = 64) -> bytes:
    """A real RGB PNG (a colour gradient), built with zlib and struct."""
    rows = b"".join(
        b"\x00"
        + bytes(v for x in range(width) for v in (x * 255 // (width - 1), y * 255 // (height - 1), 170))
        for y in range(height)
    )

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def _image(ask: Ask) -> Plan:
    url = "data:image/png;base64," + base64.b64encode(gradient_png()).decode()
    text = "Here is a 64×64 colour gradient, generated offline by the sandbox (no real image model)."
    plan = _text_plan(ask, text, 100.0)
    image = Delta({"content": "", "images": [{"type": "image_url", "image_url": {"url": url}}]})
    plan.steps.insert(len(plan.steps) - 1, image)
    return plan


# --- tools


def _example(schema: Any, name: str, depth: int = 0, root: Any = None) -> Any:
    """A plausible value for a JSON schema: enums, defaults and formats first, then by type and name.

    Local ``$ref``s resolve against ``root`` (the whole schema); deep in a recursive schema, nullable choices
    become null and arrays empty, so the value stays finite and still valid.
    """
    if not isinstance(schema, dict) or depth > 12:
        return f"example {name}"
    root = schema if root is None else root
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = _resolve_ref(root, ref)
        if isinstance(target, dict):
            merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            return _example(merged, name, depth + 1, root)
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if options:
            if depth > 4 and any(isinstance(o, dict) and o.get("type") == "null" for o in options):
                return None
            return _example(options[0], name, depth + 1, root)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = "null" if depth > 4 and "null" in kind else next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties") or {}
        keys = schema.get("required") or list(props)
        return {k: _example(props.get(k, {}), k, depth + 1, root) for k in keys}
    if kind == "array":
        least = schema.get("minItems", 0) if isinstance(schema.get("minItems"), int) else 0
        if depth > 4 and least == 0:
            return []
        return [_example(schema.get("items", {}), name, depth + 1, root) for _ in range(max(1, least))]
    if kind in ("integer", "number"):
        return _example_number(schema, kind)
    simple = {"boolean": True, "null": None}
    return simple[kind] if kind in simple else _example_string(schema, name)


def _resolve_ref(root: Any, ref: str) -> Any:
    """The node a local JSON pointer (``#/$defs/Name``) points at, or None."""
    if not ref.startswith("#"):
        return None
    node = root
    for part in [p for p in ref[1:].split("/") if p]:
        node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, dict) else None
    return node


def _example_number(schema: dict[str, Any], kind: str) -> float | int:
    """3 (or 2.5), moved inside minimum/maximum (inclusive or exclusive) when the schema has bounds."""
    value: float = 3 if kind == "integer" else 2.5
    for key, exclusive, sign in (
        ("minimum", False, 1),
        ("exclusiveMinimum", True, 1),
        ("maximum", False, -1),
        ("exclusiveMaximum", True, -1),
    ):
        bound = schema.get(key)
        if not isinstance(bound, (int, float)) or isinstance(bound, bool):
            continue
        if kind == "integer":
            edge = math.ceil(bound) if sign > 0 else math.floor(bound)
            if exclusive and edge == bound:
                edge += sign
        else:
            edge = bound + sign * 0.5 if exclusive else bound
        value = max(value, edge) if sign > 0 else min(value, edge)
    return int(value) if kind == "integer" else value


def _example_string(schema: dict[str, Any], name: str) -> str:
    formats = {
        "date": "2026-01-15",
        "date-time": "2026-01-15T12:00:00Z",
        "email": "someone@example.org",
        "uri": "https://example.org/sandbox",
        "uuid": "00000000-0000-4000-8000-000000000000",
    }
    if schema.get("format") in formats:
        return formats[schema["format"]]
    lowered = name.lower()
    value = f"example {name}"
    for hint, known in (
        ("city", "Paris"),
        ("location", "Paris, France"),
        ("unit", "celsius"),
        ("query", "sandbox test query"),
        ("url", "https://example.org/sandbox"),
    ):
        if hint in lowered:
            value = known
            break
    least, most = schema.get("minLength"), schema.get("maxLength")
    if isinstance(least, int) and len(value) < least:
        value += "x" * (least - len(value))
    if isinstance(most, int) and len(value) > most:
        value = value[: max(most, 0)]
    return value


def _chosen_function(body: dict[str, Any]) -> dict[str, Any] | None:
    """The function tool to call: the one ``tool_choice`` names, else the first; None if calls are off."""
    functions = [
        t["function"]
        for t in body.get("tools") or []
        if isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("function"), dict)
    ]
    choice = body.get("tool_choice")
    if not functions or choice == "none":
        return None
    if isinstance(choice, dict):
        named = (choice.get("function") or {}).get("name")
        return next((f for f in functions if f.get("name") == named), functions[0])
    return functions[0]


def _tool_rounds(messages: list[Any]) -> int:
    """How many tool results came back since the user's last message (0 when the last is not a tool's)."""
    if not messages or not isinstance(messages[-1], dict) or messages[-1].get("role") != "tool":
        return 0
    rounds = 0
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") == "user":
            break
        rounds += message.get("role") == "assistant" and bool(message.get("tool_calls"))
    return rounds


def _tool_result_answer(messages: list[Any]) -> str:
    result = messages[-1]
    call_id = result.get("tool_call_id")
    name = "the tool"
    for message in messages:
        for call in (message.get("tool_calls") or []) if isinstance(message, dict) else []:
            if isinstance(call, dict) and call.get("id") == call_id:
                name = f"`{(call.get('function') or {}).get('name', 'the tool')}`"
    quoted = "\n".join(f"> {line}" for line in message_text(result.get("content")).splitlines() or [""])
    closing = "That is the (scripted) answer, based on the tool result."
    return f"{name[0].upper()}{name[1:]} returned:\n\n{quoted}\n\n{closing}"


def _tools(ask: Ask) -> Plan:
    messages = ask.body.get("messages") or []
    rounds = _tool_rounds(messages)
    if rounds and rounds >= int(ask.param("calls", 1)):  # calls=N: keep calling until N results came back
        return _text_plan(ask, _tool_result_answer(messages), 100.0)
    function = _chosen_function(ask.body)
    if function is None:
        return _text_plan(
            ask, 'No tools were given (or tool_choice is "none"), so the sandbox just answers.', 100.0
        )
    name = function.get("name", "tool")
    arguments = json.dumps(_example(function.get("parameters") or {}, name), ensure_ascii=False)
    call_id = "call_" + _stable_id(f"{name}{ask.prompt}{rounds}", 24)
    first = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
    steps: list[Step] = _paced(pieces(f"I'll call `{name}`."), 100.0)
    steps.append(Delta({"content": None, "tool_calls": [first]}))
    size = max(1, math.ceil(len(arguments) / 4))
    for start in range(0, len(arguments), size):
        steps += [
            Wait(0.01),
            Delta(
                {
                    "content": None,
                    "tool_calls": [{"index": 0, "function": {"arguments": arguments[start : start + size]}}],
                }
            ),
        ]
    steps.append(_finish("tool_calls"))
    return Plan(steps)


# --- web

_SOURCES = [
    (
        "https://example.org/sandbox/offline",
        "Why the sandbox works offline",
        "The sandbox answers on 127.0.0.1 without any network access.",
        "The sandbox never leaves your machine",
    ),
    (
        "https://example.org/sandbox/citations",
        "Citations in chat completions",
        "Web results come back as url_citation annotations with start and end indices.",
        "citations arrive as annotations on a late chunk",
    ),
]


def _web(ask: Ask) -> Plan:
    spans = [f"[{title}]({url})" for url, title, _, _ in _SOURCES]
    text = (
        f"Here is what a (fake) web search found. {_SOURCES[0][3]} {spans[0]}, and "
        f"{_SOURCES[1][3]} {spans[1]}. Nothing here was fetched from the real web."
    )
    annotations = []
    for (url, title, content, _), span in zip(_SOURCES, spans, strict=True):
        start = text.index(span)
        annotations.append(
            {
                "type": "url_citation",
                "url_citation": {
                    "url": url,
                    "title": title,
                    "content": content,
                    "start_index": start,
                    "end_index": start + len(span),
                },
            }
        )
    plan = _text_plan(ask, text, 100.0)
    plan.steps.insert(len(plan.steps) - 1, Delta({"content": "", "annotations": annotations}))
    plan.searches = 1
    return plan


# --- long

_TOPICS = [
    "Streaming",
    "Frozen blocks",
    "Throttling",
    "Tables",
    "Math",
    "Code",
    "Usage and cost",
    "Interrupts",
]
_SUBJECTS = [
    "The streaming renderer",
    "A frozen block",
    "The sandbox server",
    "Each chunk",
    "The front end",
    "A markdown table",
    "The usage counter",
    "An interrupted answer",
    "The display handle",
]
_VERBS = ["keeps", "measures", "renders", "splits", "buffers", "forwards", "checks", "collects", "reuses"]
_OBJECTS = [
    "the open tail of the answer",
    "every fenced code block",
    "a few dozen updates per second",
    "the final bundle",
    "inline math like $a^2+b^2=c^2$",
    "the partial output",
    "`text/html` output",
    "a **bold** claim and an *italic* aside",
    "the cost of $\\sum_i t_i$ tokens",
]
_ENDINGS = [
    ".",
    ", which is the point.",
    " without re-sending old blocks.",
    " in linear time.",
    " (deterministically).",
]


def _sentence(rng: random.Random) -> str:
    return f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}{rng.choice(_ENDINGS)}"


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(3, 6)))


def _bullets(rng: random.Random) -> str:
    lines = []
    for i in range(rng.randint(3, 5)):
        lines.append(f"- Point {i + 1}: {_sentence(rng)}")
        if rng.random() < 0.4:
            lines += [f"  - detail {chr(97 + j)}: {rng.choice(_OBJECTS)}" for j in range(rng.randint(1, 3))]
    return "\n".join(lines)


def _numbered(rng: random.Random) -> str:
    return "\n".join(f"{i + 1}. {_sentence(rng)}" for i in range(rng.randint(3, 6)))


def _code(rng: random.Random) -> str:
    name, factor, limit = (
        rng.choice(["scale", "tally", "shrink", "spread"]),
        rng.randint(2, 9),
        rng.randint(5, 50),
    )
    return (
        f"```python\ndef {name}(values: list[int]) -> list[int]:\n"
        f'    """Multiply by {factor} and keep what stays under {limit * factor}."""\n'
        f"    out = [v * {factor} for v in values]\n    return [v for v in out if v < {limit * factor}]\n\n\n"
        f"print({name}(list(range({limit}))))\n```"
    )


def _table(rng: random.Random) -> str:
    rows = ["| Item | Count | Ratio |", "|:-----|------:|------:|"]
    rows += [
        f"| {rng.choice(_TOPICS)} | {rng.randint(1, 999)} | {rng.random():.3f} |"
        for _ in range(rng.randint(3, 6))
    ]
    return "\n".join(rows)


def _quote(rng: random.Random) -> str:
    return f"> {_sentence(rng)}\n> {_sentence(rng)}"


_BLOCKS = [_paragraph, _paragraph, _paragraph, _bullets, _numbered, _code, _table, _quote]


@functools.lru_cache(maxsize=8)
def long_text(chars: int) -> str:
    """A deterministic markdown document of exactly ``chars`` characters (the tail is prose, cut to fit)."""
    rng = random.Random(chars)
    blocks: list[str] = []
    size, section = 0, 0
    while True:
        if section == 0 or rng.random() < 0.2:
            section += 1
            block = f"## {section}. {rng.choice(_TOPICS)}"
        else:
            block = rng.choice(_BLOCKS)(rng)
        if size + len(block) + 2 > chars:
            break
        blocks.append(block)
        size += len(block) + 2
    text = "\n\n".join(blocks) + ("\n\n" if blocks else "")
    filler = ""
    while len(text) + len(filler) < chars:
        filler += _paragraph(rng) + " "
    return (text + filler)[:chars]


def _long(ask: Ask) -> Plan:
    chars, size = max(0, int(ask.param("chars", 4000))), max(1, int(ask.param("chunk", 20)))
    text = long_text(chars)
    parts = [text[i : i + size] for i in range(0, len(text), size)]
    parts, cut = _limit(parts, ask.max_tokens)
    return Plan([*_paced(parts, ask.param("rate", 200.0)), _finish("length" if cut else "stop")])


# --- failures that happen after the stream has started

_PARTIAL = (
    "This partial answer was cut off by a simulated provider failure, so keep it and mark it interrupted."
)


def _partial(rate: float = 50.0) -> list[Step]:
    return _paced(pieces(_PARTIAL), rate)


def _error_choice(native: str | None = "error") -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "delta": {"content": ""}, "finish_reason": "error"}
    if native is not None:
        choice["native_finish_reason"] = native
    return choice


def _free_limit_error() -> dict[str, Any]:
    """The error that free-model daily limits produce, seen as a bare event and as a 200 body."""
    reset = _next_minute_ms()
    return {
        "error": {
            "code": 429,
            "message": "Rate limit exceeded: free-models-per-day. Add 10 credits to unlock "
            "1000 free model requests per day",
            "metadata": {
                "headers": {
                    "X-RateLimit-Limit": "50",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(reset),
                },
                "provider_name": None,
            },
        },
        "user_id": USER_ID,
    }


def _bare_error(ask: Ask) -> Plan:
    """A stream whose only event is a bare ``{error, user_id}``; non-streaming, a 200 error-only body."""
    return Plan([Event(_free_limit_error(), envelope=False)], done=False, send_usage=False)


_UPSTREAM_OVERLOADED = {
    "error": {"type": "overloaded_error", "message": "Upstream overloaded while streaming"}
}
# shape -> (error object, choices next to it, whether [DONE] still follows)
_MIDSTREAM_ERRORS: dict[str, tuple[dict[str, Any], list[dict[str, Any]], bool]] = {
    "documented": (
        {
            "code": 502,
            "message": "Provider disconnected unexpectedly",
            "metadata": {"error_type": "provider_unavailable", "provider_code": "ECONNRESET"},
        },
        [_error_choice()],
        True,
    ),
    "string-code": (
        {"code": "server_error", "message": "Provider disconnected"},
        [_error_choice(None)],
        False,
    ),
    "raw-metadata": (
        {
            "code": 503,
            "message": "Provider returned error",
            "metadata": {"raw": _UPSTREAM_OVERLOADED, "provider_name": PROVIDER},
        },
        [_error_choice()],
        True,
    ),
    "empty-choices": (
        {"code": 500, "message": "Internal Server Error", "metadata": {"error_type": "server"}},
        [],
        False,
    ),
}


def _midstream(shape: str) -> Callable[[Ask], Plan]:
    """A partial answer, then the failure in one of the shapes real streams show (OPENROUTER.md 4.5)."""

    def script(ask: Ask) -> Plan:
        if shape == "bare":
            return _bare_error(ask)
        if shape == "finish-only":
            return Plan([*_partial(), Delta({"content": ""}, "error", "MALFORMED_FUNCTION_CALL")])
        error, choices, done = _MIDSTREAM_ERRORS[shape]
        return Plan([*_partial(), Event({"error": error, "choices": choices})], done=done, send_usage=False)

    return script


def _stall(ask: Ask) -> Plan:
    quiet = Stall(ask.param("stall", 600.0))
    rest = _paced(pieces(" ...and the line came back."), 50.0)
    return Plan(
        [*_paced(pieces("Thinking out loud before the line goes quiet"), 50.0), quiet, *rest, _finish()]
    )


def _disconnect(ask: Ask) -> Plan:
    return Plan([*_paced(pieces("The upstream connection is about to drop"), 50.0), Cut()])


def _malformed(ask: Ask) -> Plan:
    good = _paced(pieces("Two good chunks, "), 50.0)
    bad = Raw(
        '{"id":"gen-broken","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"bro'
    )
    rest = _paced(pieces("then a broken line, then more good chunks."), 50.0)
    truncated = (
        b'{"id":"gen-broken","object":"chat.completion","choices":[{"index":0,"message":{"content":"bro'
    )
    return Plan([*good, bad, *rest, _finish()], body=truncated)


# --- failures before the stream starts


def _next_minute_ms() -> int:
    return (int(time.time()) // 60 + 1) * 60_000


def _error_json(error: dict[str, Any], *, user: bool = True) -> bytes:
    body: dict[str, Any] = {"error": error}
    if user:
        body["user_id"] = USER_ID
    return json.dumps(body, ensure_ascii=False).encode()


def _retry_headers(ask: Ask, default: float | None) -> dict[str, str]:
    """``Retry-After`` from ``retry_after=S`` (else ``default``); ``retry-after-ms`` from ``retry_after_ms``.

    Real servers send these on 429 and 503; the knobs let client tests exercise each header.
    """
    headers = {}
    seconds = ask.params.get("retry_after", default)
    if seconds is not None:
        headers["Retry-After"] = str(math.ceil(seconds))
    if "retry_after_ms" in ask.params:
        headers["retry-after-ms"] = str(int(ask.params["retry_after_ms"]))
    return headers


def _provider_error(status: int, raw: str, **extra: Any) -> dict[str, Any]:
    return {
        "code": status,
        "message": "Provider returned error",
        "metadata": {"raw": raw, "provider_name": PROVIDER, **extra},
    }


_ANTHROPIC_TOO_LONG = {
    "type": "error",
    "error": {
        "type": "invalid_request_error",
        "message": "prompt is too long: 215000 tokens > 200000 maximum",
    },
}
_ENVOY_RESET = (
    "upstream connect error or disconnect/reset before headers. reset reason: connection termination"
)
# Bodies that do not depend on the request; 401, 403 and 429 are built per request below.
_ERRORS: dict[int, dict[str, Any]] = {
    400: _provider_error(400, json.dumps(_ANTHROPIC_TOO_LONG)),
    402: {
        "code": 402,
        "message": "Insufficient credits. This account never purchased credits. Make sure your key is on the "
        "correct account or org, and if so, purchase more at https://openrouter.ai/settings/credits",
    },
    404: {
        "code": 404,
        "message": "No endpoints found matching your data policy (Zero data retention). "
        "Configure: https://openrouter.ai/settings/privacy",
    },
    408: {
        "code": 408,
        "message": "Request timed out waiting for the provider",
        "metadata": {"error_type": "timeout", "provider_name": PROVIDER},
    },
    413: {
        "code": 413,
        "message": "Request payload too large: the request body exceeds the provider's limit",
        "metadata": {"error_type": "payload_too_large", "provider_name": PROVIDER},
    },
    418: {
        "code": 418,
        "message": "I'm a teapot: the sandbox brews no coffee (a status with no dedicated class)",
    },
    422: {
        "code": 422,
        "message": "Invalid argument: 'temperature' must be between 0 and 2",
        "metadata": {"error_type": "unprocessable", "provider_name": PROVIDER},
    },
    500: {"code": 500, "message": "Internal Server Error", "metadata": {"error_type": "server"}},
    502: _provider_error(502, _ENVOY_RESET, error_type="provider_unavailable"),
    503: {
        "code": 503,
        "message": "No instances available",
        "metadata": {"error_type": "provider_overloaded", "provider_name": PROVIDER},
    },
    524: {
        "code": 524,
        "message": "Provider timed out (edge timeout)",
        "metadata": {"error_type": "timeout", "provider_name": PROVIDER},
    },
    529: _provider_error(
        529, json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    ),
}


def _moderation_error(ask: Ask, model: str) -> dict[str, Any]:
    return {
        "code": 403,
        "message": f'{model} requires moderation on {PROVIDER}. Your input was flagged for "harassment". '
        "No credits were charged.",
        "metadata": {
            "reasons": ["harassment"],
            "flagged_input": _short(ask.prompt),
            "provider_name": PROVIDER,
            "model_slug": model,
        },
    }


def status_error(status: int, ask: Ask, model: str) -> HttpError:
    """A realistic OpenRouter error response for ``status``."""
    retry = _retry_headers(ask, 1.0 if status == 429 else None)
    if status == 401:  # the user is unknown, so there is no user_id
        message = "User not found." if ask.has_auth else "No cookie auth credentials found"
        return HttpError(401, _error_json({"code": 401, "message": message}, user=False), headers=retry)
    if status == 429:  # OpenRouter's own limit: the only case with X-RateLimit-* headers
        limits = {
            "X-RateLimit-Limit": "20",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(_next_minute_ms()),
        }
        error = {
            "code": 429,
            "message": "Rate limit exceeded: free-models-per-min. ",
            "metadata": {"headers": limits, "provider_name": None},
        }
        return HttpError(429, _error_json(error), headers={**retry, **limits})
    error = _moderation_error(ask, model) if status == 403 else _ERRORS[status]
    return HttpError(status, _error_json(error), headers=retry)


_CLOUDFLARE_503 = """<!DOCTYPE html>
<html lang="en-US"><head><title>Worker exceeded resource limits | openrouter.ai | Cloudflare</title>
<meta charset="UTF-8" /></head>
<body><div id="cf-wrapper"><div id="cf-error-details">
<h1><span class="cf-error-type">Error</span> <span class="cf-error-code">1102</span></h1>
<h2 class="cf-subheadline">Worker exceeded resource limits</h2>
<p>You've requested a page on a website (openrouter.ai) that is on the Cloudflare network.
An unknown error occurred while rendering the page.</p>
<p>Cloudflare Ray ID: <strong>8f0c0ffee0sandbox</strong> &bull; Performance &amp; security by Cloudflare</p>
</div></div></body></html>
"""


def _status_script(status: int) -> Callable[[Ask], Plan]:
    def script(ask: Ask) -> Plan:
        return Plan(error=status_error(status, ask, f"sandbox/error-{status}"))

    return script


def _ratelimit(ask: Ask) -> Plan:
    raw = (
        "sandbox/ratelimit is temporarily rate-limited upstream. Please retry shortly, or add your own key "
        "to accumulate your rate limits: https://openrouter.ai/settings/integrations"
    )
    error = _provider_error(429, raw, is_byok=False, limit_source="upstream_provider_shared_pool")
    return Plan(error=HttpError(429, _error_json(error), headers=_retry_headers(ask, 1.0)))


def _provider(ask: Ask) -> Plan:
    raw = json.dumps(
        {
            "error": {
                "message": "Invalid schema for function 'get_weather': 'location' is required but "
                "not defined in properties",
                "type": "invalid_request_error",
                "param": "tools[0].function.parameters",
                "code": "invalid_function_parameters",
            }
        }
    )
    return Plan(error=HttpError(400, _error_json(_provider_error(400, raw))))


def _error_html(ask: Ask) -> Plan:
    return Plan(
        error=HttpError(503, _CLOUDFLARE_503.encode(), "text/html; charset=UTF-8", _retry_headers(ask, None))
    )


def _flaky(ask: Ask) -> Plan:
    if ask.tally(f"flaky:{ask.prompt}") <= int(ask.param("fail", 2)):
        error = {
            "code": 503,
            "message": "No instances available",
            "metadata": {"error_type": "temporarily_unavailable", "provider_name": PROVIDER},
        }
        return Plan(error=HttpError(503, _error_json(error), headers=_retry_headers(ask, 0.0)))
    return _echo(ask)


# --- structured output (response_format json_schema)

# Text models that answer a json_schema response_format with a JSON document instead of their usual text.
STRUCTURED_MODELS = frozenset(
    {"sandbox/echo", "sandbox/slow", "sandbox/markdown", "sandbox/long", "sandbox/reasoning", "sandbox/flaky"}
)


def requested_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema of a ``response_format`` of type ``json_schema``, or None."""
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None
    inner = fmt.get("json_schema")
    schema = inner.get("schema") if isinstance(inner, dict) else None
    return schema if isinstance(schema, dict) else {}


def _wrong_value(schema: Any, root: Any) -> Any:
    """A value of a type ``schema`` does not allow (best effort: used to make an answer invalid)."""
    if isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        schema = _resolve_ref(root, schema["$ref"]) or {}
    if not isinstance(schema, dict):
        return {"unexpected": True}
    if schema.get("enum") or "const" in schema:
        return "not-one-of-the-allowed-values"
    allowed: set[str] = set()
    for option in [schema, *(schema.get("anyOf") or []), *(schema.get("oneOf") or [])]:
        if isinstance(option, dict) and isinstance(option.get("$ref"), str):
            option = _resolve_ref(root, option["$ref"]) or {}
        kind = option.get("type") if isinstance(option, dict) else None
        allowed.update(kind if isinstance(kind, list) else [kind] if isinstance(kind, str) else [])
        if isinstance(option, dict) and "properties" in option:
            allowed.add("object")
    for kinds, value in (
        ({"integer", "number"}, 12345),
        ({"string"}, "not a valid value"),
        ({"object"}, {"unexpected": True}),
        ({"boolean"}, True),
    ):
        if not kinds & allowed:
            return value
    return [["nested", "list"]]


def _violate(value: Any, schema: dict[str, Any]) -> Any:
    """``value`` made invalid for ``schema``: the first property gets a wrong type and an extra key appears."""
    root = schema
    target = _resolve_ref(root, schema["$ref"]) if isinstance(schema.get("$ref"), str) else schema
    if isinstance(value, dict) and isinstance(target, dict):
        props = target.get("properties") or {}
        broken = dict(value)
        if props:
            first = next(iter(props))
            broken[first] = _wrong_value(props[first], root)
        broken["unexpected_field"] = "the sandbox added this to break the schema"
        return broken
    return _wrong_value(target, root)


def structured_text(schema: dict[str, Any], ask: Ask) -> str:
    """The JSON answer for ``schema``. Prompt knobs: ``invalid_json=1`` (valid JSON that violates the schema),
    ``invalid_json=2`` (not JSON at all: cut in the middle), ``json_fence=1`` (wrapped in a ```json fence)."""
    value = _example(schema, "answer")
    mode = int(ask.param("invalid_json", 0))
    if mode == 1:
        value = _violate(value, schema)
    text = json.dumps(value, ensure_ascii=False, indent=2)
    if mode >= 2:
        text = text[: max(1, len(text) // 2)]
    if ask.param("json_fence", 0):
        text = f"```json\n{text}\n```"
    return text


def _structured(ask: Ask, plan: Plan, schema: dict[str, Any]) -> Plan:
    """``plan`` with its text replaced by the JSON answer; reasoning and other preludes are kept."""
    prelude: list[Step] = []
    for step in plan.steps:
        if isinstance(step, Delta) and step.delta.get("content"):
            break
        if isinstance(step, Delta) and step.finish is not None:
            break
        prelude.append(step)
    answer = _text_plan(ask, structured_text(schema, ask), 200.0)
    plan.steps = [*prelude, *answer.steps]
    return plan


SCRIPTS: dict[str, Callable[[Ask], Plan]] = {
    "sandbox/echo": _echo,
    "sandbox/markdown": _markdown,
    "sandbox/reasoning": _reasoning,
    "sandbox/image": _image,
    "sandbox/tools": _tools,
    "sandbox/web": _web,
    "sandbox/long": _long,
    "sandbox/slow": _slow,
    "sandbox/flaky": _flaky,
    "sandbox/stall": _stall,
    "sandbox/disconnect": _disconnect,
    "sandbox/malformed": _malformed,
    "sandbox/ratelimit": _ratelimit,
    "sandbox/provider-error": _provider,
    "sandbox/error-html": _error_html,
    "sandbox/error-200": _bare_error,
    **{f"sandbox/midstream-{shape}": _midstream(shape) for shape in _MIDSTREAM_SHAPES},
    **{f"sandbox/error-{status}": _status_script(status) for status in ERROR_STATUSES},
}
assert SCRIPTS.keys() == MODELS.keys()


def register(
    entries: list[dict[str, Any]], scripts: dict[str, Callable[[Ask], Plan]], structured: tuple[str, ...] = ()
) -> None:
    """Add models scripted in another module (``or_magic.sandbox.more_models``) to the catalogue."""
    global STRUCTURED_MODELS
    for entry in entries:
        MODELS[entry["id"]] = entry
    SCRIPTS.update(scripts)
    STRUCTURED_MODELS = STRUCTURED_MODELS | frozenset(structured)
    assert SCRIPTS.keys() == MODELS.keys()


def plan_for(model: str, ask: Ask) -> Plan:
    """The model's answer, with the ``delay=S`` knob (silence before the first token) applied."""
    plan = SCRIPTS[model](ask)
    schema = requested_schema(ask.body)
    if schema is not None and model in STRUCTURED_MODELS and plan.error is None:
        plan = _structured(ask, plan, schema)
    delay = ask.params.get("delay")
    if delay and plan.error is None:
        plan.steps.insert(0, Wait(delay))
    return plan


# ----------------------------------------------------------------------------------- folding and usage


class Folded:
    """A stream's deltas folded into one assistant message, for non-streaming bodies and usage counts."""

    def __init__(self, steps: list[Step]) -> None:
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.details: dict[int, dict[str, Any]] = {}
        self.tools: dict[int, dict[str, Any]] = {}
        self.images: list[Any] = []
        self.annotations: list[Any] = []
        self.finish: str | None = None
        self.native: str | None = None
        self.error: dict[str, Any] | None = None
        self.bare: dict[str, Any] | None = None
        for step in steps:
            if isinstance(step, Delta):
                self._add(step.delta, step.finish, step.native)
            elif isinstance(step, Event) and not step.envelope:
                self.bare = step.body
            elif isinstance(step, Event):
                self.error = step.body.get("error", self.error)
                for choice in step.body.get("choices", []):
                    self._add(
                        choice.get("delta", {}),
                        choice.get("finish_reason"),
                        choice.get("native_finish_reason"),
                    )
        if self.error is not None and self.finish != "error":
            self.finish, self.native = "error", "error"

    def _add(self, delta: dict[str, Any], finish: str | None, native: str | None) -> None:
        if isinstance(delta.get("content"), str):
            self.content.append(delta["content"])
        if isinstance(delta.get("reasoning"), str):
            self.reasoning.append(delta["reasoning"])
        for detail in delta.get("reasoning_details") or []:
            merged = self.details.setdefault(detail.get("index", 0), {**detail, "text": ""})
            merged["text"] += detail.get("text", "")
            if "signature" in detail:
                merged["signature"] = detail["signature"]
        for call in delta.get("tool_calls") or []:
            self._add_call(call)
        self.images += delta.get("images") or []
        self.annotations += delta.get("annotations") or []
        if finish is not None:
            self.finish, self.native = finish, native

    def _add_call(self, call: dict[str, Any]) -> None:
        index = call.get("index", 0)
        merged = self.tools.setdefault(
            index, {"id": None, "type": "function", "index": index, "function": {"name": "", "arguments": ""}}
        )
        merged["id"] = call.get("id", merged["id"])
        merged["type"] = call.get("type", merged["type"])
        function = call.get("function") or {}
        merged["function"]["name"] += function.get("name", "")
        merged["function"]["arguments"] += function.get("arguments", "")

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(self.content),
            "refusal": None,
            "reasoning": "".join(self.reasoning) or None,
        }
        if self.details:
            message["reasoning_details"] = [self.details[i] for i in sorted(self.details)]
        if self.tools:
            message["tool_calls"] = [self.tools[i] for i in sorted(self.tools)]
        if self.images:
            message["images"] = self.images
        if self.annotations:
            message["annotations"] = self.annotations
        return message

    def completion_tokens(self) -> tuple[int, int, int]:
        """(completion tokens, of which reasoning, of which image)."""
        reasoning = count_tokens("".join(self.reasoning))
        images = 258 * len(self.images)
        calls = sum(
            count_tokens(c["function"]["name"] + c["function"]["arguments"]) for c in self.tools.values()
        )
        return count_tokens("".join(self.content)) + reasoning + images + calls, reasoning, images


def prompt_tokens(body: dict[str, Any]) -> int:
    """Tokens of every message (text counted, images and files at a flat rate) plus tool definitions."""
    total = 0
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        total += 4 + count_tokens(message_text(message.get("content")))
        parts = message.get("content") if isinstance(message.get("content"), list) else []
        total += sum(85 for p in parts if isinstance(p, dict) and p.get("type") != "text")
    if body.get("tools"):
        total += count_tokens(json.dumps(body["tools"]))
    return total


def usage(model: str, body: dict[str, Any], folded: Folded, plan: Plan) -> dict[str, Any]:
    """The full usage object real responses carry, with a small fake cost."""
    completion, reasoning, images = folded.completion_tokens()
    completion += plan.hidden_reasoning
    reasoning += plan.hidden_reasoning
    prompt = prompt_tokens(body)
    pricing = MODELS[model]["pricing"]
    prompt_cost = prompt * float(pricing["prompt"])
    completion_cost = completion * float(pricing["completion"])
    cost = round(prompt_cost + completion_cost + plan.searches * float(pricing["web_search"]), 12)
    result: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cost": cost,
        "is_byok": False,
        "prompt_tokens_details": {
            "cached_tokens": 0,
            "cache_write_tokens": 0,
            "audio_tokens": 0,
            "video_tokens": 0,
        },
        "cost_details": {
            "upstream_inference_cost": round(prompt_cost + completion_cost, 12),
            "upstream_inference_prompt_cost": round(prompt_cost, 12),
            "upstream_inference_completions_cost": round(completion_cost, 12),
        },
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "image_tokens": images,
            "audio_tokens": 0,
        },
    }
    if plan.searches:
        result["server_tool_use"] = {"web_search_requests": plan.searches}
    return result


def completion_body(
    folded: Folded, usage_: dict[str, Any], gen_id: str, created: int, model: str
) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` body (ChatResult plus OpenRouter's extras)."""
    if folded.bare is not None:
        return folded.bare
    choice: dict[str, Any] = {
        "logprobs": None,
        "finish_reason": folded.finish,
        "native_finish_reason": folded.native,
        "index": 0,
        "message": folded.message(),
    }
    if folded.error is not None:
        choice["error"] = folded.error
    return {
        "id": gen_id,
        "provider": PROVIDER,
        "model": model,
        "object": "chat.completion",
        "created": created,
        "choices": [choice],
        "system_fingerprint": None,
        "usage": usage_,
    }
