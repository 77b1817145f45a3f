"""Every exception of or_magic, in one tree: the wire's typed errors and the notebook's own.

::

    OrMagicError                             root of every class below: ``except errors.OrMagicError``
    ├── OpenRouterError                      base of the wire: status, message, code, metadata, provider,
    │   │                                    body, headers, hint
    │   ├── ChatError                        anything the chat endpoint (or /models, /key) reported
    │   │   ├── BadRequestResponseError          400
    │   │   ├── UnauthorizedResponseError        401
    │   │   ├── PaymentRequiredResponseError     402
    │   │   │   └── BatchPaymentRequiredResponseError  402 on a batch submit
    │   │   ├── ForbiddenResponseError           403
    │   │   ├── NotFoundResponseError            404
    │   │   ├── RequestTimeoutResponseError      408
    │   │   ├── PayloadTooLargeResponseError     413
    │   │   ├── UnprocessableEntityResponseError 422
    │   │   ├── TooManyRequestsResponseError     429
    │   │   ├── InternalServerResponseError      500
    │   │   ├── BadGatewayResponseError          502
    │   │   ├── ServiceUnavailableResponseError  503
    │   │   ├── EdgeNetworkTimeoutResponseError  524
    │   │   ├── ProviderOverloadedResponseError  529
    │   │   ├── OpenRouterDefaultError           any other 4xx/5xx, and non-JSON (e.g. HTML) error bodies
    │   │   ├── ConflictResponseError            409 (a batch in the wrong state)
    │   │   ├── StreamError                      HTTP 200 but an error inside: a mid-stream error chunk, an
    │   │   │                                    error-only body, ``choices[].error``, ``finish_reason: "error"``
    │   │   └── ResponseValidationError          a response body or chunk that cannot be parsed
    │   ├── APIConnectionError               transport failure (refused, reset, dropped mid-stream)
    │   │   └── APITimeoutError              connect / read / write / pool timeout
    │   ├── BatchTimeoutError                ``batches.wait`` gave up; the batch keeps running
    │   ├── ConfigError                      a local problem found before sending, e.g. no API key
    │   │   └── BudgetExceededError          the notebook's budget would be exceeded: nothing was sent
    │   └── StructuredOutputError            the answer is not JSON or does not match ``--schema``
    ├── ThreadBusyError (RuntimeError)       two requests on one thread would interleave their turns
    ├── AttachmentError (ValueError)         an ``--image``/``--file`` that cannot be sent
    ├── UnknownVariable (KeyError)           ``--context NAME`` names no variable
    ├── ToolError                            a tool call that cannot be run (reported to the model, not raised)
    ├── CacheError (OSError)                 the on-disk response cache cannot be read or written
    ├── ConversationFileError (ValueError)   an export or notebook that cannot be read, written or trusted
    ├── NoFailedCell (LookupError)           ``%chat fix`` found no failed cell: nothing is sent
    ├── TurnInterrupted                      a cell's turn was interrupted (its partial answer, if any, kept)
    └── TurnFailed                           a failed turn with ``ChatMagics.raise_on_error`` set

The notebook's classes keep their builtin bases (``except ValueError`` around an attachment still works), and
each is also importable from the module that raises it (``or_magic.session.TurnInterrupted``, …).

The class names follow the official SDK, so ``except errors.TooManyRequestsResponseError`` ports as is.
Unlike the SDK, ``str(err)`` says what went wrong: the generic "Provider returned error" is completed
with the provider's own message dug out of ``metadata.raw`` (a string, a JSON string or an object);
moderation reasons and availability codes are appended; and ``hint`` is a one-line fix.

Every error keeps its evidence (raw body, response headers, generation id, what streamed before the
failure as ``partial``) but never the API key: request headers are not kept, ``authorization``/cookie
headers are dropped, and anything shaped like a key, or equal to the key in use, is scrubbed from text.
"""

from __future__ import annotations

import html
import http
import json
import re
import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .accumulate import ChatAccumulator

