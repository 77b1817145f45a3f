"""Typed errors: status -> class, readable messages from every error shape, hints, and no key anywhere."""

from __future__ import annotations

import json
import pickle
from email.utils import formatdate

import pytest

import or_magic.errors as errors
from or_magic.accumulate import ChatAccumulator
from or_magic.errors import make_status_error, make_stream_error, parse_retry_after
from or_magic.types import ChatStreamChunk

KEY = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab"

STATUS_CLASSES = {
    400: errors.BadRequestResponseError,
    401: errors.UnauthorizedResponseError,
    402: errors.PaymentRequiredResponseError,
    403: errors.ForbiddenResponseError,
    404: errors.NotFoundResponseError,
    408: errors.RequestTimeoutResponseError,
    413: errors.PayloadTooLargeResponseError,
    422: errors.UnprocessableEntityResponseError,
    429: errors.TooManyRequestsResponseError,
    500: errors.InternalServerResponseError,
    502: errors.BadGatewayResponseError,
    503: errors.ServiceUnavailableResponseError,
    524: errors.EdgeNetworkTimeoutResponseError,
    529: errors.ProviderOverloadedResponseError,
}


def body(code: int | str | None, message: str, metadata: dict | None = None, **extra: object) -> str:
    error: dict = {"message": message}
    if code is not None:
        error["code"] = code
    if metadata is not None:
        error["metadata"] = metadata
    return json.dumps({"error": error, **extra})


# ---------------------------------------------------------------- the tree and the table


def test_tree() -> None:
    for cls in STATUS_CLASSES.values():
        assert issubclass(cls, errors.ChatError)
    for cls in (errors.OpenRouterDefaultError, errors.StreamError, errors.ResponseValidationError):
        assert issubclass(cls, errors.ChatError)
    assert issubclass(errors.ChatError, errors.OpenRouterError)
    assert issubclass(errors.APITimeoutError, errors.APIConnectionError)
    assert issubclass(errors.APIConnectionError, errors.OpenRouterError)
    assert not issubclass(errors.APIConnectionError, errors.ChatError)
    assert issubclass(errors.ConfigError, errors.OpenRouterError)
    assert not issubclass(errors.ConfigError, errors.ChatError)
    assert issubclass(errors.OpenRouterError, Exception)


def test_module_docstring_draws_the_tree() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        if name[0].isupper():
            assert name in doc, name


@pytest.mark.parametrize("status,cls", sorted(STATUS_CLASSES.items()))
def test_every_status_maps_to_its_class(status: int, cls: type) -> None:
    err = make_status_error(status, body(status, "boom"), {"content-type": "application/json"})
    assert type(err) is cls
    assert err.status_code == status
    assert err.code == status
    assert str(err) == "boom"


@pytest.mark.parametrize("status", [405, 409, 410, 418, 451, 499, 501, 504, 520, 599])
def test_other_statuses_are_default_errors(status: int) -> None:
    err = make_status_error(status, body(status, "odd"), {})
    assert type(err) is errors.OpenRouterDefaultError
    assert err.status_code == status


@pytest.mark.parametrize("status", [400, 429, 502, 503])
def test_html_body_is_a_default_error_for_any_status(status: int) -> None:
    page = (
        "<!DOCTYPE html><html><head><title>Worker exceeded resource limits | openrouter.ai | Cloudflare</title>"
        "<style>body{}</style></head><body><h1>Error 1102</h1></body></html>"
    )
    err = make_status_error(status, page.encode(), {"content-type": "text/html; charset=UTF-8", "retry-after": "3"})
    assert type(err) is errors.OpenRouterDefaultError
    assert err.status_code == status
    assert "Worker exceeded resource limits" in str(err)
    assert "text/html" in str(err)
    assert err.body == page
    assert err.retry_after == 3.0


