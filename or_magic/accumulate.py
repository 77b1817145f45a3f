"""Fold a stream of chat chunks into the final assistant message.

``add`` is O(1) per chunk: fragments are appended to lists and joined only when a property is read,
with the joined value cached until the next chunk changes it. So a renderer may read ``text`` after
every chunk without making the whole stream quadratic in Python-level work.

OpenRouter quirks handled here: ``role`` repeated on every chunk; the usage chunk still carrying a choice
whose ``finish_reason`` is ``null`` (the last *non-null* finish reason wins); ``reasoning_details``
fragments that share an ``index`` (merged in order, text/summary/signature concatenated, otherwise
unmodified so they can be echoed back); tool calls assembled by ``index``; whole images in
``delta.images``; annotations on a late chunk; ``model``/``provider`` taken from the response, not the
request.
"""

from __future__ import annotations

from typing import Any

from .types import (
    AssistantMessage,
    ChatChoice,
    ChatResult,
    ChatStreamChoice,
    ChatStreamChunk,
    ChatStreamDelta,
    ErrorObject,
    StreamToolCall,
    Usage,
)

__all__ = ["ChatAccumulator", "result_to_chunk"]

_CONCAT_KEYS = ("text", "summary", "signature", "data")


class _Joined:
    """A list of string fragments with a cached join: append is O(1), reading is O(1) when unchanged."""

    __slots__ = ("parts", "_cache", "_cached_len")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._cache = ""
        self._cached_len = 0

    def value(self) -> str:
        if self._cached_len != len(self.parts):
            self._cache = "".join(self.parts)
            self._cached_len = len(self.parts)
        return self._cache


class _ToolCallParts:
    """The fragments of one tool call (one ``index``)."""

    __slots__ = ("id", "type", "name", "arguments", "extra")

    def __init__(self) -> None:
        self.id: str | None = None
        self.type: str | None = None
        self.name: str | None = None
        self.arguments: list[str] = []
        self.extra: dict[str, Any] = {}

    def add(self, frag: StreamToolCall) -> None:
        self.id = self.id or frag.id
        self.type = self.type or frag.type
        fn = frag.function
        if fn is not None:
            self.name = self.name or fn.name
            if fn.arguments:
                self.arguments.append(fn.arguments)
        if frag.model_extra:
            self.extra.update(frag.model_extra)

    def as_dict(self) -> dict[str, Any]:
        call: dict[str, Any] = {
            "id": self.id,
            "type": self.type or "function",
            "function": {"name": self.name, "arguments": "".join(self.arguments)},
        }
        call.update(self.extra)
        return call


