"""More scripted models: a code fixer, fixed latencies, share-of-prompts rate limits, audio input, caching
models, and the ``openrouter:web_search`` server tool for any plain text model.

* ``sandbox/fixer``: one sentence of prose, then ONE ```python block: the last fenced code block of the prompt
  (else the prompt's lines that look like code) under a ``# fixed`` comment. When the prompt mentions an
  ``IndexError``, the first line that indexes ``name[expr]`` is put under ``if 0 <= expr < len(name):``.
* ``sandbox/latency-N`` (N ms): silence for N ms, then a short answer derived from the prompt, all at once.
* ``sandbox/paced-N`` (N ms): the same answer streamed word by word, spread over N ms (for compares).
* ``sandbox/ratelimit-N``: the first request of about N % of distinct prompts (chosen by a hash of the
  prompt) gets a 429 with ``Retry-After`` (``retry_after=S`` knob, default 1); every later try answers.
* ``sandbox/audio``: takes ``input_audio`` parts and says what it got (format and decoded byte count).
* ``sandbox/anthropic`` (explicit caching: only with ``cache_control``) and ``sandbox/openai`` (implicit
  caching of every prefix): see :mod:`or_magic.sandbox.caching`.
* A request whose ``tools`` holds ``{"type": "openrouter:web_search", "parameters": {"max_results": N}}``
  to a text model (``WEB_TOOL_MODELS``) gets N ``url_citation`` annotations (default 5) and
  ``usage.server_tool_use`` / ``server_tool_use_details``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

from .._sandbox_models import (
    STRUCTURED_MODELS,
    Ask,
    Delta,
    HttpError,
    Plan,
    Wait,
    _entry,
    _error_json,
    _finish,
    _provider_error,
    _retry_headers,
    _short,
    _text_plan,
    pieces,
    register,
)

LATENCIES_MS = (10, 50, 100, 200, 500, 1000)
PACED_MS = (500, 1000, 2000)
RATE_LIMITED_SHARES = (10, 30, 50)
WEB_SEARCH_TOOL = "openrouter:web_search"
DEFAULT_WEB_RESULTS = 5
MAX_WEB_RESULTS = 25


def _digest(text: str, size: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def short_answer(prompt: str) -> str:
    """The deterministic answer of the latency, paced and rate-limited models."""
    return f"Answer to “{_short(prompt.strip(), 60)}” ({_digest(prompt)})."


# --- fixer

_FENCE_RE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)```", re.S | re.I)
_CODE_LINE_RE = re.compile(r"^(\s{4,}\S|\s*(def |class |import |from |for |while |if |return |print\()|.*=)")
_INDEX_RE = re.compile(r"\b([A-Za-z_]\w*)\[([^\[\]:]+)\]")


def code_in(prompt: str) -> str:
    """The last fenced code block of the prompt, else its lines that look like code."""
    blocks = _FENCE_RE.findall(prompt)
    if blocks:
        return blocks[-1].strip("\n")
    return "\n".join(line for line in prompt.splitlines() if _CODE_LINE_RE.match(line)).strip("\n")


def _guard_index(code: str) -> str:
    """Put the first ``name[expr]`` line under a bounds check, indenting it one level."""
    lines = code.splitlines()
    for i, line in enumerate(lines):
        match = _INDEX_RE.search(line)
        if match and not line.lstrip().startswith(("def ", "class ", "#")):
            name, index = match.group(1), match.group(2).strip()
            indent = line[: len(line) - len(line.lstrip())]
            lines[i : i + 1] = [f"{indent}if 0 <= {index} < len({name}):", f"    {line}"]
            break
    return "\n".join(lines)


def fixed_code(prompt: str) -> str:
    code = code_in(prompt) or "pass  # no code was found in the request"
    if "IndexError" in prompt:
        code = _guard_index(code)
    return f"# fixed\n{code}"


def _fixer(ask: Ask) -> Plan:
    prompt = "\n".join(str(m.get("content")) for m in ask.body.get("messages", []) if isinstance(m, dict))
    reason = "an index past the end of the sequence" if "IndexError" in prompt else "the code as given"
    text = f"The problem comes from {reason}; here is a corrected version.\n\n```python\n{fixed_code(prompt)}\n```\n"
    return _text_plan(ask, text, 200.0)


# --- latency, pacing, rate limits


def _latency(ms: int):  # noqa: ANN202 (a script factory)
    def script(ask: Ask) -> Plan:
        plan = _text_plan(ask, short_answer(ask.prompt), 0.0)
        plan.steps.insert(0, Wait(ms / 1000))
        return plan

    return script


def _paced(ms: int):  # noqa: ANN202
    def script(ask: Ask) -> Plan:
        words = pieces(short_answer(ask.prompt))
        steps: list[Any] = []
        for word in words:
            steps += [Wait(ms / 1000 / len(words)), Delta({"content": word})]
        return Plan([*steps, _finish()])

    return script


def limited_first_try(prompt: str, share: int) -> bool:
    """Whether ``sandbox/ratelimit-<share>`` refuses this prompt's first try (by a hash of the prompt)."""
    return int(_digest(prompt), 16) % 100 < share


def _rate_limited(share: int):  # noqa: ANN202
    def script(ask: Ask) -> Plan:
        first = ask.tally(f"ratelimit-{share}:{ask.prompt}") == 1
        if first and limited_first_try(ask.prompt, share):
            raw = f"sandbox/ratelimit-{share} is temporarily rate-limited upstream. Please retry shortly."
            error = _provider_error(429, raw, is_byok=False, limit_source="upstream_provider_shared_pool")
            return Plan(error=HttpError(429, _error_json(error), headers=_retry_headers(ask, 1.0)))
        return _text_plan(ask, short_answer(ask.prompt), 0.0)

    return script