def test_html_without_title_uses_its_text() -> None:
    err = make_status_error(502, "<html><body><p>Bad   gateway</p><script>x()</script></body></html>", {})
    assert "Bad gateway" in str(err)
    assert "x()" not in str(err)


def test_empty_and_plain_text_bodies() -> None:
    assert "empty body" in str(make_status_error(500, b"", {}))
    err = make_status_error(503, b"upstream connect error", {"content-type": "text/plain"})
    assert type(err) is errors.OpenRouterDefaultError
    assert "upstream connect error" in str(err)


def test_error_as_plain_string_and_missing_code() -> None:
    err = make_status_error(400, json.dumps({"error": "bad thing"}), {})
    assert type(err) is errors.BadRequestResponseError
    assert str(err) == "bad thing"
    err = make_status_error(404, json.dumps({"error": {"message": "nope"}}), {})
    assert err.code is None and err.status_code == 404


def test_body_is_kept_and_cut() -> None:
    big = body(500, "x" * 20_000)
    err = make_status_error(500, big, {})
    assert len(err.body) == errors.BODY_LIMIT
    assert err.body == big[: errors.BODY_LIMIT]


def test_fields_carried() -> None:
    text = body(429, "Rate limit exceeded: free-models-per-min", {"provider_name": None}, user_id="user_123")
    err = make_status_error(429, text, {"X-Generation-Id": "gen-9", "Content-Type": "application/json"})
    assert err.user_id == "user_123"
    assert err.generation_id == "gen-9"
    assert err.headers["content-type"] == "application/json"
    assert err.metadata == {"provider_name": None}
    assert err.provider_name is None


def test_generation_id_from_body() -> None:
    err = make_status_error(400, json.dumps({"id": "gen-7", "error": {"code": 400, "message": "m"}}), {})
    assert err.generation_id == "gen-7"


# ---------------------------------------------------------------- readable messages


def test_provider_returned_error_with_raw_json_string() -> None:
    raw = json.dumps({"error": {"message": "Input is too long for requested model.", "type": "invalid_request_error"}})
    err = make_status_error(400, body(400, "Provider returned error", {"raw": raw, "provider_name": "Anthropic"}), {})
    assert str(err) == "Anthropic returned error: Input is too long for requested model."
    assert err.provider_name == "Anthropic"
    assert err.metadata["raw"] == raw


