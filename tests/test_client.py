"""The client over httpx.MockTransport: every response shape, retry rule, timeout, header and parameter."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
from collections.abc import Callable, Iterator
from email.utils import formatdate
from typing import Any

import httpx
import pytest

import or_magic.errors as errors
from or_magic.accumulate import ChatAccumulator
from or_magic.client import (
    BODY_FIELDS,
    DEFAULT_TIMEOUT,
    EventStream,
    EventStreamAsync,
    OpenRouter,
    RetryConfig,
    build_request_body,
)
from or_magic.types import ChatResult, ChatStreamChunk, KeyInfo, ModelInfo, TextPart, UserMessage

KEY = "sk-or-v1-feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface"
NOW = 1_800_000_000.0
MSGS = [{"role": "user", "content": "Hi"}]

# ---------------------------------------------------------------- helpers


def chunk(
    content: str | None = "",
    *,
    finish: str | None = None,
    native: str | None = None,
    usage: dict | None = None,
    gid: str = "gen-1786090000-abc",
    **delta: Any,
) -> dict[str, Any]:
    """A chunk shaped like 2026 OpenRouter traffic (role repeated on every chunk)."""
    event: dict[str, Any] = {
        "id": gid,
        "object": "chat.completion.chunk",
        "created": 1786090000,
        "model": "anthropic/claude-sonnet-4.5",
        "provider": "Anthropic",
        "choices": [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": content, **delta},
                "finish_reason": finish,
                "native_finish_reason": native,
                "logprobs": None,
            }
        ],
    }
    if usage is not None:
        event["usage"] = usage
    return event


USAGE = {
    "prompt_tokens": 14,
    "completion_tokens": 2,
    "total_tokens": 16,
    "cost": 0.0000033,
    "is_byok": False,
    "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0, "audio_tokens": 0, "video_tokens": 0},
    "cost_details": {"upstream_inference_cost": None, "upstream_inference_prompt_cost": 2.1e-06},
    "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": 0, "audio_tokens": 0},
}


def sse(*events: dict | str, done: bool = True) -> bytes:
    out = b": OPENROUTER PROCESSING\n\n"
    for event in events:
        data = event if isinstance(event, str) else json.dumps(event)
        out += b"data: " + data.encode() + b"\n\n"
    if done:
        out += b"data: [DONE]\n\n"
    return out


def split_bytes(data: bytes, size: int = 7) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


class Parts(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body delivered in pieces; an Exception piece is raised there (a dropped connection)."""

    def __init__(self, parts: list[bytes | Exception]) -> None:
        self.parts = parts
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for part in self.parts:
            if isinstance(part, Exception):
                raise part
            yield part

    async def __aiter__(self):  # type: ignore[override]
        for part in self.parts:
            if isinstance(part, Exception):
                raise part
            yield part

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def sse_response(data: bytes | list[bytes | Exception], status: int = 200, **headers: str) -> httpx.Response:
    parts = split_bytes(data) if isinstance(data, bytes) else data
    hdrs = {"content-type": "text/event-stream", "x-generation-id": "gen-1786090000-abc", **headers}
    return httpx.Response(status, headers=hdrs, stream=Parts(parts))


def body_stream(response: httpx.Response) -> Parts:
    """The Parts object behind a response (httpx wraps it once sent)."""
    return getattr(response.stream, "_stream", response.stream)


def json_response(payload: Any, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=payload, headers=headers)


def error_response(status: int, message: str = "boom", **headers: str) -> httpx.Response:
    return json_response({"error": {"code": status, "message": message}, "user_id": "user_1"}, status, **headers)


RESULT = {
    "id": "gen-1786090000-xyz",
    "provider": "OpenAI",
    "model": "openai/gpt-4o-mini",
    "object": "chat.completion",
    "created": 1786090000,
    "choices": [
        {
            "logprobs": None,
            "finish_reason": "stop",
            "native_finish_reason": "stop",
            "index": 0,
            "message": {"role": "assistant", "content": "Paris.", "refusal": None, "reasoning": None},
        }
    ],
    "usage": USAGE,
}