__all__ = [
    "OrMagicError",
    "OpenRouterError",
    "ChatError",
    "BadRequestResponseError",
    "UnauthorizedResponseError",
    "PaymentRequiredResponseError",
    "ForbiddenResponseError",
    "NotFoundResponseError",
    "RequestTimeoutResponseError",
    "PayloadTooLargeResponseError",
    "UnprocessableEntityResponseError",
    "TooManyRequestsResponseError",
    "InternalServerResponseError",
    "BadGatewayResponseError",
    "ServiceUnavailableResponseError",
    "EdgeNetworkTimeoutResponseError",
    "ProviderOverloadedResponseError",
    "OpenRouterDefaultError",
    "StreamError",
    "ResponseValidationError",
    "APIConnectionError",
    "APITimeoutError",
    "ConfigError",
    "BudgetExceededError",
    "StructuredOutputError",
    "ThreadBusyError",
    "AttachmentError",
    "UnknownVariable",
    "ToolError",
    "CacheError",
    "TurnInterrupted",
    "TurnFailed",
    "make_status_error",
    "make_stream_error",
    "parse_retry_after",
    "scrub",
    "remember_secret",
    "safe_headers",
]

BODY_LIMIT = 10_000  # characters of raw body kept on an error
_RAW_LIMIT = 500  # characters of a provider's raw message shown in str(err)
_GENERIC_MESSAGES = {"", "provider returned error", "internal server error", "upstream error", "error"}
_DROP_HEADERS = {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"}

# ---------------------------------------------------------------- scrubbing secrets

_KEY_RE = re.compile(r"\bsk-[A-Za-z0-9][A-Za-z0-9_\-]{10,}|(?i:\bbearer)\s+[A-Za-z0-9._~+/=\-]{8,}")
_SECRETS: set[str] = set()


def remember_secret(secret: str | None) -> None:
    """Register the key in use, so it is scrubbed even if it does not look like ``sk-or-…``."""
    if secret and len(secret) >= 8:
        _SECRETS.add(secret)


def scrub(text: str) -> str:
    """Remove anything that looks like an API key (or is the registered key) from ``text``."""
    if not text:
        return text
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    if "sk-" in text or "earer" in text or "EARER" in text:
        text = _KEY_RE.sub("[redacted]", text)
    return text


def _scrub_obj(obj: Any) -> Any:
    """``scrub`` applied to every string inside a JSON-like object (returns a new object)."""
    if isinstance(obj, str):
        return scrub(obj)
    if isinstance(obj, Mapping):
        return {scrub(str(k)): _scrub_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_scrub_obj(v) for v in obj]
    return obj


def safe_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Response headers, lower-cased, without credentials."""
    if not headers:
        return {}
    items = headers.multi_items() if hasattr(headers, "multi_items") else headers.items()
    out: dict[str, str] = {}
    for key, value in items:
        name = str(key).lower()
        if name not in _DROP_HEADERS:
            out[name] = scrub(str(value))
    return out


# ---------------------------------------------------------------- the classes


class OrMagicError(Exception):
    """Root of every or_magic exception (a marker: each branch keeps its own constructor)."""


class OpenRouterError(OrMagicError):
    """Base of the wire's errors. ``str()`` is the readable message; ``hint`` says what to do."""

    def __init__(
        self,
        message: str = "",
        *,
        status_code: int | None = None,
        code: int | str | None = None,
        metadata: Mapping[str, Any] | None = None,
        provider_name: str | None = None,
        body: str | bytes = "",
        headers: Mapping[str, str] | None = None,
        generation_id: str | None = None,
        retry_after: float | None = None,
        error_type: str | None = None,
        user_id: str | None = None,
        availability: Mapping[str, Any] | None = None,
        partial: ChatAccumulator | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = scrub(message or "")
        self.status_code = status_code
        # every field that comes from the response is scrubbed: a server or proxy may echo the key back
        self.code = _scrub_obj(code)
        self.metadata: dict[str, Any] = _scrub_obj(dict(metadata or {}))
        self.provider_name = _scrub_obj(provider_name)
        self.body = scrub(_decode(body)[:BODY_LIMIT])
        self.headers = safe_headers(headers)
        self.generation_id = _scrub_obj(generation_id or self.headers.get("x-generation-id"))
        self.retry_after = retry_after
        self.error_type = _scrub_obj(error_type)
        self.user_id = _scrub_obj(user_id)
        self.availability: dict[str, Any] | None = _scrub_obj(dict(availability)) if availability else None
        self.partial = partial
        self.attempts = 1
        self.hint = scrub(hint) if hint is not None else self._default_hint()
        super().__init__(self.message)

    def _default_hint(self) -> str:
        return ""

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        fields = [f"message={self.message!r}"]
        for name in ("status_code", "code", "error_type", "provider_name", "generation_id", "retry_after"):
            value = getattr(self, name)
            if value is not None:
                fields.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(fields)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self.message, self.__dict__.copy()))

    def _render_traceback_(self) -> list[str]:
        """IPython shows this instead of a traceback: one line, type, status, message and hint."""
        status = f" (HTTP {self.status_code})" if self.status_code else ""
        line = f"{type(self).__name__}{status}: {self.message}"
        if self.hint:
            line += f" — {self.hint}"
        return [" ".join(line.split())]

    def to_dict(self) -> dict[str, Any]:
        """Everything known about the error, JSON-serialisable and key-free (for ``%chat error``)."""
        data: dict[str, Any] = {
            "type": type(self).__name__,
            "status_code": self.status_code,
            "message": self.message,
            "code": self.code,
            "error_type": self.error_type,
            "provider_name": self.provider_name,
            "hint": self.hint,
            "generation_id": self.generation_id,
            "retry_after": self.retry_after,
            "user_id": self.user_id,
            "attempts": self.attempts,
            "metadata": self.metadata,
            "availability": self.availability,
            "headers": self.headers,
            "body": self.body,
            "partial": _partial_summary(self.partial),
        }
        return _scrub_obj(data)


