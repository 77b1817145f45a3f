"""The client over real HTTP against the sandbox: every scripted model, error status and failure mode."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import or_magic.errors as errors
from or_magic.client import OpenRouter, RetryConfig, build_request_body
from or_magic.sandbox import Sandbox, start

KEY = "sk-or-v1-sandbox0000000000000000000000000000000000000000000000000000"


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with start() as sandbox:
        yield sandbox


@pytest.fixture
def client(sb: Sandbox) -> Iterator[OpenRouter]:
    sb.reset()
    with OpenRouter(api_key=KEY, server_url=sb.url, x_open_router_title="or_magic tests") as c:
        yield c


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def stream_text(client: OpenRouter, model: str, prompt: str = "hi", **kwargs: Any) -> Any:
    with client.chat.send(messages=ask(prompt), model=model, stream=True, **kwargs) as s:
        for _ in s:
            pass
    return s


# ---------------------------------------------------------------- answers


def test_echo_streams_the_prompt_back(client: OpenRouter, sb: Sandbox) -> None:
    prompt = "Héllo wörld — a *markdown* test with 😀 and more words"
    s = stream_text(client, "sandbox/echo", prompt, reasoning={"max_tokens": 64, "exclude": True})
    acc = s.accumulator
    assert acc.text == prompt
    assert acc.finish_reason == "stop"
    assert acc.model == "sandbox/echo" and acc.provider
    assert acc.usage is not None and acc.usage.total_tokens and acc.usage.cost is not None
    assert s.generation_id and s.generation_id.startswith("gen-")
    (req,) = sb.requests
    assert req["method"] == "POST" and req["path"].endswith("/chat/completions")
    assert req["headers"]["authorization"] == "<redacted>" and req["has_auth"]
    assert req["headers"]["x-openrouter-title"] == "or_magic tests"
    assert req["headers"]["accept"] == "text/event-stream"
    expected = build_request_body(
        messages=ask(prompt), model="sandbox/echo", stream=True, reasoning={"max_tokens": 64, "exclude": True}
    )
    assert req["body"] == expected


def test_echo_non_streaming(client: OpenRouter) -> None:
    res = client.chat.send(messages=ask("Paris is the capital"), model="sandbox/echo")
    assert res.choices[0].message.content == "Paris is the capital"
    assert res.choices[0].finish_reason == "stop"
    assert res.usage.total_tokens


def test_reasoning_then_answer(client: OpenRouter) -> None:
    acc = stream_text(client, "sandbox/reasoning", "Why is the sky blue?").accumulator
    assert acc.reasoning and acc.text
    assert acc.reasoning_details
    assert any(d.get("signature") for d in acc.reasoning_details)
    msg = acc.message()
    assert msg["reasoning_details"] == acc.reasoning_details


def test_image_output(client: OpenRouter) -> None:
    acc = stream_text(client, "sandbox/image", "a red square", modalities=["image", "text"]).accumulator
    assert acc.images and acc.images[0].startswith("data:image/png;base64,")
    assert acc.message()["images"][0]["image_url"]["url"] == acc.images[0]


def test_tool_calls(client: OpenRouter) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }
    ]
    acc = stream_text(client, "sandbox/tools", "weather in Paris?", tools=tools).accumulator
    assert acc.finish_reason == "tool_calls"
    (call,) = acc.tool_calls
    assert call["function"]["name"] == "get_weather" and call["id"]
    assert isinstance(json.loads(call["function"]["arguments"]), dict)
    history = [
        *ask("weather in Paris?"),
        acc.message(),
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
    ]
    res = client.chat.send(messages=history, model="sandbox/tools", tools=tools)
    assert res.choices[0].message.content


def test_web_citations(client: OpenRouter) -> None:
    acc = stream_text(client, "sandbox/web", "news?").accumulator
    assert acc.annotations and acc.annotations[0]["type"] == "url_citation"


def test_long_answer_of_configured_size(client: OpenRouter) -> None:
    s = stream_text(client, "sandbox/long", "chars=20000 rate=0 chunk=20")
    assert len(s.accumulator.text) == 20000
    assert s.accumulator.chunks >= 1000


def test_close_cancels_a_long_stream_quickly(client: OpenRouter) -> None:
    s = client.chat.send(messages=ask("chars=200000 rate=100 chunk=10"), model="sandbox/long", stream=True)
    next(s)
    started = time.monotonic()
    s.close()
    assert time.monotonic() - started < 1.0
    assert s.response.is_closed
    assert list(s) == []
    assert client.chat.send(messages=ask("still works"), model="sandbox/echo").choices[0].message.content


def test_close_from_another_thread_ends_iteration_quietly(client: OpenRouter) -> None:
    s = client.chat.send(messages=ask("chars=100000 rate=50 chunk=10"), model="sandbox/long", stream=True)
    timer = threading.Timer(0.3, s.close)
    timer.start()
    started = time.monotonic()
    seen = sum(1 for _ in s)
    timer.join()
    assert time.monotonic() - started < 5
    assert 0 < seen < 1000
    assert s.response.is_closed


def test_async_twin(client: OpenRouter) -> None:
    async def main() -> tuple[str, str]:
        res = await client.chat.send_async(messages=ask("async one"), model="sandbox/echo")
        stream = await client.chat.send_async(messages=ask("async two"), model="sandbox/echo", stream=True)
        async with stream as s:
            async for _ in s:
                pass
        await client.aclose()
        return res.choices[0].message.content, s.accumulator.text

    assert asyncio.run(main()) == ("async one", "async two")


# ---------------------------------------------------------------- errors before the stream

STATUSES = [400, 401, 402, 403, 404, 408, 413, 418, 422, 429, 500, 502, 503, 524, 529]


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("stream", [False, True])
def test_error_statuses_raise_their_class(client: OpenRouter, status: int, stream: bool) -> None:
    expected = errors._BY_STATUS.get(status, errors.OpenRouterDefaultError)
    with pytest.raises(expected) as info:
        client.chat.send(messages=ask("hello"), model=f"sandbox/error-{status}", stream=stream, retries=0)
    err = info.value
    assert type(err) is expected and err.status_code == status
    assert str(err) and err.hint
    assert KEY not in json.dumps(err.to_dict()) + repr(err)


def test_provider_error_surfaces_the_raw_message(client: OpenRouter) -> None:
    with pytest.raises(errors.BadRequestResponseError) as info:
        client.chat.send(messages=ask("x"), model="sandbox/provider-error")
    assert "Invalid schema for function 'get_weather'" in str(info.value)


def test_unknown_model_hint(client: OpenRouter) -> None:
    with pytest.raises(errors.BadRequestResponseError, match="not a valid model ID") as info:
        client.chat.send(messages=ask("x"), model="sandbox/nope")
    assert "%chat models" in info.value.hint


def test_html_error_page(client: OpenRouter) -> None:
    with pytest.raises(errors.OpenRouterDefaultError, match="Worker exceeded resource limits") as info:
        client.chat.send(messages=ask("x"), model="sandbox/error-html", retries=0)
    assert info.value.status_code == 503


@pytest.mark.parametrize("stream", [False, True])
def test_error_in_a_200(client: OpenRouter, stream: bool) -> None:
    with pytest.raises(errors.StreamError, match="free-models-per-day") as info:  # noqa: SIM117
        with client.chat.send(messages=ask("x"), model="sandbox/error-200", stream=stream) as s:
            list(s)
    assert info.value.status_code == 429


def test_ratelimit_retries_honour_retry_after(sb: Sandbox) -> None:
    sleeps: list[float] = []
    sb.reset()
    client = OpenRouter(api_key=KEY, server_url=sb.url, sleep=sleeps.append)
    with client, pytest.raises(errors.TooManyRequestsResponseError) as info:
        client.chat.send(messages=ask("retry_after=2"), model="sandbox/ratelimit")
    assert sleeps == [2.0, 2.0]
    assert len(sb.requests) == 3 and info.value.attempts == 3
    assert "rate-limited upstream" in str(info.value)


def test_ratelimit_beyond_the_budget_fails_at_once(sb: Sandbox) -> None:
    sleeps: list[float] = []
    sb.reset()
    client = OpenRouter(api_key=KEY, server_url=sb.url, sleep=sleeps.append)
    with client, pytest.raises(errors.TooManyRequestsResponseError) as info:
        client.chat.send(messages=ask("retry_after=120"), model="sandbox/ratelimit")
    assert sleeps == [] and len(sb.requests) == 1
    assert info.value.retry_after == 120.0 and "wait about 2 min" in info.value.hint


def test_retry_after_ms_header(sb: Sandbox) -> None:
    sleeps: list[float] = []
    sb.reset()
    with OpenRouter(api_key=KEY, server_url=sb.url, sleep=sleeps.append) as client:
        res = client.chat.send(messages=ask("fail=1 retry_after_ms=300"), model="sandbox/flaky")
    assert sleeps == [0.3]
    assert res.choices[0].message.content == "fail=1 retry_after_ms=300"


def test_flaky_recovers_with_real_sleeps(client: OpenRouter, sb: Sandbox) -> None:
    res = client.chat.send(messages=ask("fail=2"), model="sandbox/flaky")
    assert res.choices[0].message.content == "fail=2"
    assert len(sb.requests) == 3


def test_connection_refused_is_retried_then_typed() -> None:
    sleeps: list[float] = []
    client = OpenRouter(api_key=KEY, server_url="http://127.0.0.1:9/api/v1", sleep=sleeps.append)
    with client, pytest.raises(errors.APIConnectionError, match="Could not connect") as info:
        client.chat.send(messages=ask("x"), model="sandbox/echo")
    assert len(sleeps) == 2 and info.value.attempts == 3


# ---------------------------------------------------------------- failures after the stream began

MIDSTREAM = ["documented", "string-code", "raw-metadata", "empty-choices", "bare", "finish-only"]


@pytest.mark.parametrize("shape", MIDSTREAM)
def test_midstream_errors_keep_the_partial_answer(client: OpenRouter, sb: Sandbox, shape: str) -> None:
    with pytest.raises(errors.StreamError) as info:
        stream_text(client, f"sandbox/midstream-{shape}")
    err = info.value
    assert isinstance(err.partial, type(err.partial)) and err.partial is not None
    if shape == "bare":
        assert err.partial.text == "" and "free-models-per-day" in str(err)
    else:
        assert err.partial.text.startswith("This partial answer was cut off")
    if shape == "raw-metadata":
        assert "Upstream overloaded while streaming" in str(err)
    if shape == "finish-only":
        assert "MALFORMED_FUNCTION_CALL" in str(err)
    assert len(sb.requests) == 1  # never retried


def test_midstream_error_non_streaming(client: OpenRouter) -> None:
    with pytest.raises(errors.StreamError):
        client.chat.send(messages=ask("x"), model="sandbox/midstream-documented")


def test_stall_hits_the_read_timeout_with_partial(client: OpenRouter, sb: Sandbox) -> None:
    started = time.monotonic()
    with pytest.raises(errors.APITimeoutError, match=r"0.5 s \(read timeout\)") as info:
        stream_text(client, "sandbox/stall", "stall=30", timeout_ms=500)
    assert time.monotonic() - started < 10
    assert info.value.partial.text.startswith("Thinking out loud")
    assert len(sb.requests) == 1


def test_disconnect_keeps_partial_and_is_not_retried(client: OpenRouter, sb: Sandbox) -> None:
    with pytest.raises(errors.APIConnectionError) as info:
        stream_text(client, "sandbox/disconnect")
    assert type(info.value) is errors.APIConnectionError
    assert info.value.partial.text.startswith("The upstream connection")
    assert len(sb.requests) == 1


def test_malformed_chunk(client: OpenRouter) -> None:
    with pytest.raises(errors.ResponseValidationError) as info:
        stream_text(client, "sandbox/malformed")
    assert info.value.partial.text == "Two good chunks, "
    with pytest.raises(errors.ResponseValidationError):
        client.chat.send(messages=ask("x"), model="sandbox/malformed")


# ---------------------------------------------------------------- other endpoints


def test_models_and_key(client: OpenRouter, sb: Sandbox) -> None:
    models = client.models()
    ids = {m.id for m in models}
    assert {"sandbox/echo", "sandbox/image", "sandbox/reasoning"} <= ids
    image = next(m for m in models if m.id == "sandbox/image")
    assert "image" in (image.architecture.output_modalities or [])
    assert sb.requests[-1]["query"] == {"output_modalities": "all"}
    client.models()
    assert len(sb.requests) == 1  # cached
    info = client.key()
    assert info.limit == 10.0 and info.limit_remaining is not None


# ---------------------------------------------------------------- the SDK docs' examples, import changed

SDK_EXAMPLE = """
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
    ], x_open_router_experimental_metadata="enabled", max_tokens=150, model="sandbox/echo", stream=False,
        temperature=0.7)

    print(res.choices[0].message.content)

    with open_router.chat.send(messages=[{"role": "user", "content": "streamed words"}], model="sandbox/echo",
                               stream=True) as event_stream:
        for chunk in event_stream:
            print(chunk.choices[0].delta.content)