class Recorder:
    """A MockTransport handler that replays canned responses and records the requests."""

    def __init__(self, *responses: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(item, Exception):
            raise item
        if callable(item) and not isinstance(item, httpx.Response):
            return item(request)
        return item

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(self.requests[-1].content)


def make(handler: Recorder, **kwargs: Any) -> tuple[OpenRouter, list[float]]:
    sleeps: list[float] = []
    kwargs.setdefault("api_key", KEY)
    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = OpenRouter(client=http, sleep=sleeps.append, clock=lambda: NOW, **kwargs)
    client._random = lambda: 0.0
    return client, sleeps


def make_async(handler: Recorder, **kwargs: Any) -> tuple[OpenRouter, list[float]]:
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    kwargs.setdefault("api_key", KEY)
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = OpenRouter(async_client=http, async_sleep=fake_sleep, clock=lambda: NOW, **kwargs)
    client._random = lambda: 0.0
    return client, sleeps


def stream_all(client: OpenRouter, **kwargs: Any) -> tuple[EventStream, list[ChatStreamChunk]]:
    with client.chat.send(messages=MSGS, model="m", stream=True, **kwargs) as s:
        chunks = list(s)
    return s, chunks


# ---------------------------------------------------------------- non-streaming


def test_non_streaming_result_keeps_openrouter_extras() -> None:
    payload = json.loads(json.dumps(RESULT))
    payload["choices"][0]["message"]["annotations"] = [{"type": "url_citation", "url_citation": {"url": "u"}}]
    payload["openrouter_metadata"] = {"pipeline": []}
    rec = Recorder(json_response(payload))
    client, _ = make(rec)
    res = client.chat.send(messages=MSGS, model="openai/gpt-4o-mini")
    assert isinstance(res, ChatResult)
    assert res.choices[0].message.content == "Paris."
    assert res.provider == "OpenAI"
    assert res.system_fingerprint is None  # absent, and that is fine
    assert res.choices[0].native_finish_reason == "stop"
    assert res.choices[0].message.annotations == payload["choices"][0]["message"]["annotations"]
    assert res.usage.cost == 0.0000033 and res.usage.is_byok is False
    assert res.usage.cost_details.upstream_inference_prompt_cost == 2.1e-06
    assert res.model_extra["openrouter_metadata"] == {"pipeline": []}
    assert rec.body["stream"] is False


def test_non_streaming_tool_calls_and_reasoning() -> None:
    payload = json.loads(json.dumps(RESULT))
    payload["choices"][0]["message"].update(
        content="",
        reasoning="think",
        reasoning_details=[{"type": "reasoning.text", "text": "think", "signature": "sig", "index": 0}],
        tool_calls=[{"id": "c1", "type": "function", "index": 0, "function": {"name": "f", "arguments": "{}"}}],
    )
    payload["choices"][0]["finish_reason"] = "tool_calls"
    client, _ = make(Recorder(json_response(payload)))
    msg = client.chat.send(messages=MSGS).choices[0].message
    assert msg.tool_calls[0].function.name == "f"
    assert msg.reasoning_details[0]["signature"] == "sig"


def test_error_only_200_body_raises_stream_error() -> None:
    body = {"error": {"code": 429, "message": "Rate limit exceeded: free-models-per-day"}, "user_id": "user_x"}
    client, _ = make(Recorder(json_response(body)))
    with pytest.raises(errors.StreamError) as info:
        client.chat.send(messages=MSGS)
    assert info.value.status_code == 429
    assert info.value.user_id == "user_x"
    assert "free-models-per-day" in str(info.value)


def test_choice_error_in_non_streaming_result_keeps_partial() -> None:
    payload = json.loads(json.dumps(RESULT))
    payload["choices"][0].update(
        finish_reason="error",
        message={"role": "assistant", "content": "Half an answ"},
        error={"code": 502, "message": "Provider disconnected", "metadata": {"error_type": "provider_unavailable"}},
    )
    client, _ = make(Recorder(json_response(payload)))
    with pytest.raises(errors.StreamError) as info:
        client.chat.send(messages=MSGS)
    err = info.value
    assert err.status_code == 502 and err.error_type == "provider_unavailable"
    assert isinstance(err.partial, ChatAccumulator)
    assert err.partial.text == "Half an answ"
    assert err.partial.usage.total_tokens == 16


def test_finish_reason_error_without_error_object_non_streaming() -> None:
    payload = json.loads(json.dumps(RESULT))
    payload["choices"][0].update(finish_reason="error", native_finish_reason="MALFORMED_FUNCTION_CALL")
    client, _ = make(Recorder(json_response(payload)))
    with pytest.raises(errors.StreamError, match="MALFORMED_FUNCTION_CALL") as info:
        client.chat.send(messages=MSGS)
    assert info.value.partial.text == "Paris."


def test_unparseable_200_body_is_a_validation_error() -> None:
    client, _ = make(Recorder(httpx.Response(200, content=b"<html>captive portal</html>")))
    with pytest.raises(errors.ResponseValidationError) as info:
        client.chat.send(messages=MSGS)
    assert "captive portal" in info.value.body
    assert info.value.cause is not None


def test_sse_answer_to_a_non_streaming_request_is_folded() -> None:
    client, _ = make(Recorder(sse_response(sse(chunk("Hel"), chunk("lo", finish="stop"), chunk(usage=USAGE)))))
    res = client.chat.send(messages=MSGS)
    assert res.choices[0].message.content == "Hello"
    assert res.choices[0].finish_reason == "stop"
    assert res.usage.total_tokens == 16


@pytest.mark.parametrize("status", sorted(errors._BY_STATUS))
def test_http_errors_raise_their_class(status: int) -> None:
    client, _ = make(Recorder(error_response(status, "nope")), retry_config=RetryConfig.none())
    with pytest.raises(errors._BY_STATUS[status]) as info:
        client.chat.send(messages=MSGS)
    assert info.value.status_code == status and str(info.value) == "nope"
    assert info.value.user_id == "user_1"


def test_html_error_page_is_default_error() -> None:
    page = httpx.Response(
        503, content=b"<html><title>Bad gateway | Cloudflare</title></html>", headers={"content-type": "text/html"}
    )
    client, _ = make(Recorder(page), retry_config=RetryConfig.none())
    with pytest.raises(errors.OpenRouterDefaultError, match="Cloudflare") as info:
        client.chat.send(messages=MSGS)
    assert info.value.status_code == 503


def test_http_error_on_streaming_request_raises_before_iteration() -> None:
    client, _ = make(Recorder(error_response(402, "Insufficient credits")))
    with pytest.raises(errors.PaymentRequiredResponseError):
        client.chat.send(messages=MSGS, stream=True)


# ---------------------------------------------------------------- streaming: OpenRouter's quirks


def test_streaming_basic_and_usage_chunk_with_null_finish_reason() -> None:
    events = sse(chunk(""), chunk("Hel"), chunk("lo", finish="stop", native="end_turn"), chunk("", usage=USAGE))
    client, _ = make(Recorder(sse_response(events)))
    s, chunks = stream_all(client)
    assert len(chunks) == 4
    assert all(isinstance(c, ChatStreamChunk) for c in chunks)
    acc = s.accumulator
    assert acc.text == "Hello"
    assert acc.finish_reason == "stop"  # the usage chunk's null did not erase it
    assert acc.native_finish_reason == "end_turn"
    assert acc.usage.cost == 0.0000033
    assert acc.model == "anthropic/claude-sonnet-4.5" and acc.provider == "Anthropic"
    assert acc.id == "gen-1786090000-abc" and s.generation_id == "gen-1786090000-abc"
    assert acc.chunks == 4
    assert acc.message() == {"role": "assistant", "content": "Hello"}
    assert s.headers["content-type"] == "text/event-stream"


def test_streaming_without_done_ends_at_eof() -> None:
    client, _ = make(Recorder(sse_response(sse(chunk("a"), chunk("b", finish="stop"), done=False))))
    s, chunks = stream_all(client)
    assert s.accumulator.text == "ab" and len(chunks) == 2


def test_streaming_debug_first_chunk_with_empty_choices() -> None:
    debug = {"id": "gen-1", "choices": [], "debug": {"echo_upstream_body": {"model": "x", "messages": []}}}
    client, _ = make(Recorder(sse_response(sse(debug, chunk("hi", finish="stop")))))
    s, chunks = stream_all(client, debug={"echo_upstream_body": True})
    assert chunks[0].choices == []
    assert chunks[0].model_extra["debug"]["echo_upstream_body"]["model"] == "x"
    assert s.accumulator.text == "hi"


def test_streaming_reasoning_details_merged_by_index() -> None:
    d = "reasoning.text"
    events = sse(
        chunk(
            "",
            reasoning="Let me",
            reasoning_details=[{"type": d, "text": "Let me", "index": 0, "format": "anthropic-claude-v1"}],
        ),
        chunk(
            "",
            reasoning=" think",
            reasoning_details=[{"type": d, "text": " think", "index": 0, "format": "anthropic-claude-v1"}],
        ),
        chunk("", reasoning=None, reasoning_details=[]),
        chunk(
            "",
            reasoning_details=[
                {"type": d, "text": "", "signature": "EqAB", "index": 0, "format": "anthropic-claude-v1"}
            ],
        ),
        chunk("", reasoning_details=[{"type": "reasoning.encrypted", "data": "opaque", "index": 1}]),
        chunk("Answer", finish="stop"),
    )
    client, _ = make(Recorder(sse_response(events)))
    s, _ = stream_all(client)
    acc = s.accumulator
    assert acc.reasoning == "Let me think"
    assert acc.reasoning_details == [
        {"type": d, "text": "Let me think", "index": 0, "format": "anthropic-claude-v1", "signature": "EqAB"},
        {"type": "reasoning.encrypted", "data": "opaque", "index": 1},
    ]
    msg = acc.message()
    assert msg["content"] == "Answer"
    assert msg["reasoning_details"] == acc.reasoning_details


def test_streaming_parallel_tool_calls_by_index() -> None:
    def tc(index: int, args: str, **first: Any) -> dict:
        return {
            "index": index,
            **first,
            "function": {"arguments": args, **({"name": first.pop("name")} if "name" in first else {})},
        }

    events = sse(
        chunk(
            None,
            tool_calls=[
                {"index": 0, "id": "call_a", "type": "function", "function": {"name": "weather", "arguments": ""}}
            ],
        ),
        chunk(
            None,
            tool_calls=[
                {"index": 1, "id": "call_b", "type": "function", "function": {"name": "time", "arguments": '{"tz"'}}
            ],
        ),
        chunk(None, tool_calls=[{"index": 0, "function": {"arguments": '{"city":'}}]),
        chunk(None, tool_calls=[{"index": 1, "function": {"arguments": ':"UTC"}'}}]),
        chunk(None, tool_calls=[{"index": 0, "function": {"arguments": '"Paris"}'}}]),
        chunk("", finish="tool_calls", native="tool_use"),
        chunk("", usage=USAGE),
    )
    client, _ = make(Recorder(sse_response(events)))
    s, _ = stream_all(client)
    acc = s.accumulator
    assert acc.tool_calls == [
        {"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_b", "type": "function", "function": {"name": "time", "arguments": '{"tz":"UTC"}'}},
    ]
    assert acc.finish_reason == "tool_calls"
    assert acc.message()["tool_calls"] == acc.tool_calls
    assert acc.message()["content"] == ""
    result = acc.result()
    assert result.choices[0].message.tool_calls[1].function.arguments == '{"tz":"UTC"}'


def test_streaming_images_and_annotations() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    cite = {
        "type": "url_citation",
        "url_citation": {"url": "https://e.org", "title": "E", "start_index": 0, "end_index": 3},
    }
    events = sse(chunk("Here", images=[image]), chunk(" it is", annotations=[cite], finish="stop"))
    client, _ = make(Recorder(sse_response(events)))
    s, chunks = stream_all(client)
    assert chunks[0].choices[0].delta.images == [image]
    acc = s.accumulator
    assert acc.images == ["data:image/png;base64,iVBORw0KGgo="]
    assert acc.annotations == [cite]
    assert acc.message() == {"role": "assistant", "content": "Here it is", "images": [image], "annotations": [cite]}


def test_streaming_unknown_fields_kept_and_missing_ones_fine() -> None:
    odd = {"choices": [{"delta": {"content": "x", "brand_new": 1}, "novel": True}], "surprise": {"a": 1}}
    client, _ = make(Recorder(sse_response(sse(odd))))
    _, chunks = stream_all(client)
    assert chunks[0].model_extra["surprise"] == {"a": 1}
    assert chunks[0].choices[0].delta.model_extra["brand_new"] == 1


def test_streaming_utf8_split_across_network_chunks() -> None:
    data = sse(chunk("héllo 😀 €"), chunk("", finish="stop"))
    client, _ = make(Recorder(sse_response([data[i : i + 1] for i in range(len(data))])))
    s, _ = stream_all(client)
    assert s.accumulator.text == "héllo 😀 €"


def test_streaming_response_without_content_type_is_read_as_sse() -> None:
    resp = httpx.Response(200, stream=Parts(split_bytes(sse(chunk("a"), chunk("b", finish="stop")))))
    client, _ = make(Recorder(resp))
    s, _ = stream_all(client)
    assert s.accumulator.text == "ab"


def test_json_answer_to_a_streaming_request_becomes_one_chunk() -> None:
    client, _ = make(Recorder(json_response(RESULT)))
    s, chunks = stream_all(client)
    assert len(chunks) == 1 and s.accumulator.text == "Paris."
    assert s.accumulator.usage.total_tokens == 16


def test_json_error_to_a_streaming_request_raises() -> None:
    client, _ = make(Recorder(json_response({"error": {"code": 503, "message": "down"}})))
    with pytest.raises(errors.StreamError):
        client.chat.send(messages=MSGS, stream=True)


# ---------------------------------------------------------------- streaming: mid-stream errors

ERR_DOC = {
    "id": "gen-1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "openai/gpt-4o",
    "provider": "OpenAI",
    "error": {"code": 502, "message": "Provider disconnected", "metadata": {"error_type": "provider_unavailable"}},
    "choices": [{"index": 0, "delta": {"content": "!"}, "finish_reason": "error", "native_finish_reason": "error"}],
}
MIDSTREAM_SHAPES = {
    "documented": ERR_DOC,
    "string-code": {**ERR_DOC, "error": {"code": "server_error", "message": "Provider disconnected"}},
    "raw-metadata": {
        **ERR_DOC,
        "error": {
            "code": 502,
            "message": "Provider returned error",
            "metadata": {"raw": '{"error":{"message":"Provider disconnected"}}', "provider_name": "OpenAI"},
        },
    },
    "empty-choices": {**ERR_DOC, "choices": []},
    "bare": {"error": {"code": 502, "message": "Provider disconnected"}, "user_id": "user_1"},
    "choice-error": {
        "id": "gen-1",
        "choices": [
            {
                "index": 0,
                "delta": {},
                "finish_reason": "error",
                "error": {"code": 502, "message": "Provider disconnected"},
            }
        ],
    },
    "string-error": {"error": "Provider disconnected"},
}


@pytest.mark.parametrize("shape", sorted(MIDSTREAM_SHAPES))
@pytest.mark.parametrize("done", [True, False])
def test_midstream_error_shapes_raise_with_partial(shape: str, done: bool) -> None:
    events = sse(chunk("Half an "), chunk("answer"), MIDSTREAM_SHAPES[shape], done=done)
    client, _ = make(Recorder(sse_response(events)))
    seen: list[str] = []
    with pytest.raises(errors.StreamError) as info, client.chat.send(messages=MSGS, stream=True) as s:
        for c in s:
            seen.append(c.choices[0].delta.content)
    err = info.value
    assert seen == ["Half an ", "answer"]
    assert "Provider disconnected" in str(err)
    assert err.partial is s.accumulator
    expected = "Half an answer!" if shape in ("documented", "string-code", "raw-metadata") else "Half an answer"
    assert err.partial.text == expected
    assert err.hint
    assert s.response.is_closed


def test_midstream_bare_error_as_only_event() -> None:
    client, _ = make(Recorder(sse_response(sse(MIDSTREAM_SHAPES["bare"], done=False))))
    with pytest.raises(errors.StreamError) as info:
        stream_all(client)
    assert info.value.partial.text == "" and info.value.user_id == "user_1"


def test_finish_reason_error_without_error_object() -> None:
    events = sse(chunk("partial"), chunk("", finish="error", native="MALFORMED_FUNCTION_CALL"), chunk("", usage=USAGE))
    client, _ = make(Recorder(sse_response(events)))
    seen = []
    with pytest.raises(errors.StreamError, match="MALFORMED_FUNCTION_CALL") as info:  # noqa: SIM117
        with client.chat.send(messages=MSGS, stream=True) as s:
            seen.extend(s)
    assert len(seen) == 3  # the usage chunk after it still arrives
    assert info.value.partial.text == "partial"
    assert info.value.partial.usage.total_tokens == 16


def test_malformed_chunk_is_a_validation_error_with_partial() -> None:
    events = sse(chunk("ok so far"), '{"id": "gen-1", "choices": [ {not json')
    client, _ = make(Recorder(sse_response(events)))
    with pytest.raises(errors.ResponseValidationError) as info:
        stream_all(client)
    assert info.value.partial.text == "ok so far"
    assert "{not json" in info.value.body
    assert info.value.cause is not None


def test_connection_dropped_mid_stream_keeps_partial_and_is_not_retried() -> None:
    parts = [sse(chunk("Hello "), done=False), httpx.RemoteProtocolError("peer closed connection")]
    rec = Recorder(sse_response(parts))
    client, sleeps = make(rec)
    with pytest.raises(errors.APIConnectionError) as info:
        stream_all(client)
    assert type(info.value) is errors.APIConnectionError
    assert info.value.partial.text == "Hello "
    assert "mid-stream" in str(info.value)
    assert len(rec.requests) == 1 and sleeps == []


def test_read_timeout_mid_stream_is_a_timeout_error_naming_the_timeout() -> None:
    parts = [sse(chunk("Hello "), done=False), httpx.ReadTimeout("timed out")]
    rec = Recorder(sse_response(parts))
    client, _ = make(rec, timeout_ms=45_000)
    with pytest.raises(errors.APITimeoutError) as info:
        stream_all(client)
    assert "read timeout" in str(info.value) and "45 s" in str(info.value)
    assert info.value.partial.text == "Hello "
    assert len(rec.requests) == 1


def test_close_closes_the_response_and_stops() -> None:
    body = sse(*[chunk(f"{i} ") for i in range(50)])
    resp = sse_response(body)
    client, _ = make(Recorder(resp))
    with client.chat.send(messages=MSGS, stream=True) as s:
        first = next(s)
        s.close()
        assert list(s) == []
    assert first.choices[0].delta.content == "0 "
    assert resp.is_closed and body_stream(resp).closed


def test_leaving_the_with_block_early_closes_the_response() -> None:
    resp = sse_response(sse(*[chunk("x") for _ in range(20)]))
    client, _ = make(Recorder(resp))
    with client.chat.send(messages=MSGS, stream=True) as s:
        for _ in s:
            break
    assert resp.is_closed and body_stream(resp).closed


def test_completed_stream_releases_the_response() -> None:
    resp = sse_response(sse(chunk("x", finish="stop")))
    client, _ = make(Recorder(resp))
    s = client.chat.send(messages=MSGS, stream=True)
    assert [c.choices[0].delta.content for c in s] == ["x"]
    assert resp.is_closed


# ---------------------------------------------------------------- retries


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 524, 529])
def test_retryable_statuses_are_retried(status: int) -> None:
    rec = Recorder(error_response(status), error_response(status), json_response(RESULT))
    client, sleeps = make(rec)
    assert client.chat.send(messages=MSGS).choices[0].message.content == "Paris."
    assert len(rec.requests) == 3
    assert sleeps == [0.5, 1.0]  # exponential backoff (jitter pinned to 0)


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 413, 422, 418])
def test_other_statuses_are_not_retried(status: int) -> None:
    rec = Recorder(error_response(status), json_response(RESULT))
    client, sleeps = make(rec)
    with pytest.raises(errors.ChatError):
        client.chat.send(messages=MSGS)
    assert len(rec.requests) == 1 and sleeps == []


