"""Response bodies as typed results, or as the typed error they really are (errors inside a 200 answer)."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic_core import ValidationError

from .errors import OpenRouterError, ResponseValidationError, StreamError, make_stream_error, scrub

if TYPE_CHECKING:  # pragma: no cover
    from pydantic import BaseModel

    from .accumulate import ChatAccumulator
    from .types import ChatResult, ChatStreamChunk, ModelInfo

logger = logging.getLogger("or_magic")
_M = TypeVar("_M", bound="BaseModel")


def validation_error(
    what: str, body: str | bytes, exc: Exception, partial: ChatAccumulator | None, headers: Any
) -> ResponseValidationError:
    first = exc.errors()[0] if isinstance(exc, ValidationError) and exc.errors() else None
    detail = first.get("msg", str(exc)) if first else str(exc)
    err = ResponseValidationError(f"{what}: {detail}", body=body, headers=headers, partial=partial)
    err.cause = scrub(str(exc))  # the parse error's text (its input may echo the key), not the object
    return err


def parse_result(body: bytes, headers: httpx.Headers) -> ChatResult:
    """A non-streaming body as a ChatResult, or the StreamError it really is (error-only 200 bodies,
    ``choices[].error``, ``finish_reason: "error"``)."""
    from .accumulate import ChatAccumulator
    from .types import ChatResult

    try:
        result = ChatResult.model_validate_json(body)
    except ValidationError as exc:
        payload = loads(body)
        if isinstance(payload, dict) and "error" in payload:
            raise make_stream_error(payload, headers=headers, body=body) from exc
        raise validation_error("Could not parse the response", body, exc, None, headers) from None
    extra = result.model_extra or {}
    failed = next((c for c in result.choices if c.error is not None or c.finish_reason == "error"), None)
    if extra.get("error") is None and failed is None:
        return result
    partial = ChatAccumulator.from_result(result) if result.choices else None
    if extra.get("error") is not None:
        raise make_stream_error(loads(body), partial=partial, headers=headers, body=body)
    assert failed is not None
    if failed.error is not None:
        payload = {"error": failed.error.model_dump(exclude_none=True), "id": result.id}
        raise make_stream_error(payload, partial=partial, headers=headers, body=body)
    raise make_stream_error(
        None, partial=partial, headers=headers, body=body, native_finish_reason=failed.native_finish_reason
    )


def loads(data: str | bytes) -> Any:
    """JSON, or None for a body that is not JSON (an HTML error page, a cut body)."""
    try:
        return json.loads(data)
    except ValueError:
        return None


def chunk_failure(chunk: ChatStreamChunk, data: str) -> bool | None:
    """True if the chunk carries an error; False if it only has finish_reason "error"; None if fine."""
    if chunk.error is not None:
        return True
    for choice in chunk.choices:
        if choice.error is not None:
            return True
        if choice.finish_reason == "error":
            return False
    return None


def chunk_error(chunk: ChatStreamChunk, data: str, acc: ChatAccumulator, headers: Any) -> StreamError:
    payload = loads(data)
    if chunk.error is None:  # the error sits on a choice
        err = next(c.error for c in chunk.choices if c.error is not None)
        payload = {"error": err.model_dump(exclude_none=True), "id": chunk.id}
    return make_stream_error(payload, partial=acc, headers=headers, body=data)


def bad_chunk(data: str, exc: ValidationError, acc: ChatAccumulator, headers: Any) -> OpenRouterError:
    """A chunk that failed validation: an odd error shape (StreamError) or garbage (validation error)."""
    payload = loads(data)
    if isinstance(payload, dict) and "error" in payload:
        return make_stream_error(payload, partial=acc, headers=headers, body=data)
    return validation_error("Malformed stream chunk", data, exc, acc, headers)


def finish_error(acc: ChatAccumulator, headers: Any) -> StreamError:
    return make_stream_error(None, partial=acc, headers=headers, native_finish_reason=acc.native_finish_reason)


def unwrap(body: bytes, headers: httpx.Headers, what: str) -> Any:
    payload = loads(body)
    if not isinstance(payload, dict):
        err = ResponseValidationError(f"{what}: the response is not a JSON object", body=body, headers=headers)
        raise err
    if "error" in payload and "data" not in payload:
        raise make_stream_error(payload, headers=headers, body=body)
    return payload.get("data", payload)


def parse_models(body: bytes, headers: httpx.Headers) -> list[ModelInfo]:
    from .types import ModelInfo

    data = unwrap(body, headers, "Could not parse the model list")
    if not isinstance(data, list):
        raise ResponseValidationError("Could not parse the model list: 'data' is not a list", body=body)
    models = []
    for item in data:
        try:
            models.append(ModelInfo.model_validate(item))
        except ValidationError:
            logger.debug("skipping a malformed model entry")
    return models


def parse_data(model: type[_M], body: bytes, headers: httpx.Headers, what: str) -> _M:
    """An answer's ``data`` object as ``model`` (``what`` names it in the error: "the key info")."""
    data = unwrap(body, headers, f"Could not parse {what}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(f"Could not parse {what}", body, exc, None, headers) from None