def _restore(cls: type[OpenRouterError], message: str, state: dict[str, Any]) -> OpenRouterError:
    """Unpickle without calling ``__init__`` (its keyword-only signature is not pickle's)."""
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


def _partial_summary(acc: ChatAccumulator | None) -> dict[str, Any] | None:
    if acc is None:
        return None
    return {
        "chunks": acc.chunks,
        "model": acc.model,
        "provider": acc.provider,
        "text": acc.text,
        "reasoning": acc.reasoning,
        "tool_calls": acc.tool_calls,
        "finish_reason": acc.finish_reason,
        "native_finish_reason": acc.native_finish_reason,
    }


class ChatError(OpenRouterError):
    """Any error reported by the chat endpoint: catch this to catch them all (bar transport errors)."""

    def _default_hint(self) -> str:
        return status_hint(self)


class BadRequestResponseError(ChatError):
    """400: the request is invalid (bad parameter, unknown model, context too long, provider refusal)."""


class UnauthorizedResponseError(ChatError):
    """401: missing, wrong, expired or disabled API key."""


class PaymentRequiredResponseError(ChatError):
    """402: not enough credits (for this request's max_tokens, or at all)."""


class ForbiddenResponseError(ChatError):
    """403: key permission, guardrail, moderation flag or region restriction."""


class NotFoundResponseError(ChatError):
    """404: no endpoint matches the model and routing/data-policy constraints."""


class RequestTimeoutResponseError(ChatError):
    """408: the request timed out at OpenRouter."""


class PayloadTooLargeResponseError(ChatError):
    """413: the request body is too large."""


class UnprocessableEntityResponseError(ChatError):
    """422: semantically invalid request."""


class TooManyRequestsResponseError(ChatError):
    """429: rate limited (OpenRouter's free-model limits or the provider's)."""


class InternalServerResponseError(ChatError):
    """500: OpenRouter internal error."""


class BadGatewayResponseError(ChatError):
    """502: the provider is down or returned an invalid response."""


class ServiceUnavailableResponseError(ChatError):
    """503: no provider meets the routing requirements, or they are overloaded."""


class EdgeNetworkTimeoutResponseError(ChatError):
    """524: the edge (Cloudflare) timed out waiting for the provider."""


class ProviderOverloadedResponseError(ChatError):
    """529: the provider is overloaded."""


class OpenRouterDefaultError(ChatError):
    """Any other 4xx/5xx status, and error bodies that are not JSON (e.g. an HTML gateway page)."""


class StreamError(ChatError):
    """HTTP 200, but the generation failed: ``partial`` holds what was produced before the failure.

    ``status_code`` is the error's own numeric code when it has one (e.g. 502), else None.
    """

    def _default_hint(self) -> str:
        base = status_hint(self) if self.status_code else ""
        return base or "The generation failed after it started; retry, or try another model or provider."


class ResponseValidationError(ChatError):
    """The server sent something that cannot be parsed; ``cause`` is the parse error's text (scrubbed).

    The parse exception itself is not chained: its repr quotes the input, which may echo the key.
    """

    cause: str | None = None

    def _default_hint(self) -> str:
        return "The server sent a malformed response; retry, and check OPENROUTER_BASE_URL if it persists."