def test_provider_returned_error_with_raw_object() -> None:
    raw = {"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}}
    err = make_status_error(429, body(429, "Provider returned error", {"raw": raw, "provider_name": "Google"}), {})
    assert str(err) == "Google returned error: Resource exhausted"


def test_provider_returned_error_with_raw_plain_text() -> None:
    meta = {"raw": "deepseek-r1 is temporarily rate-limited upstream", "provider_name": None}
    err = make_status_error(429, body(429, "Provider returned error", meta), {})
    assert str(err) == "Provider returned error: deepseek-r1 is temporarily rate-limited upstream"


def test_specific_message_is_augmented_by_raw() -> None:
    err = make_status_error(502, body(502, "Upstream failed", {"raw": {"detail": "GPU fell over"}}), {})
    assert str(err) == "Upstream failed: GPU fell over"


def test_huge_raw_is_clipped_in_message_but_kept_in_metadata() -> None:
    raw = "y" * 5000
    err = make_status_error(502, body(502, "Provider returned error", {"raw": raw}), {})
    assert len(str(err)) < 600
    assert err.metadata["raw"] == raw


def test_moderation_reasons_in_message_and_hint() -> None:
    meta = {"reasons": ["misc", "violence"], "flagged_input": "…", "provider_name": "OpenAI", "model_slug": "x"}
    msg = 'x requires moderation on OpenAI. Your input was flagged for "misc". No credits were charged.'
    err = make_status_error(403, body(403, msg, meta), {})
    assert type(err) is errors.ForbiddenResponseError
    assert "flagged" in str(err)
    assert "moderation" in err.hint


def test_moderation_reasons_appended_when_message_lacks_them() -> None:
    err = make_status_error(403, body(403, "Blocked", {"reasons": ["hate"]}), {})
    assert str(err) == "Blocked (flagged for: hate)"


def test_availability_error_without_code() -> None:
    payload = {
        "error": {
            "message": "Model capacity exhausted",
            "error_type": "capacity_exhausted",
            "http_status": 429,
            "availability": {
                "code": "capacity_exhausted",
                "retryable": True,
                "retry_after": 4,
                "fallback_models": ["a/b", "c/d"],
            },
        }
    }
    err = make_status_error(429, json.dumps(payload), {})
    assert type(err) is errors.TooManyRequestsResponseError
    assert err.code is None
    assert err.error_type == "capacity_exhausted"
    assert err.retry_after == 4.0
    assert err.availability and err.availability["retryable"] is True
    assert "capacity_exhausted" in str(err) and "a/b" in str(err)


def test_availability_model_not_found_hint() -> None:
    payload = {"error": {"message": "", "availability": {"code": "model_not_found", "retryable": False}}}
    err = make_status_error(400, json.dumps(payload), {})
    assert "Model not found" in str(err)
    assert "%chat models" in err.hint


def test_typed_error_type_read_from_metadata() -> None:
    err = make_status_error(400, body(400, "too long", {"error_type": "context_length_exceeded"}), {})
    assert err.error_type == "context_length_exceeded"
    assert "context" in err.hint


# ---------------------------------------------------------------- hints


@pytest.mark.parametrize(
    "status,message,needle",
    [
        (401, "No cookie auth credentials found", "OPENROUTER_API_KEY"),
        (401, "User not found.", "%chat key"),
        (402, "Insufficient credits", "credits"),
        (402, "Insufficient credits", "max_tokens"),
        (404, "No endpoints found matching your data policy", "routing"),
        (400, "foo/bar is not a valid model ID", "%chat models"),
        (400, 'Only one of "reasoning.effort" and "reasoning.max_tokens" can be specified', "not both"),
        (408, "timeout", "retry"),
        (413, "too large", "shorten"),
        (500, "Internal Server Error", "retry"),
        (502, "Provider returned error", "another"),
        (503, "No available model provider", "another"),
        (524, "timeout", "retry"),
        (529, "overloaded", "overloaded"),
    ],
)
def test_hints(status: int, message: str, needle: str) -> None:
    assert needle in make_status_error(status, body(status, message), {}).hint


def test_402_hint_names_the_affordable_max_tokens() -> None:
    msg = (
        "This request requires more credits, or fewer max_tokens. "
        "You requested up to 4096 tokens, but can only afford 1234."
    )
    assert "1234" in make_status_error(402, body(402, msg), {}).hint


def test_429_hint_says_how_long_to_wait() -> None:
    err = make_status_error(429, body(429, "Rate limit exceeded"), {"Retry-After": "20"})
    assert err.retry_after == 20.0
    assert "wait 20 s" in err.hint
    assert "wait a moment" in make_status_error(429, body(429, "Rate limit exceeded"), {}).hint


def test_429_hint_for_free_models() -> None:
    err = make_status_error(429, body(429, "Rate limit exceeded: free-models-per-day"), {})
    assert "credits" in err.hint


def test_config_error_hint() -> None:
    err = errors.ConfigError("No OpenRouter API key")
    assert "OPENROUTER_API_KEY" in err.hint and "%chat key" in err.hint


# ---------------------------------------------------------------- retry_after


def test_retry_after_sources() -> None:
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    now = 1_800_000_000.0
    assert parse_retry_after({"Retry-After": formatdate(now + 30, usegmt=True)}, now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after({"Retry-After": formatdate(now - 30, usegmt=True)}, now=now) == 0.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}, {"error": {"availability": {"retry_after": 12}}}) == 12.0
    assert parse_retry_after({}, {"error": {"metadata": {"availability": {"retry_after": "2.5"}}}}) == 2.5
    assert parse_retry_after({}) is None