def test_retries_exhausted_raise_the_last_typed_error() -> None:
    rec = Recorder(error_response(503, "still down"))
    client, sleeps = make(rec)
    with pytest.raises(errors.ServiceUnavailableResponseError, match="still down") as info:
        client.chat.send(messages=MSGS)
    assert len(rec.requests) == 3 and len(sleeps) == 2
    assert info.value.attempts == 3


def test_jitter_shortens_backoff() -> None:
    rec = Recorder(error_response(500), error_response(500), json_response(RESULT))
    client, sleeps = make(rec)
    client._random = lambda: 1.0
    client.chat.send(messages=MSGS)
    assert sleeps == [0.375, 0.75]


def test_backoff_capped_by_max_interval_and_budget() -> None:
    cfg = RetryConfig(max_retries=5, initial_interval=1.0, max_interval=2.0, max_wait=4.5)
    rec = Recorder(error_response(502))
    client, sleeps = make(rec, retry_config=cfg)
    with pytest.raises(errors.BadGatewayResponseError):
        client.chat.send(messages=MSGS)
    assert sleeps == [1.0, 2.0, 1.5]  # the last wait is cut to the remaining budget
    assert sum(sleeps) <= cfg.max_wait


def test_retry_after_seconds_is_honoured() -> None:
    rec = Recorder(error_response(429, **{"Retry-After": "3"}), json_response(RESULT))
    client, sleeps = make(rec)
    client.chat.send(messages=MSGS)
    assert sleeps == [3.0]


