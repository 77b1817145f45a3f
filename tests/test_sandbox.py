"""The sandbox over real HTTP, driven with raw httpx (never the project's client), so the fake is checked
against the wire format itself rather than against the code it exists to test."""

from __future__ import annotations

import base64
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from or_magic.sandbox import MODELS, Sandbox, start

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with start() as sandbox:
        yield sandbox


@pytest.fixture
def http(sb: Sandbox) -> Iterator[httpx.Client]:
    sb.reset()
    with httpx.Client(base_url=sb.url, timeout=10) as client:
        yield client


def body(model: str, prompt: str | list[Any] = "Hello there, sandbox!", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], **extra}


def read_sse(response: httpx.Response) -> list[tuple[str, Any]]:
    """Events as ("comment", text), ("data", parsed JSON), ("done", None) or ("invalid", raw text)."""
    events: list[tuple[str, Any]] = []
    for line in response.iter_lines():
        if line.startswith(":"):
            events.append(("comment", line[1:].strip()))
        elif line == "data: [DONE]":
            events.append(("done", None))
        elif line.startswith("data: "):
            try:
                events.append(("data", json.loads(line[6:])))
            except ValueError:
                events.append(("invalid", line[6:]))
        else:
            assert line == "", f"unexpected SSE line {line!r}"
    return events


def stream(http: httpx.Client, payload: dict[str, Any]) -> tuple[httpx.Response, list[tuple[str, Any]]]:
    with http.stream("POST", "/chat/completions", json={**payload, "stream": True}) as response:
        assert response.status_code == 200, response.read()
        return response, read_sse(response)


