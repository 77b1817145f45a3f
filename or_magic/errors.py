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
    │   ├── BatchRowError                    one row of a ``--batch`` map failed on the server
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

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ._error_parse import parse_retry_after, status_error_fields, stream_error_fields
from ._hints import status_hint
from ._scrub import decode, remember_secret, safe_headers, scrub, scrub_obj

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
    "ConflictResponseError",
    "BatchPaymentRequiredResponseError",
    "BatchTimeoutError",
    "BatchRowError",
    "ConversationFileError",
    "NoFailedCell",
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
        self.code = scrub_obj(code)
        self.metadata: dict[str, Any] = scrub_obj(dict(metadata or {}))
        self.provider_name = scrub_obj(provider_name)
        self.body = scrub(decode(body)[:BODY_LIMIT])
        self.headers = safe_headers(headers)
        self.generation_id = scrub_obj(generation_id or self.headers.get("x-generation-id"))
        self.retry_after = retry_after
        self.error_type = scrub_obj(error_type)
        self.user_id = scrub_obj(user_id)
        self.availability: dict[str, Any] | None = scrub_obj(dict(availability)) if availability else None
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
        return scrub_obj(data)


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


class BatchRowError(OpenRouterError):
    """One row of a batch failed on the server (its message is the batch result's)."""


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


def make_status_error(
    status: int,
    body: bytes | str,
    headers: Mapping[str, str] | None = None,
    *,
    now: float | None = None,
    partial: ChatAccumulator | None = None,
) -> ChatError:
    """The typed error for an HTTP error response: class by status, readable message, retry_after."""
    structured, fields = status_error_fields(status, body, headers or {}, now)
    cls = _BY_STATUS.get(status, OpenRouterDefaultError) if structured else OpenRouterDefaultError
    return cls(partial=partial, **fields)


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
    fields = stream_error_fields(payload, native_finish_reason)
    return StreamError(body=body, headers=headers, partial=partial, **fields)