def test_retry_after_http_date_is_honoured() -> None:
    rec = Recorder(error_response(503, **{"Retry-After": formatdate(NOW + 4, usegmt=True)}), json_response(RESULT))
    client, sleeps = make(rec)
    client.chat.send(messages=MSGS)
    assert sleeps == [pytest.approx(4.0, abs=1)]


def test_retry_after_ms_is_honoured() -> None:
    rec = Recorder(error_response(429, **{"retry-after-ms": "250"}), json_response(RESULT))
    client, sleeps = make(rec)
    client.chat.send(messages=MSGS)
    assert sleeps == [0.25]


def test_availability_retry_after_is_honoured() -> None:
    body = {
        "error": {
            "message": "Capacity exhausted",
            "availability": {"code": "capacity_exhausted", "retryable": True, "retry_after": 2},
        }
    }
    rec = Recorder(json_response(body, 429), json_response(RESULT))
    client, sleeps = make(rec)
    client.chat.send(messages=MSGS)
    assert sleeps == [2.0]


def test_availability_not_retryable_is_not_retried() -> None:
    body = {"error": {"message": "Temporarily unavailable", "availability": {"code": "x", "retryable": False}}}
    rec = Recorder(json_response(body, 503), json_response(RESULT))
    client, sleeps = make(rec)
    with pytest.raises(errors.ServiceUnavailableResponseError):
        client.chat.send(messages=MSGS)
    assert len(rec.requests) == 1


def test_server_asking_beyond_budget_raises_at_once_with_retry_after() -> None:
    rec = Recorder(error_response(429, "Rate limit exceeded", **{"Retry-After": "60"}), json_response(RESULT))
    client, sleeps = make(rec)
    with pytest.raises(errors.TooManyRequestsResponseError) as info:
        client.chat.send(messages=MSGS)
    assert sleeps == [] and len(rec.requests) == 1
    assert info.value.retry_after == 60.0
    assert "wait 60 s" in info.value.hint


def test_budget_counts_earlier_waits() -> None:
    rec = Recorder(
        error_response(429, **{"Retry-After": "10"}),
        error_response(429, **{"Retry-After": "10"}),
        json_response(RESULT),
    )
    client, sleeps = make(rec)
    with pytest.raises(errors.TooManyRequestsResponseError):
        client.chat.send(messages=MSGS)
    assert sleeps == [10.0] and len(rec.requests) == 2


def test_per_call_retries_override() -> None:
    rec = Recorder(error_response(500), json_response(RESULT))
    client, sleeps = make(rec)
    with pytest.raises(errors.InternalServerResponseError):
        client.chat.send(messages=MSGS, retries=0)
    assert len(rec.requests) == 1
    rec2 = Recorder(error_response(500))
    client2, sleeps2 = make(rec2)
    with pytest.raises(errors.InternalServerResponseError):
        client2.chat.send(messages=MSGS, retries=RetryConfig(max_retries=4, initial_interval=0.1))
    assert len(rec2.requests) == 5
    with pytest.raises(TypeError):
        client.chat.send(messages=MSGS, retries="many")