def chunks(events: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    return [value for kind, value in events if kind == "data"]


def text_of(events: list[tuple[str, Any]], field: str = "content") -> str:
    return "".join(
        choice["delta"].get(field) or "" for chunk in chunks(events) for choice in chunk.get("choices", [])
    )


# ------------------------------------------------------------------------------------------- lifecycle


def test_start_stop_in_process() -> None:
    sandbox = start(port=0)
    try:
        assert sandbox.url == f"http://127.0.0.1:{sandbox.port}/api/v1"
        assert httpx.get(f"{sandbox.url}/models", timeout=5).status_code == 200
    finally:
        sandbox.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{sandbox.url}/models", timeout=2)
    sandbox.stop()  # a second stop is harmless


def test_context_manager_and_localhost() -> None:
    with start(host="localhost") as sandbox:
        assert sandbox.host == "127.0.0.1"
        assert httpx.get(f"{sandbox.url}/key", timeout=5).status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.org", "::"])
def test_refuses_non_loopback_hosts(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        start(host=host)


def test_refuses_a_keepalive_that_would_spin() -> None:
    with pytest.raises(ValueError, match="keepalive"):
        start(keepalive=0)


def _read_first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    assert box, "the sandbox did not print its URL in time"
    return box[0].strip()


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "or_magic.sandbox", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_prints_url_serves_and_exits_cleanly(signum: int) -> None:
    proc = _spawn("--port", "0")
    try:
        url = _read_first_line(proc, timeout=20)
        assert url.startswith("http://127.0.0.1:") and url.endswith("/api/v1")
        reply = httpx.post(
            f"{url}/chat/completions", json=body("sandbox/echo", "from a subprocess"), timeout=5
        )
        assert reply.json()["choices"][0]["message"]["content"] == "from a subprocess"
        recorded = httpx.get(f"{url}/_sandbox/requests", timeout=5).json()["data"]
        assert [r["path"] for r in recorded] == ["/api/v1/chat/completions"]
        proc.send_signal(signum)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


def test_cli_refuses_public_host() -> None:
    proc = _spawn("--host", "0.0.0.0")
    try:
        assert proc.wait(timeout=20) == 2
        assert "loopback" in proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=5)


# ------------------------------------------------------------------------------------------- streaming


def test_stream_framing_matches_real_captures(http: httpx.Client) -> None:
    prompt = "Hello there, wörld ✅ — streaming"
    response, events = stream(http, body("sandbox/echo", prompt))
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["transfer-encoding"] == "chunked"
    assert events[0] == ("comment", "OPENROUTER PROCESSING")
    assert events[-1] == ("done", None)
    data = chunks(events)
    gen_id = response.headers["x-generation-id"]
    assert gen_id.startswith("gen-")
    for chunk in data:
        assert chunk["id"] == gen_id
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == "sandbox/echo" and chunk["provider"] == "Sandbox"
        assert isinstance(chunk["created"], int)
        (choice,) = chunk["choices"]
        assert choice["delta"]["role"] == "assistant"  # repeated on every chunk, as in real traffic
        assert {"index", "finish_reason", "native_finish_reason"} <= choice.keys()
    assert text_of(events) == prompt
    finish, last = data[-2], data[-1]
    assert finish["choices"][0]["finish_reason"] == "stop" and "usage" not in finish
    usage_choice = last["choices"][0]
    assert usage_choice["finish_reason"] is None and usage_choice["delta"] == {
        "role": "assistant",
        "content": "",
    }
    usage = last["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert 0 < usage["cost"] < 0.001 and usage["is_byok"] is False
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0
    assert "upstream_inference_cost" in usage["cost_details"]
    assert sum("usage" in chunk for chunk in data) == 1


def test_keepalive_comments_during_long_silence() -> None:
    with start(keepalive=0.2) as sandbox, httpx.Client(base_url=sandbox.url, timeout=10) as client:
        _, events = stream(client, body("sandbox/echo", "late delay=1.2"))
    leading = [kind for kind, _ in events[: next(i for i, (k, _) in enumerate(events) if k == "data")]]
    assert leading.count("comment") >= 4


def test_content_parts_and_max_tokens(http: httpx.Client) -> None:
    parts = [
        {"type": "text", "text": "first part"},
        {"type": "image_url", "image_url": {"url": "data:,"}},
        {"type": "text", "text": "second part"},
    ]
    _, events = stream(http, body("sandbox/echo", parts))
    assert text_of(events) == "first part\nsecond part"
    _, events = stream(http, body("sandbox/echo", "one two three four five six", max_tokens=3))
    assert text_of(events) == "one two three "
    finishes = [c["choices"][0]["finish_reason"] for c in chunks(events) if c["choices"][0]["finish_reason"]]
    assert finishes == ["length"]
    result = http.post(
        "/chat/completions", json=body("sandbox/echo", "a b c d", max_completion_tokens=2)
    ).json()
    assert result["choices"][0]["message"]["content"] == "a b "
    assert result["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize(
    "model,extra",
    [
        ("sandbox/echo", {}),
        ("sandbox/markdown", {}),
        ("sandbox/reasoning", {}),
        ("sandbox/image", {}),
        ("sandbox/tools", {}),
        ("sandbox/web", {}),
        ("sandbox/long", {}),
        ("sandbox/slow", {}),
        ("sandbox/malformed", {}),
    ],
)
def test_non_streaming_shape(http: httpx.Client, model: str, extra: dict[str, Any]) -> None:
    prompt = "rate=0 plain" if model != "sandbox/malformed" else "x"
    response = http.post("/chat/completions", json=body(model, prompt, **extra))
    assert response.status_code == 200
    if model == "sandbox/malformed":
        with pytest.raises(ValueError):
            response.json()
        return
    result = response.json()
    assert result["id"] == response.headers["x-generation-id"]
    assert (
        result["object"] == "chat.completion" and result["model"] == model and result["provider"] == "Sandbox"
    )
    (choice,) = result["choices"]
    assert choice["finish_reason"] in {"stop", "tool_calls"} and choice["native_finish_reason"]
    assert choice["message"]["role"] == "assistant"
    assert result["usage"]["completion_tokens"] > 0 and result["usage"]["cost"] > 0


@pytest.mark.parametrize("model", ["sandbox/markdown", "sandbox/reasoning", "sandbox/web", "sandbox/long"])
def test_stream_and_non_stream_tell_the_same_story(http: httpx.Client, model: str) -> None:
    _, events = stream(http, body(model, "rate=0"))
    message = http.post("/chat/completions", json=body(model, "rate=0")).json()["choices"][0]["message"]
    assert text_of(events) == message["content"]
    assert (text_of(events, "reasoning") or None) == message["reasoning"]
    assert chunks(events)[-1]["usage"]["completion_tokens"] > 0


def test_markdown_showcase(http: httpx.Client) -> None:
    _, events = stream(http, body("sandbox/markdown", "rate=0"))
    text = text_of(events)
    for piece in [
        "# ",
        "  - Nested",
        "| Model |",
        "```python",
        r"$e^{i\pi}+1=0$",
        r"$$\int_0^1 x^2\,dx = \frac13$$",
        "](https://example.org/",
        "\n> ",
    ]:
        assert piece in text


def test_reasoning_then_answer(http: httpx.Client) -> None:
    _, events = stream(http, body("sandbox/reasoning", "Why is the sky blue?"))
    data = chunks(events)
    deltas = [c["choices"][0]["delta"] for c in data]
    first_content = next(i for i, d in enumerate(deltas) if d.get("content"))
    reasoning_at = [i for i, d in enumerate(deltas) if "reasoning_details" in d]
    assert reasoning_at and max(reasoning_at) < first_content
    details = [detail for d in deltas for detail in d.get("reasoning_details", [])]
    assert all(d["type"] == "reasoning.text" and d["index"] == 0 for d in details)
    assert all(d["format"] == "anthropic-claude-v1" for d in details)
    assert details[-1]["text"] == "" and details[-1]["signature"]
    assert "signature" not in details[0]
    assert "Why is the sky blue?" in text_of(events, "reasoning")
    assert data[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0


@pytest.mark.parametrize("extra", [{"reasoning": {"exclude": True}}, {"include_reasoning": False}])
def test_reasoning_exclude(http: httpx.Client, extra: dict[str, Any]) -> None:
    _, events = stream(http, body("sandbox/reasoning", "quiet please", **extra))
    assert not any("reasoning" in c["choices"][0]["delta"] for c in chunks(events))
    assert "42" in text_of(events)
    assert chunks(events)[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0


def test_image_is_a_real_png(http: httpx.Client) -> None:
    _, events = stream(http, body("sandbox/image", "draw"))
    images = [img for c in chunks(events) for img in c["choices"][0]["delta"].get("images", [])]
    (image,) = images
    assert image["type"] == "image_url"
    url = image["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    png = base64.b64decode(url.split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (64, 64)
    length = struct.unpack(">I", png[33:37])[0]
    assert png[37:41] == b"IDAT"
    assert len(zlib.decompress(png[41 : 41 + length])) == 64 * (1 + 64 * 3)
    assert text_of(events)
    model = http.get("/models", params={"output_modalities": "all"}).json()["data"]
    image_model = next(m for m in model if m["id"] == "sandbox/image")["architecture"]
    assert image_model["input_modalities"] == ["text", "image"]
    assert image_model["output_modalities"] == ["image", "text"]


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer"},
                "hourly": {"type": "boolean"},
            },
            "required": ["city", "unit", "days"],
        },
    },
}


def test_tool_call_fragments(http: httpx.Client) -> None:
    _, events = stream(http, body("sandbox/tools", "weather in Paris?", tools=[WEATHER_TOOL]))
    calls = [call for c in chunks(events) for call in c["choices"][0]["delta"].get("tool_calls") or []]
    assert len(calls) >= 3
    first, rest = calls[0], calls[1:]
    assert first["id"].startswith("call_") and first["type"] == "function"
    assert first["function"]["name"] == "get_weather"
    assert all("id" not in call and "name" not in call["function"] for call in rest)
    arguments = json.loads("".join(call["function"]["arguments"] for call in calls))
    assert arguments == {"city": "Paris", "unit": "celsius", "days": 3}
    finish = [c["choices"][0] for c in chunks(events) if c["choices"][0]["finish_reason"]]
    assert [(f["finish_reason"], f["native_finish_reason"]) for f in finish] == [("tool_calls", "tool_use")]
    result = http.post(
        "/chat/completions", json=body("sandbox/tools", "weather?", tools=[WEATHER_TOOL])
    ).json()
    (call,) = result["choices"][0]["message"]["tool_calls"]
    assert (
        call["function"]["name"] == "get_weather" and json.loads(call["function"]["arguments"])["days"] == 3
    )


def test_tool_result_is_quoted_and_no_tools_is_said(http: httpx.Client) -> None:
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 °C"},
    ]
    _, events = stream(http, {"model": "sandbox/tools", "messages": messages, "tools": [WEATHER_TOOL]})
    assert "> Sunny, 21 °C" in text_of(events) and "`get_weather`" in text_of(events)
    _, events = stream(http, body("sandbox/tools", "no tools here"))
    assert "No tools were given" in text_of(events)


