"""Pydantic models for OpenRouter's chat-completions wire format (requests, responses, stream chunks).

Written from live traffic, not only the OpenAPI spec: every model keeps unknown fields
(``extra="allow"``) and every response field is optional, so a provider that omits ``system_fingerprint``
or adds a field tomorrow never breaks parsing. OpenRouter's extras that generic clients drop are typed:
``provider``, ``native_finish_reason``, ``reasoning``/``reasoning_details``, ``delta.images``,
``annotations``, ``usage.cost``/``is_byok``/``cost_details`` and ``choices[].error``.

Free-form objects whose shape varies by provider (reasoning details, annotations, images, metadata) are
plain dicts: they are passed back to the API unmodified, and validating them would only cost time.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "OpenRouterModel",
    "CacheControl",
    "TextPart",
    "ImageURL",
    "ImageURLPart",
    "FileData",
    "FilePart",
    "InputAudio",
    "InputAudioPart",
    "VideoURL",
    "VideoURLPart",
    "ContentPart",
    "FunctionCall",
    "ToolCall",
    "SystemMessage",
    "DeveloperMessage",
    "UserMessage",
    "AssistantMessage",
    "ToolMessage",
    "Message",
    "ErrorObject",
    "PromptTokensDetails",
    "CompletionTokensDetails",
    "CostDetails",
    "Usage",
    "ChatChoice",
    "ChatResult",
    "StreamFunctionCall",
    "StreamToolCall",
    "ChatStreamDelta",
    "ChatStreamChoice",
    "ChatStreamChunk",
    "Architecture",
    "ModelInfo",
    "KeyInfo",
    "GenerationInfo",
]


class OpenRouterModel(BaseModel):
    """Base of every model here: unknown fields are kept, never an error.

    ``defer_build`` postpones building each model's validator to its first use, which keeps
    ``import or_magic.client`` fast (most models are never used in a given session).
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)


# ---------------------------------------------------------------- content parts (request side)


class CacheControl(OpenRouterModel):
    type: str = "ephemeral"
    ttl: str | None = None


class TextPart(OpenRouterModel):
    type: Literal["text"] = "text"
    text: str
    cache_control: CacheControl | dict[str, Any] | None = None


class ImageURL(OpenRouterModel):
    url: str
    detail: str | None = None


class ImageURLPart(OpenRouterModel):
    type: Literal["image_url"] = "image_url"
    image_url: ImageURL


class FileData(OpenRouterModel):
    filename: str | None = None
    file_data: str | None = None
    file_id: str | None = None


class FilePart(OpenRouterModel):
    type: Literal["file"] = "file"
    file: FileData


class InputAudio(OpenRouterModel):
    data: str
    format: str


class InputAudioPart(OpenRouterModel):
    type: Literal["input_audio"] = "input_audio"
    input_audio: InputAudio


class VideoURL(OpenRouterModel):
    url: str


class VideoURLPart(OpenRouterModel):
    type: Literal["video_url", "input_video"] = "video_url"
    video_url: VideoURL


ContentPart = TextPart | ImageURLPart | FilePart | InputAudioPart | VideoURLPart


# ---------------------------------------------------------------- messages


class FunctionCall(OpenRouterModel):
    name: str | None = None
    arguments: str | None = None


class ToolCall(OpenRouterModel):
    id: str | None = None
    type: str | None = "function"
    index: int | None = None
    function: FunctionCall | None = None


class SystemMessage(OpenRouterModel):
    role: Literal["system"] = "system"
    content: str | list[TextPart]
    name: str | None = None


class DeveloperMessage(OpenRouterModel):
    role: Literal["developer"] = "developer"
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(OpenRouterModel):
    role: Literal["user"] = "user"
    content: str | list[ContentPart | dict[str, Any]]
    name: str | None = None


class AssistantMessage(OpenRouterModel):
    """The assistant turn: what a response carries and what is sent back as history."""

    role: str | None = "assistant"
    content: str | list[Any] | None = None
    name: str | None = None
    refusal: str | None = None
    reasoning: str | None = None
    reasoning_details: list[dict[str, Any]] | None = None
    tool_calls: list[ToolCall] | None = None
    images: list[dict[str, Any]] | None = None
    annotations: list[dict[str, Any]] | None = None
    audio: dict[str, Any] | None = None


class ToolMessage(OpenRouterModel):
    role: Literal["tool"] = "tool"
    content: str | list[Any]
    tool_call_id: str
    name: str | None = None


Message = SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage


# ---------------------------------------------------------------- usage and errors


class ErrorObject(OpenRouterModel):
    """An ``error`` object as found in bodies and chunks; ``code`` may be an int, a string or absent."""

    code: int | str | None = None
    message: str | None = None
    metadata: dict[str, Any] | None = None


class PromptTokensDetails(OpenRouterModel):
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    audio_tokens: int | None = None
    video_tokens: int | None = None


class CompletionTokensDetails(OpenRouterModel):
    reasoning_tokens: int | None = None
    image_tokens: int | None = None
    audio_tokens: int | None = None
    accepted_prediction_tokens: int | None = None
    rejected_prediction_tokens: int | None = None


class CostDetails(OpenRouterModel):
    upstream_inference_cost: float | None = None
    upstream_inference_prompt_cost: float | None = None
    upstream_inference_completions_cost: float | None = None