def test_ratelimit_reset_only_on_429() -> None:
    now = 1_800_000_000.0
    reset = str(int((now + 42) * 1000))
    meta = {"headers": {"X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}}
    payload = json.loads(body(429, "Rate limit exceeded: free-models-per-min", meta))
    assert parse_retry_after({}, payload, status=429, now=now) == pytest.approx(42)
    assert parse_retry_after({}, payload, status=500, now=now) is None
    headers = {"x-ratelimit-reset": str(int((now + 5) * 1000))}
    assert parse_retry_after(headers, None, status=429, now=now) == pytest.approx(5)


# ---------------------------------------------------------------- stream errors (HTTP 200)

DOCUMENTED = {
    "id": "gen-1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "openai/gpt-4o",
    "provider": "OpenAI",
    "error": {"code": 502, "message": "Provider disconnected", "metadata": {"error_type": "provider_unavailable"}},
    "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error", "native_finish_reason": "error"}],
}


def test_stream_error_documented_shape() -> None:
    err = make_stream_error(DOCUMENTED)
    assert type(err) is errors.StreamError
    assert err.status_code == 502 and err.code == 502
    assert err.error_type == "provider_unavailable"
    assert err.generation_id == "gen-1"
    assert str(err) == "Provider disconnected"
    assert "retry" in err.hint


def test_stream_error_string_code() -> None:
    err = make_stream_error({"error": {"code": "server_error", "message": "Provider disconnected unexpectedly"}})
    assert err.code == "server_error" and err.status_code is None
    assert "Provider disconnected" in str(err)
    assert err.hint


def test_stream_error_raw_metadata() -> None:
    meta = {"raw": '{"message":"slow down"}', "provider_name": "Groq"}
    payload = {"error": {"code": 429, "message": "Provider returned error", "metadata": meta}}
    err = make_stream_error(payload)
    assert str(err) == "Groq returned error: slow down"
    assert err.provider_name == "Groq"


def test_stream_error_bare_event() -> None:
    payload = {"error": {"code": 429, "message": "Rate limit exceeded: free-models-per-day"}, "user_id": "u"}
    err = make_stream_error(payload)
    assert err.status_code == 429 and err.user_id == "u"
    assert "credits" in err.hint


def test_stream_error_finish_only() -> None:
    acc = ChatAccumulator()
    err = make_stream_error(None, partial=acc, native_finish_reason="MALFORMED_FUNCTION_CALL")
    assert "MALFORMED_FUNCTION_CALL" in str(err)
    assert err.partial is acc
    assert err.error_type == "MALFORMED_FUNCTION_CALL"


# ---------------------------------------------------------------- the key never leaks


def test_key_never_in_str_repr_headers_body_or_to_dict() -> None:
    errors.remember_secret("custom-secret-without-prefix")
    text = body(401, f"Invalid key {KEY} (custom-secret-without-prefix)", {"raw": f"Bearer {KEY}"})
    headers = {
        "Authorization": f"Bearer {KEY}",
        "Set-Cookie": f"session={KEY}",
        "Cookie": "a=b",
        "X-Echo": KEY,
        "content-type": "application/json",
    }
    err = make_status_error(401, text, headers)
    everything = " ".join(
        [str(err), repr(err), err.body, json.dumps(err.headers), json.dumps(err.to_dict()), err.hint]
        + err._render_traceback_()
    )
    assert KEY not in everything
    assert KEY[10:40] not in everything
    assert "custom-secret-without-prefix" not in everything
    assert "authorization" not in err.headers and "set-cookie" not in err.headers and "cookie" not in err.headers
    assert "[redacted]" in str(err)


def test_key_scrubbed_from_html_and_stream_errors() -> None:
    err = make_status_error(500, f"<html><title>oops {KEY}</title></html>", {})
    assert KEY not in str(err) and KEY not in err.body
    serr = make_stream_error({"error": {"code": 500, "message": f"echo {KEY}"}}, body=json.dumps({"k": KEY}))
    assert KEY not in str(serr) and KEY not in serr.body and KEY not in json.dumps(serr.to_dict())