def test_web_citations(http: httpx.Client) -> None:
    _, events = stream(http, body("sandbox/web", "search"))
    text = text_of(events)
    annotations = [a for c in chunks(events) for a in c["choices"][0]["delta"].get("annotations", [])]
    assert len(annotations) == 2
    for annotation in annotations:
        cite = annotation["url_citation"]
        assert annotation["type"] == "url_citation" and cite["url"].startswith("https://example.org/")
        assert cite["title"] and cite["content"]
        assert cite["url"] in text[cite["start_index"] : cite["end_index"]]
    assert chunks(events)[-1]["usage"]["server_tool_use"] == {"web_search_requests": 1}


# ------------------------------------------------------------------------------------------------ long


def test_long_size_and_determinism(http: httpx.Client) -> None:
    _, events = stream(http, body("sandbox/long", "chars=20000 chunk=20 rate=0"))
    text = text_of(events)
    assert len(text) == 20000
    assert sum(bool(c["choices"][0]["delta"].get("content")) for c in chunks(events)) == 1000
    assert "```python" in text and "| Item |" in text and "\n- " in text and "## " in text
    _, again = stream(http, body("sandbox/long", "chars=20000 chunk=500 rate=0"))
    assert text_of(again) == text
    _, default = stream(http, body("sandbox/long", "rate=0"))
    assert len(text_of(default)) == 4000