def test_custom_status_codes() -> None:
    rec = Recorder(error_response(500), json_response(RESULT))
    client, _ = make(rec, retry_config=RetryConfig(status_codes={429}))
    with pytest.raises(errors.InternalServerResponseError):
        client.chat.send(messages=MSGS)
    assert len(rec.requests) == 1


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("busy"), httpx.WriteError("x")],
)
def test_failures_before_the_server_has_the_request_are_retried(exc: Exception) -> None:
    rec = Recorder(exc, json_response(RESULT))
    client, sleeps = make(rec)
    assert client.chat.send(messages=MSGS).choices[0].message.content == "Paris."
    assert len(rec.requests) == 2 and sleeps == [0.5]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    "exc", [httpx.RemoteProtocolError("Server disconnected without sending a response."), httpx.ReadError("reset")]
)
def test_dropped_after_the_request_was_sent_is_not_retried(exc: Exception, stream: bool) -> None:
    """The server may be generating (and billing) the answer: re-sending would pay twice."""
    rec = Recorder(exc, json_response(RESULT))
    client, sleeps = make(rec)
    with pytest.raises(errors.APIConnectionError):
        client.chat.send(messages=MSGS, stream=stream)
    assert len(rec.requests) == 1 and sleeps == []


def test_connection_errors_not_retried_when_disabled() -> None:
    rec = Recorder(httpx.ConnectError("refused"), json_response(RESULT))
    client, _ = make(rec, retry_config=RetryConfig(retry_connection_errors=False))
    with pytest.raises(errors.APIConnectionError, match="Could not connect"):
        client.chat.send(messages=MSGS)
    assert len(rec.requests) == 1


def test_persistent_connect_failure_raises_connection_error() -> None:
    rec = Recorder(httpx.ConnectError("refused"))
    client, sleeps = make(rec)
    with pytest.raises(errors.APIConnectionError) as info:
        client.chat.send(messages=MSGS)
    assert len(rec.requests) == 3 and info.value.attempts == 3
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_read_timeout_waiting_for_headers_is_not_retried() -> None:
    rec = Recorder(httpx.ReadTimeout("slow"), json_response(RESULT))
    client, _ = make(rec)
    with pytest.raises(errors.APITimeoutError, match=r"within 300 s \(read timeout\)"):
        client.chat.send(messages=MSGS)
    assert len(rec.requests) == 1


def test_connect_timeout_message_names_it() -> None:
    client, _ = make(Recorder(httpx.ConnectTimeout("slow")), retry_config=RetryConfig.none())
    with pytest.raises(errors.APITimeoutError, match=r"within 10 s \(connect timeout\)"):
        client.chat.send(messages=MSGS)


def test_no_retry_once_the_stream_began() -> None:
    parts = [sse(chunk("a"), done=False), httpx.ReadError("reset")]
    rec = Recorder(sse_response(parts), sse_response(sse(chunk("never"))))
    client, sleeps = make(rec)
    with pytest.raises(errors.APIConnectionError):
        stream_all(client)
    assert len(rec.requests) == 1 and sleeps == []


def test_no_retry_when_a_non_streaming_body_read_fails() -> None:
    broken = httpx.Response(
        200, headers={"content-type": "application/json"}, stream=Parts([b'{"id":"gen', httpx.ReadError("reset")])
    )
    rec = Recorder(broken, json_response(RESULT))
    client, _ = make(rec)
    with pytest.raises(errors.APIConnectionError):
        client.chat.send(messages=MSGS)
    assert len(rec.requests) == 1


def test_retries_logged_without_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rec = Recorder(error_response(500, f"echo {KEY}"), json_response(RESULT))
    client, _ = make(rec)
    client.chat.send(messages=MSGS)
    assert "retry 1" in caplog.text
    assert KEY not in caplog.text


# ---------------------------------------------------------------- timeouts


def sent_timeout(rec: Recorder) -> dict[str, float]:
    return rec.requests[-1].extensions["timeout"]


def test_default_timeouts() -> None:
    rec = Recorder(json_response(RESULT))
    client, _ = make(rec)
    client.chat.send(messages=MSGS)
    assert sent_timeout(rec) == {"connect": 10.0, "read": 300.0, "write": 30.0, "pool": 10.0}


def test_timeout_ms_sets_the_read_timeout_per_client_and_per_call() -> None:
    rec = Recorder(json_response(RESULT))
    client, _ = make(rec, timeout_ms=60_000)
    client.chat.send(messages=MSGS)
    assert sent_timeout(rec) == {"connect": 10.0, "read": 60.0, "write": 30.0, "pool": 10.0}
    client.chat.send(messages=MSGS, timeout_ms=1500)
    assert sent_timeout(rec)["read"] == 1.5


def test_explicit_timeout_and_none_parts_are_bounded() -> None:
    rec = Recorder(json_response(RESULT))
    client, _ = make(rec, timeout=httpx.Timeout(20.0, read=None))
    client.chat.send(messages=MSGS)
    assert sent_timeout(rec) == {"connect": 20.0, "read": 300.0, "write": 20.0, "pool": 20.0}


def test_supplied_client_with_httpx_default_timeout_gets_ours() -> None:
    rec = Recorder(json_response(RESULT))
    client = OpenRouter(api_key=KEY, client=httpx.Client(transport=httpx.MockTransport(rec)))
    client.chat.send(messages=MSGS)
    assert sent_timeout(rec)["read"] == 300.0


def test_supplied_client_with_its_own_timeout_is_respected() -> None:
    rec = Recorder(json_response(RESULT))
    http = httpx.Client(transport=httpx.MockTransport(rec), timeout=httpx.Timeout(60.0, connect=3.0))
    OpenRouter(api_key=KEY, client=http).chat.send(messages=MSGS)
    assert sent_timeout(rec) == {"connect": 3.0, "read": 60.0, "write": 60.0, "pool": 60.0}


def test_own_client_created_with_our_timeout() -> None:
    client = OpenRouter(api_key=KEY)
    try:
        assert client._sync_http().timeout == DEFAULT_TIMEOUT
    finally:
        client.close()


# ---------------------------------------------------------------- headers, key, url


def test_headers_sent() -> None:
    rec = Recorder(sse_response(sse(chunk("x"))))
    client, _ = make(
        rec,
        http_referer="https://example.org/nb",
        x_open_router_title="or_magic",
        x_open_router_categories=["general-chat", "programming-app"],
    )
    stream_all(client, x_open_router_experimental_metadata="enabled", http_headers={"X-Extra": "1"})
    h = rec.requests[-1].headers
    assert h["authorization"] == f"Bearer {KEY}"
    assert h["http-referer"] == "https://example.org/nb"
    assert h["x-openrouter-title"] == "or_magic"
    assert h["x-openrouter-categories"] == "general-chat,programming-app"
    assert h["accept"] == "text/event-stream"
    assert h["user-agent"].startswith("or_magic/")
    assert h["content-type"] == "application/json"
    assert h["x-openrouter-metadata"] == "enabled"
    assert h["x-extra"] == "1"
    assert rec.requests[-1].url == "https://openrouter.ai/api/v1/chat/completions"


def test_non_streaming_accepts_json_and_no_metadata_header_by_default() -> None:
    rec = Recorder(json_response(RESULT))
    client, _ = make(rec)
    client.chat.send(messages=MSGS)
    h = rec.requests[-1].headers
    assert h["accept"] == "application/json"
    assert "x-openrouter-metadata" not in h and "http-referer" not in h