# ---------------------------------------------------------------- presentation


def test_render_traceback_is_one_line() -> None:
    err = make_status_error(402, body(402, "Insufficient\ncredits"), {})
    lines = err._render_traceback_()
    assert len(lines) == 1 and "\n" not in lines[0]
    assert lines[0].startswith("PaymentRequiredResponseError (HTTP 402): Insufficient credits")
    assert "credits" in lines[0]


def test_to_dict_is_json_and_complete() -> None:
    acc = ChatAccumulator()
    acc.add(ChatStreamChunk.model_validate({"id": "g", "choices": [{"index": 0, "delta": {"content": "half an ans"}}]}))
    err = make_stream_error(DOCUMENTED, partial=acc, headers={"x-generation-id": "gen-1"})
    data = json.loads(json.dumps(err.to_dict()))
    assert data["type"] == "StreamError"
    assert data["status_code"] == 502
    assert data["partial"]["text"] == "half an ans"
    assert data["headers"] == {"x-generation-id": "gen-1"}
    for key in ("message", "code", "metadata", "provider_name", "body", "hint", "generation_id", "retry_after"):
        assert key in data


def test_repr_names_the_essentials() -> None:
    err = make_status_error(429, body(429, "slow"), {"retry-after": "2"})
    assert repr(err) == "TooManyRequestsResponseError(message='slow', status_code=429, code=429, retry_after=2.0)"


def test_pickle_round_trip() -> None:
    err = make_status_error(503, body(503, "down"), {"retry-after": "1"})
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is errors.ServiceUnavailableResponseError
    assert str(copy) == "down" and copy.status_code == 503 and copy.retry_after == 1.0


def test_errors_are_raisable_and_catchable_as_chat_error() -> None:
    with pytest.raises(errors.ChatError) as info:
        raise make_status_error(400, body(400, "bad"), {})
    assert info.value.message == "bad"


def test_every_exception_class_lives_in_errors_and_old_paths_still_work() -> None:
    """One tree: every class of the package is defined in errors.py, under OrMagicError, and the modules
    that raise them still export the same objects."""
    import importlib
    import inspect
    import pkgutil

    import or_magic
    from or_magic import attachments, cache, context, conversation, schema, session, tools

    for info in pkgutil.iter_modules(or_magic.__path__):
        if info.name in {"magics", "commands", "panel", "display"}:  # the faces need IPython widgets loaded
            continue
        module = importlib.import_module(f"or_magic.{info.name}")
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__.startswith("or_magic"):
                public = not name.startswith("_") and module.__name__ != "or_magic.sandbox"
                if public:
                    assert obj.__module__ == "or_magic.errors", (module.__name__, name)
                    assert issubclass(obj, errors.OrMagicError), name
    assert attachments.AttachmentError is errors.AttachmentError and issubclass(errors.AttachmentError, ValueError)
    assert context.UnknownVariable is errors.UnknownVariable and issubclass(errors.UnknownVariable, KeyError)
    assert conversation.ThreadBusyError is errors.ThreadBusyError
    assert schema.StructuredOutputError is errors.StructuredOutputError
    assert tools.ToolError is errors.ToolError and cache.CacheError is errors.CacheError
    assert session.TurnInterrupted is errors.TurnInterrupted and session.TurnFailed is errors.TurnFailed
    assert session.BudgetExceededError is errors.BudgetExceededError
    assert issubclass(errors.BudgetExceededError, errors.ConfigError)
    assert issubclass(errors.CacheError, OSError)
    for name in errors.__all__:
        obj = getattr(errors, name)
        if inspect.isclass(obj):
            assert name in errors.__doc__, f"{name} missing from the tree drawn in errors.__doc__"