"""


def test_sdk_example_runs_against_the_sandbox(
    sb: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    sb.reset()
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    monkeypatch.setenv("OPENROUTER_BASE_URL", sb.url)
    exec(compile(SDK_EXAMPLE.replace("from openrouter import", "from or_magic import"), "<sdk>", "exec"), {})
    out = capsys.readouterr().out
    assert out.startswith("What is the capital of France?\n")
    assert "streamed" in out and "words" in out
    first = sb.requests[0]
    assert first["headers"]["x-openrouter-metadata"] == "enabled"
    assert first["headers"]["http-referer"] == "<value>"
    assert first["body"]["max_tokens"] == 150


def test_key_never_reaches_the_server_records_or_errors(client: OpenRouter, sb: Sandbox) -> None:
    with pytest.raises(errors.ChatError) as info:
        client.chat.send(messages=ask(f"my key is {KEY}"), model="sandbox/error-403", retries=0)
    assert KEY not in str(info.value) + repr(info.value) + json.dumps(info.value.to_dict())
    assert all(r["headers"].get("authorization") == "<redacted>" for r in sb.requests)


def test_no_retry_config_sends_once(client: OpenRouter, sb: Sandbox) -> None:
    with pytest.raises(errors.ServiceUnavailableResponseError):
        client.chat.send(messages=ask("x"), model="sandbox/error-503", retries=RetryConfig.none())
    assert len(sb.requests) == 1