def test_per_call_attribution_headers_override() -> None:
    rec = Recorder(json_response(RESULT))
    client, _ = make(rec, http_referer="https://a", x_open_router_title="A")
    client.chat.send(messages=MSGS, http_referer="https://b", x_open_router_title="B")
    assert rec.requests[-1].headers["http-referer"] == "https://b"
    assert rec.requests[-1].headers["x-openrouter-title"] == "B"


def test_key_from_env_read_at_request_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    rec = Recorder(json_response(RESULT))
    client, _ = make(rec, api_key=None)
    with pytest.raises(errors.ConfigError, match="OPENROUTER_API_KEY"):
        client.chat.send(messages=MSGS)
    assert rec.requests == []
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-v1-fromenv0000000000")
    client.chat.send(messages=MSGS)
    assert rec.requests[-1].headers["authorization"] == "Bearer sk-or-v1-fromenv0000000000"


def test_key_callable() -> None:
    rec = Recorder(json_response(RESULT))
    client, _ = make(rec, api_key=lambda: "sk-or-v1-callable000000000")
    client.chat.send(messages=MSGS)
    assert rec.requests[-1].headers["authorization"] == "Bearer sk-or-v1-callable000000000"


def test_repr_and_vars_never_show_the_key() -> None:
    client, _ = make(Recorder(json_response(RESULT)))
    assert KEY not in repr(client) and KEY not in repr(vars(client)) and KEY not in repr(client.chat)
    assert "api_key=given" in repr(client)


def test_error_headers_never_carry_the_request_key() -> None:
    client, _ = make(Recorder(error_response(401, "User not found.")))
    with pytest.raises(errors.UnauthorizedResponseError) as info:
        client.chat.send(messages=MSGS)
    dumped = json.dumps(info.value.to_dict()) + repr(info.value) + str(info.value)
    assert KEY not in dumped and "%chat key" in info.value.hint


def test_server_url_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENROUTER_BASE_URL", raising=False)
    assert OpenRouter(api_key=KEY).server_url == "https://openrouter.ai/api/v1"
    monkeypatch.setenv("OPENROUTER_BASE_URL", "http://127.0.0.1:9/api/v1/")
    assert OpenRouter(api_key=KEY).server_url == "http://127.0.0.1:9/api/v1"
    assert OpenRouter(api_key=KEY, server_url="http://x/api/v1/").server_url == "http://x/api/v1"
    rec = Recorder(json_response(RESULT))
    client, _ = make(rec)
    client.chat.send(messages=MSGS, server_url="http://other.test/v1/")
    assert str(rec.requests[-1].url) == "http://other.test/v1/chat/completions"


def test_context_manager_closes_only_what_it_created() -> None:
    supplied = httpx.Client(transport=httpx.MockTransport(Recorder(json_response(RESULT))))
    with OpenRouter(api_key=KEY, client=supplied) as client:
        client.chat.send(messages=MSGS)
    assert not supplied.is_closed
    with OpenRouter(api_key=KEY) as own:
        http = own._sync_http()
    assert http.is_closed


# ---------------------------------------------------------------- parameters and body

ISSUE_PARAMS = [
    "messages",
    "model",
    "models",
    "provider",
    "plugins",
    "route",
    "user",
    "session_id",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "max_completion_tokens",
    "max_tokens",
    "metadata",
    "presence_penalty",
    "reasoning",
    "response_format",
    "seed",
    "stop",
    "stream",
    "stream_options",
    "temperature",
    "tool_choice",
    "tools",
    "top_p",
    "debug",
    "image_config",
    "modalities",
    "cache_control",
    "parallel_tool_calls",
    "service_tier",
    "stop_server_tools_when",
    "trace",
    "x_open_router_experimental_metadata",
    "retries",
    "top_k",
    "repetition_penalty",
    "min_p",
    "top_a",
    "verbosity",
    "prediction",
    "server_url",
    "timeout_ms",
    "http_headers",
    "extra_body",
]

EVERY_VALUE: dict[str, Any] = {
    "model": "anthropic/claude-sonnet-4.5",
    "models": ["a/b", "c/d"],
    "provider": {"order": ["anthropic"], "allow_fallbacks": False, "sort": {"by": "price", "partition": "none"}},
    "plugins": [{"id": "context-compression", "enabled": False}],
    "route": "fallback",
    "user": "user-123",
    "session_id": "nb-42",
    "frequency_penalty": 0.1,
    "logit_bias": {"50256": -100},
    "logprobs": True,
    "top_logprobs": 3,
    "max_completion_tokens": 900,
    "max_tokens": 1000,
    "metadata": {"nb": "demo"},
    "presence_penalty": 0.2,
    "reasoning": {"max_tokens": 2000, "exclude": False, "enabled": True, "summary": "auto"},
    "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
    "seed": 7,
    "stop": ["\n\n"],
    "stream": True,
    "stream_options": {"include_usage": True},
    "temperature": 0.3,
    "tool_choice": {"type": "function", "function": {"name": "f"}},
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "top_p": 0.9,
    "debug": {"echo_upstream_body": True},
    "image_config": {"aspect_ratio": "16:9"},
    "modalities": ["text", "image"],
    "cache_control": {"type": "ephemeral", "ttl": "1h"},
    "parallel_tool_calls": False,
    "service_tier": "flex",
    "stop_server_tools_when": {"max_calls": 3},
    "trace": {"trace_id": "t1"},
    "top_k": 40,
    "repetition_penalty": 1.1,
    "min_p": 0.05,
    "top_a": 0.1,
    "verbosity": "low",
    "prediction": {"type": "content", "content": "draft"},
}


def test_send_accepts_every_parameter_of_the_issue() -> None:
    sig = inspect.signature(OpenRouter(api_key=KEY).chat.send)
    assert set(ISSUE_PARAMS) <= set(sig.parameters)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in sig.parameters.values())
    async_sig = inspect.signature(OpenRouter(api_key=KEY).chat.send_async)
    assert list(async_sig.parameters) == list(sig.parameters)
    assert set(EVERY_VALUE) | {"messages"} == set(BODY_FIELDS)


def test_every_parameter_reaches_the_body() -> None:
    rec = Recorder(sse_response(sse(chunk("x"))))
    client, _ = make(rec)
    stream_all_kwargs = dict(EVERY_VALUE)
    with client.chat.send(messages=MSGS, **stream_all_kwargs) as s:
        list(s)
    sent = rec.body
    assert sent == {"messages": MSGS, **EVERY_VALUE}
    assert list(sent) == list(BODY_FIELDS)  # stable order: response caching keys on the text
    assert sent["reasoning"]["max_tokens"] == 2000  # the official SDK drops this
    assert sent == build_request_body(messages=MSGS, **EVERY_VALUE, retries=1, timeout_ms=5)


def test_none_values_are_dropped_and_stream_false_sent() -> None:
    body = build_request_body(messages=MSGS, model=None, temperature=None, reasoning={"effort": None, "max_tokens": 5})
    assert body == {"messages": MSGS, "stream": False, "reasoning": {"max_tokens": 5}}


def test_messages_are_sent_verbatim_including_nulls() -> None:
    history = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c", "content": "sunny"},
    ]
    assert build_request_body(messages=history)["messages"] == history


def test_pydantic_messages_and_params_are_dumped_without_none() -> None:
    msg = UserMessage(content=[TextPart(text="Describe"), {"type": "image_url", "image_url": {"url": "data:x"}}])
    body = build_request_body(messages=[msg, {"role": "user", "content": "x"}])
    assert body["messages"][0] == {
        "role": "user",
        "content": [{"type": "text", "text": "Describe"}, {"type": "image_url", "image_url": {"url": "data:x"}}],
    }