def test_long_rate_paces_chunks(http: httpx.Client) -> None:
    started = time.monotonic()
    _, events = stream(http, body("sandbox/long", "chars=600 chunk=20 rate=100"))
    elapsed = time.monotonic() - started
    assert len(text_of(events)) == 600
    assert 0.25 <= elapsed < 5


def test_long_twenty_thousand_chunks_fast(http: httpx.Client) -> None:
    started = time.monotonic()
    with http.stream(
        "POST", "/chat/completions", json=body("sandbox/long", "chars=400000 chunk=20 rate=0", stream=True)
    ) as response:
        count = sum(1 for line in response.iter_lines() if line.startswith('data: {"id"'))
    elapsed = time.monotonic() - started
    assert count == 20000 + 2  # content chunks, the finish chunk and the usage chunk
    assert elapsed < 10


def test_slow_is_paced(http: httpx.Client) -> None:
    started = time.monotonic()
    _, events = stream(http, body("sandbox/slow", "one two three four rate=20"))
    assert text_of(events) == "one two three four rate=20"
    assert time.monotonic() - started >= 0.2


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "status", [400, 401, 402, 403, 404, 408, 413, 418, 422, 429, 500, 502, 503, 524, 529]
)
@pytest.mark.parametrize("streaming", [False, True])
def test_error_models(http: httpx.Client, status: int, streaming: bool) -> None:
    response = http.post("/chat/completions", json=body(f"sandbox/error-{status}", stream=streaming))
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == status and error["message"]
    assert ("user_id" in response.json()) == (status != 401)


def test_error_bodies_are_realistic(http: httpx.Client) -> None:
    def post(model: str, prompt: str = "hi", headers: dict[str, str] | None = None) -> httpx.Response:
        return http.post("/chat/completions", json=body(model, prompt), headers=headers)

    assert post("sandbox/error-401").json()["error"]["message"] == "No cookie auth credentials found"
    keyed = post("sandbox/error-401", headers={"Authorization": "Bearer sk-or-v1-fake"})
    assert keyed.json()["error"]["message"] == "User not found."
    assert post("sandbox/error-402").json()["error"]["message"].startswith("Insufficient credits")
    moderation = post("sandbox/error-403", "x" * 300).json()["error"]
    assert moderation["metadata"]["reasons"] == ["harassment"]
    assert (
        len(moderation["metadata"]["flagged_input"]) == 100
        and "..." in moderation["metadata"]["flagged_input"]
    )
    assert "requires moderation" in moderation["message"]
    assert post("sandbox/error-404").json()["error"]["message"].startswith("No endpoints found")
    provider = post("sandbox/error-400").json()["error"]
    assert (
        provider["message"] == "Provider returned error"
        and provider["metadata"]["provider_name"] == "Sandbox"
    )
    assert "prompt is too long" in json.loads(provider["metadata"]["raw"])["error"]["message"]
    limited = post("sandbox/error-429")
    assert limited.headers["retry-after"] == "1"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert limited.json()["error"]["metadata"]["headers"]["X-RateLimit-Limit"] == "20"
    assert "retry-after" not in post("sandbox/error-503").headers
    assert post("sandbox/error-503", "retry_after=4").headers["retry-after"] == "4"
    assert post("sandbox/error-500", "retry_after_ms=1500").headers["retry-after-ms"] == "1500"