class ChatAccumulator:
    """Everything a stream has said so far, readable at any time (also after an error, as ``.partial``)."""

    def __init__(self) -> None:
        self.chunks = 0
        self.id: str | None = None
        self.model: str | None = None
        self.provider: str | None = None
        self.created: int | float | None = None
        self.system_fingerprint: str | None = None
        self.service_tier: str | None = None
        self.finish_reason: str | None = None
        self.native_finish_reason: str | None = None
        self.usage: Usage | None = None
        self.error: ErrorObject | None = None
        self._role: str | None = None
        self._text = _Joined()
        self._reasoning = _Joined()
        self._refusal = _Joined()
        self._details: list[list[dict[str, Any]]] = []  # groups of fragments, one group per detail
        self._detail_group: dict[Any, int] = {}  # index -> position of its latest group
        self._details_cache: list[dict[str, Any]] | None = None
        self._tools: dict[int, _ToolCallParts] = {}
        self._image_parts: list[dict[str, Any]] = []
        self._annotations: list[dict[str, Any]] = []
        self._audio: list[dict[str, Any]] = []

    # ------------------------------------------------------------ feeding

    def add(self, chunk: ChatStreamChunk) -> None:
        """Fold one chunk in. Only choice 0 is kept (OpenRouter does not support ``n > 1``)."""
        self.chunks += 1
        if chunk.id is not None:
            self.id = chunk.id
        if chunk.model is not None:
            self.model = chunk.model
        if chunk.provider is not None:
            self.provider = chunk.provider
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.error is not None:
            self.error = chunk.error
        if self.created is None:
            self.created = chunk.created
        if chunk.system_fingerprint is not None:
            self.system_fingerprint = chunk.system_fingerprint
        if chunk.service_tier is not None:
            self.service_tier = chunk.service_tier
        for choice in chunk.choices:
            if not choice.index:  # 0 or missing
                self._add_choice(choice)

    def _add_choice(self, choice: ChatStreamChoice) -> None:
        if choice.finish_reason is not None:
            self.finish_reason = choice.finish_reason
        if choice.native_finish_reason is not None:
            self.native_finish_reason = choice.native_finish_reason
        if choice.error is not None:
            self.error = choice.error
        delta = choice.delta
        if delta is None:
            return
        if delta.content:
            self._text.parts.append(delta.content)
        if delta.reasoning:
            self._reasoning.parts.append(delta.reasoning)
        if delta.role and self._role is None:
            self._role = delta.role
        if delta.reasoning_details or delta.tool_calls or delta.images or delta.annotations:
            self._add_structured(delta)
        if delta.refusal:
            self._refusal.parts.append(delta.refusal)
        if delta.audio:
            self._audio.append(delta.audio)

    def _add_structured(self, delta: ChatStreamDelta) -> None:
        """The rarer parts of a delta, kept out of the hot path above."""
        for detail in delta.reasoning_details or ():
            self._add_detail(detail)
        for frag in delta.tool_calls or ():
            self._add_tool_fragment(frag)
        if delta.images:
            self._image_parts.extend(delta.images)
        if delta.annotations:
            self._annotations.extend(delta.annotations)

    def _add_detail(self, detail: dict[str, Any]) -> None:
        self._details_cache = None
        index = detail.get("index")
        pos = self._detail_group.get(index) if index is not None else None
        if pos is not None:
            group_type = self._details[pos][0].get("type")
            frag_type = detail.get("type")
            if frag_type is None or group_type is None or frag_type == group_type:
                self._details[pos].append(detail)
                return
        self._details.append([detail])
        if index is not None:
            self._detail_group[index] = len(self._details) - 1

    def _add_tool_fragment(self, frag: StreamToolCall) -> None:
        index = frag.index
        if index is None:  # not OpenAI-shaped: a new id starts a new call, else continue the last one
            index = len(self._tools) if frag.id is not None or not self._tools else max(self._tools)
        parts = self._tools.get(index)
        if parts is None:
            parts = self._tools[index] = _ToolCallParts()
        parts.add(frag)

    # ------------------------------------------------------------ reading

    @property
    def text(self) -> str:
        return self._text.value()

    @property
    def reasoning(self) -> str:
        return self._reasoning.value()

    @property
    def refusal(self) -> str | None:
        return self._refusal.value() or None

    @property
    def role(self) -> str:
        return self._role or "assistant"

    @property
    def reasoning_details(self) -> list[dict[str, Any]]:
        """Merged details, in order of first appearance; each is a new dict (the fragments stay intact)."""
        if self._details_cache is None:
            self._details_cache = [_merge_details(group) for group in self._details]
        return list(self._details_cache)

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        """OpenAI-shaped tool calls (``id``, ``type``, ``function{name, arguments}``) in index order."""
        return [self._tools[i].as_dict() for i in sorted(self._tools)]

    @property
    def images(self) -> list[str]:
        """The generated images as data URLs."""
        return [url for url in map(image_url, self._image_parts) if url]

    @property
    def image_parts(self) -> list[dict[str, Any]]:
        """The image parts exactly as the API sent them (``{"type": "image_url", "image_url": {...}}``)."""
        return list(self._image_parts)

    @property
    def annotations(self) -> list[dict[str, Any]]:
        return list(self._annotations)

    @property
    def audio(self) -> dict[str, Any] | None:
        """Audio output fragments folded into one dict (``data`` and ``transcript`` concatenated)."""
        if not self._audio:
            return None
        merged: dict[str, Any] = {}
        for frag in self._audio:
            for key, value in frag.items():
                if key in ("data", "transcript") and isinstance(value, str):
                    merged[key] = merged.get(key, "") + value
                elif value is not None:
                    merged.setdefault(key, value)
        return merged

    def message(self) -> dict[str, Any]:
        """The assistant message to send back as history next turn (``reasoning_details`` unmodified)."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self._details:
            msg["reasoning_details"] = self.reasoning_details
        if self._tools:
            msg["tool_calls"] = self.tool_calls
        if self._image_parts:
            msg["images"] = self.image_parts
        if self._annotations:
            msg["annotations"] = self.annotations
        return msg

    def result(self) -> ChatResult:
        """The stream as the non-streaming response it stands for."""
        message = AssistantMessage.model_validate(self.message())
        if self.reasoning:
            message.reasoning = self.reasoning
        if self.refusal:
            message.refusal = self.refusal
        if self._audio:
            message.audio = self.audio
        choice = ChatChoice(index=0, message=message, **_ending(self))
        return ChatResult(object="chat.completion", choices=[choice], **_envelope(self))

    @classmethod
    def from_result(cls, result: ChatResult) -> ChatAccumulator:
        """An accumulator holding a non-streaming result (used as ``.partial`` of a failed response)."""
        acc = cls()
        acc.add(result_to_chunk(result))
        return acc

    def __repr__(self) -> str:
        return (
            f"ChatAccumulator(chunks={self.chunks}, model={self.model!r}, text={len(self.text)} chars, "
            f"finish_reason={self.finish_reason!r})"
        )


def _merge_details(group: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge the fragments of one reasoning detail: strings concatenated, other keys first-seen wins."""
    if len(group) == 1:
        return dict(group[0])
    merged: dict[str, Any] = {}
    for frag in group:
        for key, value in frag.items():
            if key in _CONCAT_KEYS and isinstance(value, str):
                prev = merged.get(key)
                merged[key] = prev + value if isinstance(prev, str) else value
            elif merged.get(key) is None:
                merged[key] = value
    return merged