# --- audio


def audio_parts(body: dict[str, Any]) -> list[tuple[str, int | None]]:
    """(format, decoded byte count or None if undecodable) of every ``input_audio`` part, in order."""
    found = []
    for message in body.get("messages") or []:
        parts = message.get("content") if isinstance(message, dict) else None
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict) and part.get("type") == "input_audio":
                audio = part.get("input_audio") or {}
                try:
                    size: int | None = len(base64.b64decode(str(audio.get("data", "")), validate=True))
                except (binascii.Error, ValueError):
                    size = None
                found.append((str(audio.get("format", "?")), size))
    return found


def _audio(ask: Ask) -> Plan:
    parts = audio_parts(ask.body)
    if not parts:
        return _text_plan(ask, "I received no audio, only text.", 200.0)
    said = "; ".join(f"{fmt}, {size} bytes" if size is not None else f"{fmt}, undecodable" for fmt, size in parts)
    return _text_plan(ask, f"I received {len(parts)} audio clip(s): {said}.", 200.0)


# --- web search server tool


def web_search_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == WEB_SEARCH_TOOL:
            return tool
    return None


def _web_results(tool: dict[str, Any]) -> int:
    params = tool.get("parameters") if isinstance(tool.get("parameters"), dict) else {}
    wanted = params.get("max_results", DEFAULT_WEB_RESULTS)
    return max(1, min(MAX_WEB_RESULTS, wanted)) if isinstance(wanted, int) else DEFAULT_WEB_RESULTS


def web_search_plan(ask: Ask, tool: dict[str, Any]) -> Plan:
    """An answer citing N fake pages about the prompt (example.org), with url_citation annotations."""
    topic, slug = _short(ask.prompt.strip() or "nothing", 60), _digest(ask.prompt)
    spans = [f"[result {i}](https://example.org/search/{slug}/{i})" for i in range(1, _web_results(tool) + 1)]
    text = f"A (fake) web search about “{topic}” found: {', '.join(spans)}. Nothing was fetched from the web."
    annotations = []
    for i, span in enumerate(spans, 1):
        start = text.index(span)
        citation = {
            "url": f"https://example.org/search/{slug}/{i}",
            "title": f"Result {i} about {topic}",
            "content": f"Offline excerpt {i} for “{topic}”.",
            "start_index": start,
            "end_index": start + len(span),
        }
        annotations.append({"type": "url_citation", "url_citation": citation})
    plan = _text_plan(ask, text, 200.0)
    plan.steps.insert(len(plan.steps) - 1, Delta({"content": "", "annotations": annotations}))
    plan.searches = 1
    return plan


# --- catalogue

_PRICING_CACHE = {"sandbox/anthropic": ("0.0000003", "0.00000375"), "sandbox/openai": ("0.00000005", "0")}


def _entries() -> list[dict[str, Any]]:
    entries = [
        _entry("sandbox/fixer", "Fixer", "Prose plus one ```python block: the prompt's code, fixed (see docs)."),
        _entry(
            "sandbox/audio",
            "Audio input",
            "Takes input_audio parts; says their format and size.",
            inputs=("text", "audio"),
            extra_params=("input_audio",),
        ),
        _entry(
            "sandbox/anthropic",
            "Explicit caching",
            "Echo; caches a prefix only when asked with cache_control.",
            prompt="0.000003",
            completion="0.000015",
            extra_params=("cache_control",),
        ),
        _entry(
            "sandbox/openai", "Implicit caching", "Echo; caches every prompt prefix on its own.", prompt="0.0000001"
        ),
    ]
    entries += [
        _entry(f"sandbox/latency-{ms}", f"Latency {ms} ms", f"{ms} ms of silence, then a short answer.")
        for ms in LATENCIES_MS
    ]
    entries += [
        _entry(f"sandbox/paced-{ms}", f"Paced {ms} ms", f"A short answer streamed over {ms} ms.") for ms in PACED_MS
    ]
    entries += [
        _entry(
            f"sandbox/ratelimit-{n}",
            f"Rate limited {n}%",
            f"429 with Retry-After on the first try of ~{n}% of prompts (by hash), then answers.",
        )
        for n in RATE_LIMITED_SHARES
    ]
    for entry in entries:
        if entry["id"] in _PRICING_CACHE:
            read, write = _PRICING_CACHE[entry["id"]]
            entry["pricing"].update(input_cache_read=read, input_cache_write=write)
    return entries


def _echo_like(ask: Ask) -> Plan:
    return _text_plan(ask, ask.prompt, 200.0 if len(pieces(ask.prompt)) <= 200 else 0.0)


SCRIPTS = {
    "sandbox/fixer": _fixer,
    "sandbox/audio": _audio,
    "sandbox/anthropic": _echo_like,
    "sandbox/openai": _echo_like,
    **{f"sandbox/latency-{ms}": _latency(ms) for ms in LATENCIES_MS},
    **{f"sandbox/paced-{ms}": _paced(ms) for ms in PACED_MS},
    **{f"sandbox/ratelimit-{n}": _rate_limited(n) for n in RATE_LIMITED_SHARES},
}
_STRUCTURED = tuple(m for m in SCRIPTS if m not in ("sandbox/fixer", "sandbox/audio"))
WEB_TOOL_MODELS = frozenset({*STRUCTURED_MODELS, *_STRUCTURED, "sandbox/web"})

register(_entries(), SCRIPTS, _STRUCTURED)