def test_provider_error_and_ratelimit(http: httpx.Client) -> None:
    provider = http.post("/chat/completions", json=body("sandbox/provider-error"))
    assert provider.status_code == 400
    error = provider.json()["error"]
    assert error["message"] == "Provider returned error" and error["metadata"]["provider_name"] == "Sandbox"
    assert "Invalid schema" in json.loads(error["metadata"]["raw"])["error"]["message"]
    limited = http.post("/chat/completions", json=body("sandbox/ratelimit", "again retry_after=7"))
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    assert "rate-limited upstream" in limited.json()["error"]["metadata"]["raw"]
    assert http.post("/chat/completions", json=body("sandbox/ratelimit")).headers["retry-after"] == "1"


def test_error_html(http: httpx.Client) -> None:
    response = http.post("/chat/completions", json=body("sandbox/error-html", stream=True))
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert "Cloudflare" in response.text and "<html" in response.text


def test_error_in_a_200(http: httpx.Client) -> None:
    response = http.post("/chat/completions", json=body("sandbox/error-200"))
    assert response.status_code == 200
    assert set(response.json()) == {"error", "user_id"}
    assert response.json()["error"]["code"] == 429
    _, events = stream(http, body("sandbox/error-200"))
    data = chunks(events)
    assert len(data) == 1 and set(data[0]) == {"error", "user_id"}
    assert ("done", None) not in events


MIDSTREAM: dict[str, dict[str, Any]] = {
    "documented": {"partial": True, "done": True, "code": 502, "finish": "error", "error_type": True},
    "string-code": {
        "partial": True,
        "done": False,
        "code": "server_error",
        "finish": "error",
        "error_type": False,
    },
    "raw-metadata": {"partial": True, "done": True, "code": 503, "finish": "error", "error_type": False},
    "empty-choices": {"partial": True, "done": False, "code": 500, "finish": None, "error_type": True},
    "bare": {"partial": False, "done": False, "code": 429, "finish": None, "error_type": False},
    "finish-only": {"partial": True, "done": True, "code": None, "finish": "error", "error_type": False},
}


@pytest.mark.parametrize("shape", list(MIDSTREAM))
def test_midstream_error_shapes(http: httpx.Client, shape: str) -> None:
    want = MIDSTREAM[shape]
    _, events = stream(http, body(f"sandbox/midstream-{shape}"))
    data = chunks(events)
    assert (("done", None) in events) == want["done"]
    assert bool(text_of(events)) == want["partial"]
    if want["partial"]:
        assert text_of(events).startswith("This partial answer was cut off")
    errors = [c for c in data if "error" in c]
    if want["code"] is None:
        assert not errors
        last = data[-1] if "usage" not in data[-1] else data[-2]
        assert last["choices"][0]["native_finish_reason"] == "MALFORMED_FUNCTION_CALL"
    else:
        (chunk,) = errors
        assert chunk is data[-1] and chunk["error"]["code"] == want["code"]
        assert ("error_type" in (chunk["error"].get("metadata") or {})) == want["error_type"]
        assert ("id" in chunk) == (shape != "bare")
        if shape == "empty-choices":
            assert chunk["choices"] == []
        if shape == "raw-metadata":
            assert isinstance(chunk["error"]["metadata"]["raw"], dict)
    finishes = [c["choices"][0]["finish_reason"] for c in data if c.get("choices")]
    assert ("error" in finishes) == (want["finish"] == "error")


def test_midstream_non_streaming_keeps_partial_and_error(http: httpx.Client) -> None:
    result = http.post("/chat/completions", json=body("sandbox/midstream-documented")).json()
    (choice,) = result["choices"]
    assert choice["finish_reason"] == "error" and choice["error"]["code"] == 502
    assert choice["message"]["content"].startswith("This partial answer")