def image_url(part: Any) -> str | None:
    """The URL of an image part, whether ``image_url`` is an object (the documented shape) or a bare string."""
    if not isinstance(part, dict):
        return None
    inner = part.get("image_url")
    url = inner.get("url") if isinstance(inner, dict) else inner
    return url if isinstance(url, str) and url else None


def result_to_chunk(result: ChatResult) -> ChatStreamChunk:
    """A whole non-streaming result as one stream chunk, so one code path can fold both."""
    choices = []
    for choice in result.choices:
        msg = choice.message or AssistantMessage()
        content = msg.content if isinstance(msg.content, str) else None
        if isinstance(msg.content, list):  # a parts array: keep its text
            content = "".join(p.get("text", "") for p in msg.content if isinstance(p, dict))
        tool_calls = None
        if msg.tool_calls:
            tool_calls = [
                StreamToolCall.model_validate({**tc.model_dump(exclude_none=True), "index": i})
                for i, tc in enumerate(msg.tool_calls)
            ]
        delta = ChatStreamDelta(
            role=msg.role,
            content=content,
            reasoning=msg.reasoning,
            reasoning_details=msg.reasoning_details,
            tool_calls=tool_calls,
            images=msg.images,
            annotations=msg.annotations,
            refusal=msg.refusal,
            audio=msg.audio,
        )
        choices.append(ChatStreamChoice(index=choice.index, delta=delta, **_ending(choice)))
    return ChatStreamChunk(object="chat.completion.chunk", choices=choices, **_envelope(result))


def _envelope(source: Any) -> dict[str, Any]:
    """The response-level fields a result and a chunk share (from an accumulator or a result)."""
    return {name: getattr(source, name) for name in _ENVELOPE}


def _ending(source: Any) -> dict[str, Any]:
    """How a choice ended (from an accumulator or a result's choice)."""
    return {name: getattr(source, name) for name in ("finish_reason", "native_finish_reason", "error")}


_ENVELOPE = ("id", "model", "provider", "created", "usage", "system_fingerprint", "service_tier")