class APIConnectionError(OpenRouterError):
    """The connection failed or dropped (also mid-stream: ``partial`` keeps what had arrived)."""

    def _default_hint(self) -> str:
        return "Check the network connection and OPENROUTER_BASE_URL, then retry."


class APITimeoutError(APIConnectionError):
    """A connect, read, write or pool timeout; the message names which one and its value."""

    def _default_hint(self) -> str:
        return "Retry, or raise the timeout (timeout_ms= for the read timeout between bytes)."


class ConfigError(OpenRouterError):
    """A local configuration problem, found before anything is sent (e.g. no API key)."""

    def _default_hint(self) -> str:
        if "key" in self.message.lower():
            return "Set OPENROUTER_API_KEY (or run `%chat key`) and try again."
        return ""


class BudgetExceededError(ConfigError):
    """The notebook's budget (``ChatMagics.budget``) would be exceeded: nothing was sent."""


_SCHEMA_HINT = (
    "the raw answer is kept in err.raw_text; re-run the cell, or use a model whose /models "
    "supported_parameters include structured_outputs (with provider require_parameters on)"
)


class StructuredOutputError(OpenRouterError):
    """The model's answer is not JSON, or does not match the requested schema."""

    def __init__(
        self,
        message: str,
        *,
        raw_text: str = "",
        path: str | None = None,
        errors: list[str] | None = None,
        hint: str | None = None,
    ) -> None:
        self.raw_text = raw_text  # the answer itself, kept whole (it is the model's text, not a secret)
        self.path = path
        self.errors = list(errors or [])
        super().__init__(message, hint=hint if hint is not None else _SCHEMA_HINT)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.update(raw_text=self.raw_text, path=self.path, errors=self.errors)
        return data


class ThreadBusyError(OrMagicError, RuntimeError):
    """Two requests on the same thread would interleave their turns."""

    def __init__(self, name: str) -> None:
        super().__init__(f"thread {name!r} is already answering a request; wait for it or press Stop")
        self.name = name


class AttachmentError(OrMagicError, ValueError):
    """An attachment that cannot be sent: unsupported kind, unreadable, missing or too big."""


class UnknownVariable(OrMagicError, KeyError):
    """``--context NAME`` names no variable in the notebook."""

    def __init__(self, name: str, suggestions: Iterable[str] = ()) -> None:
        self.name = name
        self.suggestions = list(suggestions)
        super().__init__(name)

    def __str__(self) -> str:  # KeyError's str() would quote the whole message
        text = f"no variable named `{self.name}` in the notebook (define it first, or check the spelling)"
        if self.suggestions:
            text += "; did you mean " + " or ".join(f"`{s}`" for s in self.suggestions) + "?"
        return text


class ToolError(OrMagicError):
    """A tool call that cannot be run (unknown tool, bad arguments); ``kind`` is the type name shown.

    Never reaches the cell: the tool loop reports it to the model in the tool's result.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class CacheError(OrMagicError, OSError):
    """The on-disk response cache cannot be read or written (``cache_dir`` a file, read-only, full)."""


class ConflictResponseError(ChatError):
    """409: the batch is in the wrong state for this call (e.g. deleting one that is still running)."""


class BatchPaymentRequiredResponseError(PaymentRequiredResponseError):
    """402 on a batch submit: not enough credits for the whole batch."""


class BatchTimeoutError(OpenRouterError):
    """``wait`` gave up before the batch finished; the batch keeps running and can be waited on again."""


class ConversationFileError(OrMagicError, ValueError):
    """An export or notebook that cannot be read or written; the message is one line for the user."""


class NoFailedCell(OrMagicError, LookupError):
    """Nothing to fix: no failed cell is remembered, or the cell named did not fail."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "no failed cell to fix"