class Usage(OpenRouterModel):
    """Token counts and cost. On BYOK requests ``cost`` is only OpenRouter's fee (see ``is_byok``)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cost: float | None = None
    is_byok: bool | None = None
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None
    cost_details: CostDetails | None = None
    server_tool_use: dict[str, Any] | None = None
    server_tool_use_details: dict[str, Any] | None = None


# ---------------------------------------------------------------- non-streaming response


class ChatChoice(OpenRouterModel):
    index: int | None = None
    message: AssistantMessage | None = None
    finish_reason: str | None = None
    native_finish_reason: str | None = None
    logprobs: Any = None
    error: ErrorObject | None = None


class ChatResult(OpenRouterModel):
    id: str | None = None
    model: str | None = None
    provider: str | None = None
    object: str | None = None
    created: int | float | None = None
    choices: list[ChatChoice] = Field(default_factory=list)
    usage: Usage | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None


# ---------------------------------------------------------------- streaming


class StreamFunctionCall(OpenRouterModel):
    name: str | None = None
    arguments: str | None = None


class StreamToolCall(OpenRouterModel):
    index: int | None = None
    id: str | None = None
    type: str | None = None
    function: StreamFunctionCall | None = None


class ChatStreamDelta(OpenRouterModel):
    role: str | None = None
    content: str | None = None
    reasoning: str | None = None
    reasoning_details: list[dict[str, Any]] | None = None
    tool_calls: list[StreamToolCall] | None = None
    images: list[dict[str, Any]] | None = None
    annotations: list[dict[str, Any]] | None = None
    refusal: str | None = None
    audio: dict[str, Any] | None = None


class ChatStreamChoice(OpenRouterModel):
    index: int | None = None
    delta: ChatStreamDelta | None = None
    finish_reason: str | None = None
    native_finish_reason: str | None = None
    logprobs: Any = None
    error: ErrorObject | None = None


class ChatStreamChunk(OpenRouterModel):
    id: str | None = None
    model: str | None = None
    provider: str | None = None
    object: str | None = None
    created: int | float | None = None
    choices: list[ChatStreamChoice] = Field(default_factory=list)
    usage: Usage | None = None
    error: ErrorObject | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None


# ---------------------------------------------------------------- other endpoints


class Architecture(OpenRouterModel):
    modality: str | None = None
    input_modalities: list[str] | None = None
    output_modalities: list[str] | None = None
    tokenizer: str | None = None
    instruct_type: str | None = None


class ModelInfo(OpenRouterModel):
    """One entry of ``GET /models``; prices are USD per token, kept as the strings the API sends."""

    id: str | None = None
    name: str | None = None
    canonical_slug: str | None = None
    created: int | float | None = None
    description: str | None = None
    context_length: int | None = None
    pricing: dict[str, str] | None = None
    architecture: Architecture | None = None
    top_provider: dict[str, Any] | None = None
    per_request_limits: dict[str, Any] | None = None
    supported_parameters: list[str] | None = None
    default_parameters: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    expiration_date: str | None = None
    knowledge_cutoff: str | None = None

    @field_validator("pricing", mode="before")
    @classmethod
    def _prices_as_strings(cls, value: Any) -> Any:
        """The spec says strings, some docs use numbers: normalise to strings, drop nulls."""
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items() if v is not None}
        return value

    def price(self, kind: str) -> float | None:
        """USD per token for ``kind`` ("prompt", "completion", "image", ...); None when unknown.

        Routers such as ``openrouter/auto`` report -1 (the routed model's price): that is unknown too.
        """
        try:
            value = float((self.pricing or {})[kind])
        except (KeyError, TypeError, ValueError):
            return None
        return value if value >= 0 else None

    @property
    def input_modalities(self) -> list[str] | None:
        return self.architecture.input_modalities if self.architecture is not None else None

    @property
    def output_modalities(self) -> list[str] | None:
        return self.architecture.output_modalities if self.architecture is not None else None

    @property
    def max_completion_tokens(self) -> int | None:
        """The most an answer can have (the top provider's cap, else the context length)."""
        cap = (self.top_provider or {}).get("max_completion_tokens")
        return int(cap) if isinstance(cap, int) and cap > 0 else self.context_length


class KeyInfo(OpenRouterModel):
    """``GET /key``: the current key's limits and usage (USD); ``limit`` None means unlimited."""

    label: str | None = None
    limit: float | None = None
    limit_remaining: float | None = None
    limit_reset: str | None = None
    include_byok_in_limit: bool | None = None
    usage: float | None = None
    usage_daily: float | None = None
    usage_weekly: float | None = None
    usage_monthly: float | None = None
    byok_usage: float | None = None
    byok_usage_daily: float | None = None
    byok_usage_weekly: float | None = None
    byok_usage_monthly: float | None = None
    is_free_tier: bool | None = None
    is_management_key: bool | None = None
    is_provisioning_key: bool | None = None
    expires_at: str | None = None
    creator_user_id: str | None = None
    rate_limit: dict[str, Any] | None = None


class GenerationInfo(OpenRouterModel):
    """``GET /generation?id=``: what one generation billed (``total_cost``, USD) and its token counts."""

    id: str
    model: str | None = None
    total_cost: float | None = None
    tokens_prompt: int | None = None
    tokens_completion: int | None = None
    native_tokens_cached: int | None = None
    cache_discount: float | None = None
    streamed: bool | None = None
    cancelled: bool | None = None
    finish_reason: str | None = None
    provider_name: str | None = None
    num_search_results: int | None = None