def test_malformed_line_in_the_middle(http: httpx.Client) -> None:
    _, events = stream(http, body("sandbox/malformed"))
    kinds = [kind for kind, _ in events]
    assert kinds.count("invalid") == 1
    bad = kinds.index("invalid")
    assert "data" in kinds[:bad] and "data" in kinds[bad + 1 :] and kinds[-1] == "done"


def test_flaky_fails_then_answers(http: httpx.Client, sb: Sandbox) -> None:
    def post(prompt: str) -> httpx.Response:
        return http.post("/chat/completions", json=body("sandbox/flaky", prompt))

    first, second, third = post("retry me"), post("retry me"), post("retry me")
    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 200]
    assert first.headers["retry-after"] == "0"
    assert third.json()["choices"][0]["message"]["content"] == "retry me"
    assert post("fail=1 other prompt").status_code == 503
    assert post("fail=1 other prompt").status_code == 200
    sb.reset()
    assert post("retry me").status_code == 503


def test_fallback_models(http: httpx.Client) -> None:
    payload = body("sandbox/error-503", "fall back", models=["sandbox/ratelimit", "sandbox/echo"])
    result = http.post("/chat/completions", json=payload).json()
    assert result["model"] == "sandbox/echo" and result["choices"][0]["message"]["content"] == "fall back"
    _, events = stream(http, payload)
    assert {c["model"] for c in chunks(events)} == {"sandbox/echo"}
    only_errors = body("sandbox/error-503", models=["sandbox/error-502"])
    assert http.post("/chat/completions", json=only_errors).status_code == 502
    no_model = {"models": ["sandbox/markdown"], "messages": [{"role": "user", "content": "x"}]}
    assert http.post("/chat/completions", json=no_model).json()["model"] == "sandbox/markdown"


# ------------------------------------------------------------------------------------ broken transports


def test_disconnect_looks_like_a_truncated_body(http: httpx.Client) -> None:
    seen = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream("POST", "/chat/completions", json=body("sandbox/disconnect", stream=True)) as response,
    ):
        for line in response.iter_lines():
            seen.append(line)
    assert any(line.startswith("data: {") for line in seen)
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/chat/completions", json=body("sandbox/disconnect"))


def test_stall_trips_a_read_timeout(sb: Sandbox) -> None:
    seen = []
    with httpx.Client(base_url=sb.url, timeout=httpx.Timeout(5, read=0.5)) as client:
        started = time.monotonic()
        with (
            pytest.raises(httpx.ReadTimeout),
            client.stream("POST", "/chat/completions", json=body("sandbox/stall", stream=True)) as response,
        ):
            for line in response.iter_lines():
                seen.append(line)
        assert time.monotonic() - started < 3
    assert any(line.startswith("data: {") for line in seen)
    with (
        httpx.Client(base_url=sb.url, timeout=httpx.Timeout(5, read=0.5)) as client,
        pytest.raises(
            httpx.ReadTimeout  # non-streaming: the response never comes
        ),
    ):
        client.post("/chat/completions", json=body("sandbox/stall"))


def test_stall_ends_after_stall_seconds(http: httpx.Client) -> None:
    _, events = stream(http, body("sandbox/stall", "stall=0.3"))
    assert text_of(events).endswith("came back.") and events[-1] == ("done", None)


def test_stop_is_fast_while_a_stall_is_open() -> None:
    sandbox = start()
    outcome: list[BaseException | None] = []
    started = threading.Event()

    def hold() -> None:
        try:
            with (
                httpx.Client(timeout=30) as client,
                client.stream(
                    "POST", f"{sandbox.url}/chat/completions", json=body("sandbox/stall", stream=True)
                ) as response,
            ):
                for _ in response.iter_lines():
                    started.set()
            outcome.append(None)
        except httpx.HTTPError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        assert started.wait(5)
        time.sleep(0.2)
        began = time.monotonic()
        sandbox.stop()
        assert time.monotonic() - began < 2
        thread.join(5)
        assert not thread.is_alive()
        assert isinstance(outcome[0], httpx.RemoteProtocolError)
    finally:
        sandbox.stop()


# ----------------------------------------------------------------------------------- requests and routes