class TurnInterrupted(OrMagicError):
    """Raised after a cell's turn was interrupted, so "Run All" stops; shown as one line, not a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"⏹ {self}"]


class TurnFailed(OrMagicError):
    """Raised after the error card when ``ChatMagics.raise_on_error`` is set, so a headless run stops."""

    def _render_traceback_(self) -> list[str]:
        return [f"✖ {self}"]


_BY_STATUS: dict[int, type[ChatError]] = {
    400: BadRequestResponseError,
    401: UnauthorizedResponseError,
    402: PaymentRequiredResponseError,
    403: ForbiddenResponseError,
    404: NotFoundResponseError,
    408: RequestTimeoutResponseError,
    413: PayloadTooLargeResponseError,
    422: UnprocessableEntityResponseError,
    429: TooManyRequestsResponseError,
    500: InternalServerResponseError,
    502: BadGatewayResponseError,
    503: ServiceUnavailableResponseError,
    524: EdgeNetworkTimeoutResponseError,
    529: ProviderOverloadedResponseError,
}


# ---------------------------------------------------------------- hints


def _wait_phrase(seconds: float | None) -> str:
    if seconds is None:
        return "wait a moment"
    if seconds < 90:
        return f"wait {max(1, round(seconds))} s"
    if seconds < 5400:
        return f"wait about {round(seconds / 60)} min"
    return f"wait about {seconds / 3600:.1f} h"


def status_hint(err: OpenRouterError) -> str:
    """A one-line fix for the common cases, from the status, message, error type and metadata."""
    status, text = err.status_code, err.message.lower()
    etype = (err.error_type or "").lower()
    avail_code = str((err.availability or {}).get("code") or "")
    if "not a valid model" in text or avail_code == "model_not_found":
        return "Unknown model id: list the available ones with `%chat models`."
    if etype == "context_length_exceeded" or "context length" in text or "maximum context" in text:
        return "The conversation is too long for this model: shorten it, or pick a model with a longer context."
    if "reasoning.effort" in text and "reasoning.max_tokens" in text:
        return "Send reasoning effort or reasoning max_tokens, not both."
    if status == 401:
        return "Check OPENROUTER_API_KEY (or set it with `%chat key`): the key is missing, wrong or disabled."
    if status == 402:
        afford = re.search(r"can only afford (\d+)", text)
        if afford:
            return f"Add credits at openrouter.ai/settings/credits, or lower max_tokens to {afford.group(1)} or less."
        return "Add credits at openrouter.ai/settings/credits, or lower max_tokens."
    if status == 403:
        if err.metadata.get("reasons") or "flagged" in text or "moderation" in text:
            return "The input was flagged by moderation: rephrase it, or use a model without moderation."
        if err.metadata.get("patterns") or "guardrail" in text:
            return "A guardrail blocked this request: check the key's guardrail settings."
        return "Forbidden: check the key's permissions, guardrails and region."
    if status == 404:
        return "No endpoint can serve this: change the model or provider routing (see `%chat models`)."
    if status == 429:
        free = ":free" in text or "free-models" in text or "free model" in text
        tail = " or add credits to lift free-model limits" if free else " or use another model"
        return f"Rate limited: {_wait_phrase(err.retry_after)} and retry,{tail}."
    if status in (408, 504, 524):
        return "The provider timed out: retry, or use another model or provider."
    if status == 413:
        return "The request is too large: shorten the conversation or drop attachments."
    if status == 422:
        return "A parameter value is invalid: check the options sent (see `--dry-run`)."
    if status is not None and 400 <= status < 500:
        return "The request was rejected: check the model, parameters and messages (see `--dry-run`)."
    if status in (503, 529) or etype == "provider_overloaded":
        return "The provider is overloaded or unavailable: retry shortly, or use another model or provider."
    if status is not None and status >= 500:
        return "The provider or OpenRouter failed: retry, or use another model or provider."
    return ""


# ---------------------------------------------------------------- parsing error bodies


def _decode(body: str | bytes | None) -> str:
    if body is None:
        return ""
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body).decode("utf-8", "replace")
    return str(body)


def _clip(text: str, limit: int = _RAW_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _find_message(obj: Any, depth: int = 0) -> str | None:
    """The most message-like string inside a provider's raw error object."""
    if depth > 5:
        return None
    if isinstance(obj, str):
        return obj.strip() or None
    if isinstance(obj, list):
        for item in obj:
            found = _find_message(item, depth + 1)
            if found:
                return found
        return None
    if not isinstance(obj, dict):
        return None
    for key in ("message", "error_message", "detail", "error_description", "msg", "error", "errors"):
        if key in obj:
            value = obj[key]
            found = value.strip() if isinstance(value, str) else _find_message(value, depth + 1)
            if found:
                return found
    return None