def test_extra_body_merges_and_none_removes() -> None:
    body = build_request_body(
        messages=MSGS,
        temperature=0.5,
        extra_body={
            "web_search_options": {"search_context_size": "low"},
            "temperature": None,
            "usage": {"include": True},
        },
    )
    assert body == {
        "messages": MSGS,
        "stream": False,
        "web_search_options": {"search_context_size": "low"},
        "usage": {"include": True},
    }


def test_extra_body_is_sent() -> None:
    rec = Recorder(json_response(RESULT))
    client, _ = make(rec)
    client.chat.send(messages=MSGS, extra_body={"include_reasoning": True})
    assert rec.body["include_reasoning"] is True


def test_unknown_kwarg_raises_type_error_before_sending() -> None:
    rec = Recorder(json_response(RESULT))
    client, _ = make(rec)
    with pytest.raises(TypeError, match="temprature"):
        client.chat.send(messages=MSGS, temprature=0.1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="temprature"):
        build_request_body(messages=MSGS, temprature=0.1)
    with pytest.raises(TypeError):
        client.chat.send(model="x")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        client.chat.send(messages="hello")
    assert rec.requests == []


def test_chat_exposes_build_request_body() -> None:
    assert OpenRouter(api_key=KEY).chat.build_request_body(messages=MSGS) == {"messages": MSGS, "stream": False}


# ---------------------------------------------------------------- the SDK docs' own examples

SDK_NON_STREAMING = """
from openrouter import OpenRouter
import os

with OpenRouter(
    http_referer="<value>",
    x_open_router_title="<value>",
    x_open_router_categories="<value>",
    api_key=os.getenv("OPENROUTER_API_KEY", ""),
) as open_router:

    res = open_router.chat.send(messages=[
        {
            "content": "You are a helpful assistant.",
            "role": "system",
        },
        {
            "content": "What is the capital of France?",
            "role": "user",
        },
    ], x_open_router_experimental_metadata="enabled", max_tokens=150, model="openai/gpt-4", stream=False,
        temperature=0.7)

    # Handle response
    print(res)
    print(res.choices[0].message.content)
"""

SDK_STREAMING = """
from openrouter import OpenRouter
import os

with OpenRouter(
    api_key=os.getenv("OPENROUTER_API_KEY", ""),
) as open_router:

    res = open_router.chat.send(messages=[
        {
            "role": "user",
            "content": "Hello, how are you?",
        },
    ], model="anthropic/claude-4.5-sonnet-20250929", provider={
        "zdr": True,
        "sort": "price",
    }, stream=True)

    with res as event_stream:
        for event in event_stream:
            # handle event
            print(event, flush=True)

    with open_router.chat.send(messages=[{"role": "user", "content": "Hi"}], model="x", stream=True) as s:
        for chunk in s:
            print(chunk.choices[0].delta.content)
"""