def test_requests_are_recorded_with_auth_redacted(http: httpx.Client, sb: Sandbox) -> None:
    http.post(
        "/chat/completions",
        json=body("sandbox/echo", "secret?"),
        headers={"Authorization": "Bearer sk-or-v1-topsecret", "X-OpenRouter-Title": "tests"},
    )
    http.get("/models", params={"output_modalities": "all"})
    first, second = sb.requests
    assert first["method"] == "POST" and first["path"] == "/api/v1/chat/completions"
    assert first["headers"]["authorization"] == "<redacted>" and first["has_auth"] is True
    assert first["headers"]["x-openrouter-title"] == "tests"
    assert first["body"]["messages"][0]["content"] == "secret?"
    assert isinstance(first["time"], float)
    assert second["query"] == {"output_modalities": "all"} and second["body"] is None
    assert second["has_auth"] is False and "authorization" not in second["headers"]
    assert "topsecret" not in json.dumps(sb.requests)
    remote = http.get("/_sandbox/requests").json()["data"]
    assert remote == sb.requests  # the _sandbox routes themselves are not recorded
    sb.clear_requests()
    assert sb.requests == []


def test_reset_route_clears_records(http: httpx.Client, sb: Sandbox) -> None:
    http.post("/chat/completions", json=body("sandbox/echo"))
    assert http.post("/_sandbox/reset").json() == {"ok": True}
    assert sb.requests == [] and http.get("/_sandbox/requests").json() == {"data": []}


def test_works_without_any_key(http: httpx.Client) -> None:
    response = http.post("/chat/completions", json=body("sandbox/echo", "no key"))
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] == "no key"


@pytest.mark.parametrize(
    "content,message",
    [
        (b"{not json", "Invalid JSON in request body"),
        (b"[1, 2]", "Invalid JSON in request body"),
        (json.dumps({"model": "sandbox/echo"}).encode(), 'Input required: specify "prompt" or "messages"'),
        (json.dumps(body("openai/gpt-4o")).encode(), "openai/gpt-4o is not a valid model ID"),
        (
            json.dumps(body("sandbox/echo", models=["nope/nothing"])).encode(),
            "nope/nothing is not a valid model ID",
        ),
    ],
)
def test_bad_requests(http: httpx.Client, content: bytes, message: str) -> None:
    response = http.post("/chat/completions", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == {"code": 400, "message": message}


def test_unknown_routes(http: httpx.Client) -> None:
    assert http.get("/nothing/here").status_code == 404
    assert http.get("/chat/completions").status_code == 405


def test_default_model_is_echo(http: httpx.Client) -> None:
    result = http.post("/chat/completions", json={"messages": [{"role": "user", "content": "who?"}]}).json()
    assert result["model"] == "sandbox/echo"


def test_models_catalogue_and_filters(http: httpx.Client) -> None:
    default = http.get("/models").json()
    ids = [m["id"] for m in default["data"]]
    assert default["total_count"] == len(ids)
    assert "sandbox/echo" in ids and "sandbox/image" not in ids
    for query in ("all", "image", "text,image"):
        assert "sandbox/image" in [
            m["id"] for m in http.get("/models", params={"output_modalities": query}).json()["data"]
        ]
    assert [m["id"] for m in http.get("/models", params={"output_modalities": "all"}).json()["data"]] == list(
        MODELS
    )
    tools = http.get("/models", params={"supported_parameters": "tools"}).json()["data"]
    assert [m["id"] for m in tools] == ["sandbox/tools"]
    for model in default["data"]:
        assert model["name"].startswith("Sandbox (fake)") and "fake" in model["description"].lower()
        assert isinstance(model["pricing"]["prompt"], str) and float(model["pricing"]["completion"]) >= 0
        inputs = "text+audio" if model["id"] == "sandbox/audio" else "text"
        assert model["architecture"]["modality"] == f"{inputs}->text" and model["context_length"] > 0
        assert "max_tokens" in model["supported_parameters"]


def test_key_reports_spend(http: httpx.Client) -> None:
    before = http.get("/key").json()["data"]
    assert before["usage"] == 0 and before["limit_remaining"] == before["limit"] == 10
    assert before["is_free_tier"] is False and before["limit_reset"] is None
    cost = http.post("/chat/completions", json=body("sandbox/echo")).json()["usage"]["cost"]
    after = http.get("/key").json()["data"]
    assert after["usage"] == pytest.approx(cost) and after["limit_remaining"] == pytest.approx(10 - cost)