def _raw_message(raw: Any) -> str | None:
    """The provider's own words from ``metadata.raw`` (a plain string, a JSON string, or an object)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        text = raw.strip()
        if text[:1] in ("{", "["):
            try:
                found = _find_message(json.loads(text))
            except ValueError:
                found = None
            if found:
                return _clip(found)
        return _clip(text) if text else None
    found = _find_message(raw)
    if found:
        return _clip(found)
    try:
        return _clip(json.dumps(raw))
    except (TypeError, ValueError):
        return _clip(str(raw))


def _readable_message(
    message: str | None, metadata: Mapping[str, Any], availability: Mapping[str, Any] | None, status: int | None
) -> str:
    """Turn OpenRouter's error object into a sentence a person can act on."""
    msg = (message or "").strip()
    raw = _raw_message(metadata.get("raw"))
    if raw:
        if msg.lower() in _GENERIC_MESSAGES:
            who = metadata.get("provider_name")
            msg = f"{who or 'Provider'} returned error: {raw}"
        elif raw not in msg:
            msg = f"{msg}: {raw}"
    reasons = metadata.get("reasons")
    if isinstance(reasons, list) and reasons and "flagged for" not in msg:
        msg += f" (flagged for: {', '.join(map(str, reasons))})"
    if availability:
        msg = _with_availability(msg, availability)
    if not msg:
        phrase = _status_phrase(status)
        msg = f"HTTP {status} {phrase}".strip() if status else "Unknown error"
    return msg


def _with_availability(msg: str, availability: Mapping[str, Any]) -> str:
    code = availability.get("code")
    constraint = availability.get("constraint")
    detail = constraint.get("detail") if isinstance(constraint, Mapping) else None
    if not msg and code:
        msg = str(code).replace("_", " ").capitalize()
    extra = [str(x) for x in (code if code and str(code) not in msg else None, detail) if x]
    fallbacks = availability.get("fallback_models")
    if isinstance(fallbacks, list) and fallbacks:
        extra.append("try: " + ", ".join(map(str, fallbacks[:3])))
    return f"{msg} [{'; '.join(extra)}]" if extra else msg


def _status_phrase(status: int | None) -> str:
    try:
        return http.HTTPStatus(status).phrase if status else ""
    except ValueError:
        return {524: "Edge Network Timeout", 529: "Provider Overloaded"}.get(status or 0, "")


def _html_summary(text: str) -> str:
    """A readable line from an HTML error page: its title, else its text."""
    match = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
    if match and match.group(1).strip():
        return _clip(html.unescape(match.group(1)), 200)
    stripped = re.sub(r"<(script|style)\b.*?</\1>|<[^>]+>", " ", text, flags=re.I | re.S)
    return _clip(html.unescape(stripped), 200)


def _as_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and number >= 0 else None  # not NaN, not negative


def parse_retry_after(
    headers: Mapping[str, str] | None,
    payload: Any = None,
    *,
    status: int | None = None,
    now: float | None = None,
) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms``, ``Retry-After`` (seconds or an HTTP
    date), the body's ``availability.retry_after``, or (429 only) the rate-limit reset time."""
    h = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    now = time.time() if now is None else now
    if "retry-after-ms" in h and (ms := _as_float(h["retry-after-ms"])) is not None:
        return ms / 1000
    if "retry-after" in h:
        value = h["retry-after"].strip()
        seconds = _as_float(value)
        if seconds is not None:
            return seconds
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    error = payload.get("error") if isinstance(payload, dict) else None
    availability = _availability(payload, error if isinstance(error, dict) else {})
    if availability and (seconds := _as_float(availability.get("retry_after"))) is not None:
        return seconds
    if status == 429:
        return _ratelimit_reset(h, error, now)
    return None


def _ratelimit_reset(h: Mapping[str, str], error: Any, now: float) -> float | None:
    """Seconds until ``X-RateLimit-Reset`` (epoch ms), from the headers or ``error.metadata.headers``."""
    reset = h.get("x-ratelimit-reset")
    if reset is None and isinstance(error, dict):
        meta_headers = (error.get("metadata") or {}).get("headers")
        if isinstance(meta_headers, dict):
            reset = {str(k).lower(): v for k, v in meta_headers.items()}.get("x-ratelimit-reset")
    stamp = _as_float(reset)
    if stamp is None:
        return None
    if stamp > 1e11:  # milliseconds since the epoch
        stamp /= 1000
    return max(0.0, stamp - now)