def run_sdk_example(source: str, rec: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run an SDK example with only its import line changed; its own client talks to the mock."""
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    import or_magic.client as client_module

    monkeypatch.setattr(
        client_module.httpx, "Client", functools.partial(httpx.Client, transport=httpx.MockTransport(rec))
    )
    code = source.replace("from openrouter import OpenRouter", "from or_magic import OpenRouter")
    assert code.count("\n") == source.count("\n") and code != source
    exec(compile(code, "<sdk example>", "exec"), {})


def test_sdk_docs_non_streaming_example_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    rec = Recorder(json_response(RESULT))
    run_sdk_example(SDK_NON_STREAMING, rec, monkeypatch)
    out = capsys.readouterr().out
    assert "Paris." in out
    assert rec.body["max_tokens"] == 150 and rec.body["temperature"] == 0.7 and rec.body["stream"] is False
    assert rec.requests[0].headers["x-openrouter-metadata"] == "enabled"
    assert rec.requests[0].headers["x-openrouter-title"] == "<value>"


def test_sdk_docs_streaming_example_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    rec = Recorder(lambda _req: sse_response(sse(chunk("Hel"), chunk("lo", finish="stop"), chunk("", usage=USAGE))))
    run_sdk_example(SDK_STREAMING, rec, monkeypatch)
    out = capsys.readouterr().out
    assert "Hel\nlo\n\n" in out
    assert rec.requests[0].headers["accept"] == "text/event-stream"
    assert json.loads(rec.requests[0].content)["provider"] == {"zdr": True, "sort": "price"}


# ---------------------------------------------------------------- models() and key()

MODELS = {
    "data": [
        {
            "id": "openai/gpt-4o-mini",
            "name": "GPT-4o mini",
            "context_length": 128000,
            "pricing": {"prompt": "0.00000015", "completion": 0.0000006, "image": None},
            "architecture": {"input_modalities": ["text", "image"], "output_modalities": ["text"]},
            "supported_parameters": ["tools", "temperature"],
            "future_field": 1,
        },
        {"id": "google/gemini-image", "architecture": {"output_modalities": ["image", "text"]}},
    ],
    "links": {"next": None},
    "total_count": 2,
}


def test_models_listed_with_all_modalities_and_cached() -> None:
    rec = Recorder(json_response(MODELS))
    client, _ = make(rec)
    models = client.models()
    assert [m.id for m in models] == ["openai/gpt-4o-mini", "google/gemini-image"]
    assert isinstance(models[0], ModelInfo)
    assert models[0].pricing == {"prompt": "0.00000015", "completion": "6e-07"}
    assert models[0].architecture.input_modalities == ["text", "image"]
    assert models[0].model_extra["future_field"] == 1
    assert rec.requests[0].url.params["output_modalities"] == "all"
    assert rec.requests[0].method == "GET"
    client.models()
    assert len(rec.requests) == 1
    client.models(refresh=True)
    assert len(rec.requests) == 2
    client.models(output_modalities=None)
    assert "output_modalities" not in rec.requests[-1].url.params


def test_models_work_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    rec = Recorder(json_response(MODELS))
    client, _ = make(rec, api_key=None)
    assert len(client.models()) == 2
    assert "authorization" not in rec.requests[0].headers


def test_models_error_is_typed() -> None:
    client, _ = make(Recorder(error_response(500)), retry_config=RetryConfig.none())
    with pytest.raises(errors.InternalServerResponseError):
        client.models()


def test_key_info() -> None:
    data = {
        "data": {
            "label": "sk-or-v1-abc...xyz",
            "limit": 10,
            "limit_remaining": 7.5,
            "usage": 2.5,
            "is_free_tier": False,
            "limit_reset": "monthly",
            "new": "x",
        }
    }
    rec = Recorder(json_response(data))
    client, _ = make(rec)
    info = client.key()
    assert isinstance(info, KeyInfo)
    assert info.limit_remaining == 7.5 and info.is_free_tier is False and info.limit_reset == "monthly"
    assert str(rec.requests[0].url).endswith("/key")
    assert rec.requests[0].headers["authorization"] == f"Bearer {KEY}"


# ---------------------------------------------------------------- the async twin


def test_send_async_non_streaming_and_streaming() -> None:
    rec = Recorder(
        json_response(RESULT), sse_response(sse(chunk("Hel"), chunk("lo", finish="stop"), chunk("", usage=USAGE)))
    )
    client, _ = make_async(rec)

    async def main() -> tuple[ChatResult, EventStreamAsync, list[ChatStreamChunk]]:
        async with client:
            res = await client.chat.send_async(messages=MSGS)
            stream = await client.chat.send_async(messages=MSGS, stream=True)
            async with stream as s:
                chunks = [c async for c in s]
        return res, s, chunks

    res, s, chunks = asyncio.run(main())
    assert res.choices[0].message.content == "Paris."
    assert isinstance(s, EventStreamAsync) and len(chunks) == 3
    assert s.accumulator.text == "Hello" and s.accumulator.finish_reason == "stop"
    assert rec.requests[1].headers["accept"] == "text/event-stream"


def test_send_async_retries_with_async_sleep() -> None:
    rec = Recorder(error_response(503), httpx.ConnectError("x"), json_response(RESULT))
    client, sleeps = make_async(rec)
    res = asyncio.run(client.chat.send_async(messages=MSGS))
    assert res.choices[0].message.content == "Paris." and sleeps == [0.5, 1.0]


def test_send_async_midstream_error_and_disconnect() -> None:
    rec = Recorder(
        sse_response(sse(chunk("Half"), MIDSTREAM_SHAPES["documented"])),
        sse_response([sse(chunk("Hi"), done=False), httpx.ReadError("reset")]),
    )
    client, _ = make_async(rec)

    async def consume() -> None:
        async with await client.chat.send_async(messages=MSGS, stream=True) as s:
            async for _ in s:
                pass

    with pytest.raises(errors.StreamError) as info:
        asyncio.run(consume())
    assert info.value.partial.text == "Half!"
    with pytest.raises(errors.APIConnectionError) as info2:
        asyncio.run(consume())
    assert info2.value.partial.text == "Hi"
    assert len(rec.requests) == 2


def test_send_async_close_cancels() -> None:
    resp = sse_response(sse(*[chunk("x") for _ in range(20)]))
    client, _ = make_async(Recorder(resp))

    async def main() -> None:
        s = await client.chat.send_async(messages=MSGS, stream=True)
        await s.__anext__()
        await s.close()

    asyncio.run(main())
    assert resp.is_closed and body_stream(resp).closed


def test_async_models_and_key() -> None:
    rec = Recorder(json_response(MODELS), json_response({"data": {"label": "k", "limit": None}}))
    client, _ = make_async(rec)

    async def main() -> tuple[list[ModelInfo], KeyInfo]:
        return await client.models_async(), await client.key_async()

    models, info = asyncio.run(main())
    assert len(models) == 2 and info.limit is None


def test_owned_async_client_is_remade_for_a_new_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(json_response(RESULT))
    import or_magic.client as client_module

    transport = httpx.MockTransport(rec)
    monkeypatch.setattr(client_module.httpx, "AsyncClient", functools.partial(httpx.AsyncClient, transport=transport))
    client = OpenRouter(api_key=KEY)
    asyncio.run(client.chat.send_async(messages=MSGS))
    first = client._async_client
    asyncio.run(client.chat.send_async(messages=MSGS))
    assert client._async_client is not first
    assert len(rec.requests) == 2


# ---------------------------------------------------------------- the accumulator on its own


def c(**delta: Any) -> ChatStreamChunk:
    return ChatStreamChunk.model_validate({"id": "g", "choices": [{"index": 0, "delta": delta}]})


def test_accumulator_text_cache_is_consistent() -> None:
    acc = ChatAccumulator()
    for piece in ["a", "b", "", None, "c"]:
        acc.add(c(content=piece))
        assert acc.text == "".join(p for p in ["a", "b", "", None, "c"][: acc.chunks] if p)
    assert acc.text is acc.text  # cached


def test_accumulator_ignores_other_choices_and_keeps_first_role() -> None:
    acc = ChatAccumulator()
    acc.add(
        ChatStreamChunk.model_validate(
            {"choices": [{"index": 1, "delta": {"content": "other"}}, {"index": 0, "delta": {"content": "mine"}}]}
        )
    )
    assert acc.text == "mine" and acc.role == "assistant"


def test_accumulator_reasoning_details_fragments_stay_unmodified() -> None:
    acc = ChatAccumulator()
    frag = {"type": "reasoning.text", "text": "a", "index": 0}
    acc.add(c(reasoning_details=[frag]))
    acc.add(c(reasoning_details=[{"type": "reasoning.text", "text": "b", "index": 0}]))
    assert acc.reasoning_details == [{"type": "reasoning.text", "text": "ab", "index": 0}]
    assert frag == {"type": "reasoning.text", "text": "a", "index": 0}


def test_accumulator_summary_and_different_types_same_index() -> None:
    acc = ChatAccumulator()
    acc.add(c(reasoning_details=[{"type": "reasoning.summary", "summary": "S1", "index": 0}]))
    acc.add(c(reasoning_details=[{"type": "reasoning.summary", "summary": "S2", "index": 0}]))
    acc.add(c(reasoning_details=[{"type": "reasoning.encrypted", "data": "E", "index": 0}]))
    assert acc.reasoning_details == [
        {"type": "reasoning.summary", "summary": "S1S2", "index": 0},
        {"type": "reasoning.encrypted", "data": "E", "index": 0},
    ]


def test_accumulator_tool_call_without_index() -> None:
    acc = ChatAccumulator()
    acc.add(c(tool_calls=[{"id": "x", "function": {"name": "f", "arguments": '{"a"'}}]))
    acc.add(c(tool_calls=[{"function": {"arguments": ":1}"}}]))
    assert acc.tool_calls == [{"id": "x", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}]


def test_accumulator_refusal_and_audio() -> None:
    acc = ChatAccumulator()
    acc.add(c(refusal="I can't", audio={"id": "a1", "data": "AAA", "transcript": "he"}))
    acc.add(c(refusal=" do that", audio={"data": "BBB", "transcript": "llo"}))
    assert acc.refusal == "I can't do that"
    assert acc.audio == {"id": "a1", "data": "AAABBB", "transcript": "hello"}
    result = acc.result()
    assert result.choices[0].message.refusal == "I can't do that"


def test_accumulator_result_round_trip() -> None:
    acc = ChatAccumulator.from_result(ChatResult.model_validate(RESULT))
    assert acc.text == "Paris." and acc.finish_reason == "stop" and acc.provider == "OpenAI"
    back = acc.result()
    assert back.choices[0].message.content == "Paris." and back.usage.cost == 0.0000033


def test_send_and_send_async_check_their_one_keyword_list_at_the_call() -> None:
    rec = Recorder(json_response(RESULT))
    client, _ = make(rec)
    with pytest.raises(TypeError, match=r"send_async\(\) got an unexpected keyword argument 'modle'"):
        client.chat.send_async(messages=MSGS, modle="x")  # type: ignore[call-arg]  # raised before any await
    with pytest.raises(TypeError, match=r"send\(\) takes 1 positional argument"):
        client.chat.send(MSGS)  # type: ignore[misc]
    with pytest.raises(TypeError, match="messages"):
        client.chat.send_async()  # type: ignore[call-arg]
    assert rec.requests == []
    names = list(inspect.signature(client.chat.send).parameters)
    assert [n for n in names if n in BODY_FIELDS] == list(BODY_FIELDS)  # the body's order is the keywords' order
    assert client.chat.send.__doc__ and "chat completion" in client.chat.send.__doc__