def _availability(payload: Any, error: Mapping[str, Any]) -> dict[str, Any] | None:
    """The 2026 availability object, wherever it sits (error, error.metadata or top level)."""
    meta = error.get("metadata") if isinstance(error.get("metadata"), dict) else {}
    for holder in (error, meta, payload if isinstance(payload, dict) else {}):
        value = holder.get("availability")
        if isinstance(value, dict):
            return value
    return None


def _error_fields(payload: Any) -> dict[str, Any]:
    """Constructor arguments from a JSON error body or chunk (any of the shapes seen in the wild)."""
    if not isinstance(payload, dict):
        return {"message": _clip(json.dumps(payload), 300) if payload is not None else ""}
    error = payload.get("error")
    message: str | None = None
    if isinstance(error, str):
        message, error = error, {}
    elif not isinstance(error, dict):
        error = payload if ("message" in payload or "detail" in payload) else {}
    if message is None:
        raw_message = error.get("message", error.get("detail"))
        message = raw_message if isinstance(raw_message, str) else (json.dumps(raw_message) if raw_message else "")
    metadata = error.get("metadata") if isinstance(error.get("metadata"), dict) else {}
    availability = _availability(payload, error)
    provider = metadata.get("provider_name")
    error_type = metadata.get("error_type") or error.get("error_type") or payload.get("error_type")
    if error_type is None and isinstance(error.get("type"), str):
        error_type = error["type"]
    return {
        "code": error.get("code"),
        "metadata": metadata,
        "provider_name": provider if isinstance(provider, str) else None,
        "error_type": error_type if isinstance(error_type, str) else None,
        "user_id": payload.get("user_id"),
        "availability": availability,
        "message": message,
    }


def _numeric_status(code: Any) -> int | None:
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.isdigit():
        return int(code)
    return None


def make_status_error(
    status: int,
    body: bytes | str,
    headers: Mapping[str, str] | None = None,
    *,
    now: float | None = None,
    partial: ChatAccumulator | None = None,
) -> ChatError:
    """The typed error for an HTTP error response: class by status, readable message, retry_after."""
    text = _decode(body)
    headers = headers or {}
    payload = _parse_json(text)
    retry_after = parse_retry_after(headers, payload, status=status, now=now)
    if not isinstance(payload, dict):
        ctype = {str(k).lower(): v for k, v in headers.items()}.get("content-type", "unknown content type")
        summary = _html_summary(text) if "<" in text[:200] else _clip(text, 200)
        message = f"HTTP {status} {_status_phrase(status)} ({ctype}): {summary or 'empty body'}"
        return OpenRouterDefaultError(
            message, status_code=status, body=text, headers=headers, retry_after=retry_after, partial=partial
        )
    fields = _error_fields(payload)
    fields["message"] = _readable_message(fields["message"], fields["metadata"], fields["availability"], status)
    cls = _BY_STATUS.get(status, OpenRouterDefaultError)
    gen_id = payload.get("id") if isinstance(payload.get("id"), str) else None
    return cls(
        status_code=status,
        body=text,
        headers=headers,
        retry_after=retry_after,
        generation_id=gen_id,
        partial=partial,
        **fields,
    )


def make_stream_error(
    payload: Mapping[str, Any] | None,
    *,
    partial: ChatAccumulator | None = None,
    headers: Mapping[str, str] | None = None,
    body: str | bytes = "",
    finish_reason: str | None = None,
    native_finish_reason: str | None = None,
) -> StreamError:
    """A :class:`StreamError` from a failed 200 response: a chunk or body holding ``error`` (any of the
    shapes in OPENROUTER.md §4.5), or -- with ``payload`` None -- a bare ``finish_reason: "error"``."""
    if not payload or not isinstance(payload.get("error"), (dict, str)):
        native = native_finish_reason or "none given"
        message = f"The generation ended with finish_reason 'error' (native reason: {native})"
        return StreamError(message, body=body, headers=headers, partial=partial, error_type=native_finish_reason)
    fields = _error_fields(dict(payload))
    status = _numeric_status(fields["code"])
    fields["message"] = _readable_message(fields["message"], fields["metadata"], fields["availability"], status)
    gen_id = payload.get("id") if isinstance(payload.get("id"), str) else None
    return StreamError(
        status_code=status,
        body=body,
        headers=headers,
        generation_id=gen_id,
        retry_after=parse_retry_after(None, dict(payload)),
        partial=partial,
        **fields,
    )


def _parse_json(text: str) -> Any:
    stripped = text.lstrip()
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None
