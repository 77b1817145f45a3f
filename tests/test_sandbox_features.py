"""The sandbox's newer surfaces over real HTTP: /generation, prompt caching, the web_search server tool,
audio input, the fixer, latency/paced/rate-limited models, and many concurrent clients."""

from __future__ import annotations

import base64
import concurrent.futures
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from or_magic.sandbox import Sandbox, start
from or_magic.sandbox.more_models import limited_first_try

AUTH = {"Authorization": "Bearer sk-or-v1-sandbox-test"}
LONG_SYSTEM = "You are a careful assistant. " * 30  # well over the 64-token caching minimum


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with start() as sandbox:
        yield sandbox


@pytest.fixture
def http(sb: Sandbox) -> Iterator[httpx.Client]:
    sb.reset()
    sb.generation_lag = 0.0
    with httpx.Client(base_url=sb.url, timeout=10, headers=AUTH) as client:
        yield client


def chat(http: httpx.Client, model: str, prompt: Any = "Hello there", **extra: Any) -> dict[str, Any]:
    response = http.post(
        "/chat/completions", json={"model": model, "messages": [{"role": "user", "content": prompt}], **extra}
    )
    assert response.status_code == 200, response.text
    return response.json()


# --- /generation


def test_generation_reports_the_billed_cost_of_a_finished_answer(http: httpx.Client) -> None:
    answer = chat(http, "sandbox/echo", "count these five words")
    data = http.get("/generation", params={"id": answer["id"]}).json()["data"]
    assert data["id"] == answer["id"] and data["model"] == "sandbox/echo"
    assert data["total_cost"] == answer["usage"]["cost"] > 0
    assert data["tokens_prompt"] == answer["usage"]["prompt_tokens"]
    assert data["cancelled"] is False and data["streamed"] is False


def test_generation_of_a_cut_stream_is_cancelled_and_billed(http: httpx.Client, sb: Sandbox) -> None:
    body = {
        "model": "sandbox/slow",
        "messages": [{"role": "user", "content": "one two three four five six"}],
        "stream": True,
    }
    with http.stream("POST", "/chat/completions", json=body) as response:
        gen_id = response.headers["X-Generation-Id"]
        for line in response.iter_lines():
            if line.startswith("data: {"):
                break  # the first chunk carries the id; leave mid-stream
    deadline = time.monotonic() + 5
    while (found := http.get("/generation", params={"id": gen_id})).status_code == 404:
        assert time.monotonic() < deadline, "the cut stream never showed up in /generation"
        time.sleep(0.05)
    data = found.json()["data"]
    assert data["cancelled"] is True and data["streamed"] is True and data["total_cost"] > 0


def test_generation_lag_gives_404_first_and_unknown_ids_404(http: httpx.Client, sb: Sandbox) -> None:
    sb.generation_lag = 0.3
    answer = chat(http, "sandbox/echo")
    assert http.get("/generation", params={"id": answer["id"]}).status_code == 404
    time.sleep(0.35)
    assert http.get("/generation", params={"id": answer["id"]}).status_code == 200
    assert http.get("/generation", params={"id": "gen-0-unknown"}).status_code == 404
    assert http.get("/generation").status_code == 400
    assert httpx.get(f"{sb.url}/generation", params={"id": answer["id"]}).status_code == 401


# --- prompt caching


def conversation(*user_turns: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": LONG_SYSTEM}]
    for i, turn in enumerate(user_turns):
        if i:
            messages.append({"role": "assistant", "content": f"reply {i}"})
        messages.append({"role": "user", "content": turn})
    return messages


def send(http: httpx.Client, model: str, messages: list[Any], **extra: Any) -> dict[str, Any]:
    response = http.post("/chat/completions", json={"model": model, "messages": messages, **extra})
    assert response.status_code == 200, response.text
    return response.json()["usage"]


def test_explicit_caching_writes_then_reads_a_prefix_and_costs_less(http: httpx.Client) -> None:
    marker = {"cache_control": {"type": "ephemeral"}}
    plain = send(http, "sandbox/anthropic", conversation("first question"))
    assert plain["prompt_tokens_details"]["cached_tokens"] == 0 == plain["prompt_tokens_details"]["cache_write_tokens"]
    first = send(http, "sandbox/anthropic", conversation("first question"), **marker)
    assert first["prompt_tokens_details"]["cache_write_tokens"] == first["prompt_tokens"]
    assert first["cost"] > plain["cost"]  # writing costs more than plain input
    second = send(http, "sandbox/anthropic", conversation("first question", "second question"), **marker)
    details = second["prompt_tokens_details"]
    assert details["cached_tokens"] == first["prompt_tokens"]
    assert details["cache_write_tokens"] == second["prompt_tokens"] - first["prompt_tokens"]
    no_marker = send(http, "sandbox/anthropic", conversation("first question", "second question"))
    assert no_marker["prompt_tokens_details"]["cached_tokens"] == 0  # explicit: nothing without a marker
    assert second["cost"] < no_marker["cost"]


def test_per_part_marker_caches_up_to_the_marked_message(http: httpx.Client) -> None:
    messages = conversation("q1")
    messages[0] = {
        "role": "system",
        "content": [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}],
    }
    first = send(http, "sandbox/anthropic", messages)
    assert 0 < first["prompt_tokens_details"]["cache_write_tokens"] < first["prompt_tokens"]
    again = send(http, "sandbox/anthropic", [messages[0], {"role": "user", "content": "another question"}])
    assert again["prompt_tokens_details"]["cached_tokens"] == first["prompt_tokens_details"]["cache_write_tokens"]


def test_short_prompts_are_not_cached_and_implicit_caching_needs_no_marker(http: httpx.Client) -> None:
    short = [{"role": "user", "content": "hi"}]
    for _ in range(2):
        usage = send(http, "sandbox/anthropic", short, cache_control={"type": "ephemeral"})
        assert usage["prompt_tokens_details"] == {
            **usage["prompt_tokens_details"],
            "cached_tokens": 0,
            "cache_write_tokens": 0,
        }
    send(http, "sandbox/openai", conversation("q1"))
    usage = send(http, "sandbox/openai", conversation("q1", "q2"))
    assert (
        usage["prompt_tokens_details"]["cached_tokens"] > 0
        and usage["prompt_tokens_details"]["cache_write_tokens"] == 0
    )
    assert send(http, "sandbox/echo", conversation("q1"))["prompt_tokens_details"]["cached_tokens"] == 0


def test_caching_models_publish_cache_prices(http: httpx.Client) -> None:
    models = {m["id"]: m for m in http.get("/models").json()["data"]}
    assert float(models["sandbox/anthropic"]["pricing"]["input_cache_read"]) < float(
        models["sandbox/anthropic"]["pricing"]["prompt"]
    )
    assert float(models["sandbox/anthropic"]["pricing"]["input_cache_write"]) > float(
        models["sandbox/anthropic"]["pricing"]["prompt"]
    )


# --- web search server tool


@pytest.mark.parametrize(("parameters", "expected"), [(None, 5), ({"max_results": 3}, 3)])
def test_web_search_server_tool_cites_n_results(http: httpx.Client, parameters: Any, expected: int) -> None:
    tool: dict[str, Any] = {"type": "openrouter:web_search"}
    if parameters:
        tool["parameters"] = parameters
    answer = chat(http, "sandbox/echo", "latest sandbox news", tools=[tool])
    message = answer["choices"][0]["message"]
    citations = [a["url_citation"] for a in message["annotations"] if a["type"] == "url_citation"]
    assert len(citations) == expected
    for citation in citations:
        assert message["content"][citation["start_index"] : citation["end_index"]].endswith(f"({citation['url']})")
    assert answer["usage"]["server_tool_use"]["web_search_requests"] == 1
    assert answer["usage"]["server_tool_use_details"]["tool_calls_executed"] == 1


def test_web_search_streams_annotations(http: httpx.Client) -> None:
    body = {
        "model": "sandbox/echo",
        "messages": [{"role": "user", "content": "q"}],
        "stream": True,
        "tools": [{"type": "openrouter:web_search", "parameters": {"max_results": 2}}],
    }
    with http.stream("POST", "/chat/completions", json=body) as response:
        text = response.read().decode()
    assert text.count('"type":"url_citation"') == 2 and "server_tool_use_details" in text


# --- modalities


def test_audio_model_is_listed_and_reports_what_it_got(http: httpx.Client) -> None:
    models = {m["id"]: m for m in http.get("/models", params={"output_modalities": "all"}).json()["data"]}
    assert "audio" in models["sandbox/audio"]["architecture"]["input_modalities"]
    assert models["sandbox/image"]["architecture"]["output_modalities"] == ["image", "text"]
    clip = base64.b64encode(b"RIFF" + bytes(96)).decode()
    parts = [
        {"type": "text", "text": "what is this?"},
        {"type": "input_audio", "input_audio": {"data": clip, "format": "wav"}},
    ]
    content = chat(http, "sandbox/audio", parts)["choices"][0]["message"]["content"]
    assert content == "I received 1 audio clip(s): wav, 100 bytes."


# --- fixer


def test_fixer_answers_prose_and_one_python_block_with_a_bounds_guard(http: httpx.Client) -> None:
    prompt = (
        "This cell failed with IndexError: list index out of range\n```python\nitems = [1, 2]\nprint(items[5])\n```"
    )
    content = chat(http, "sandbox/fixer", prompt)["choices"][0]["message"]["content"]
    assert content.count("```python") == 1 and content.count("```") == 2
    prose, code = content.split("```python\n")
    assert prose.strip().endswith("corrected version.")
    code = code.split("```")[0]
    assert code == "# fixed\nitems = [1, 2]\nif 0 <= 5 < len(items):\n    print(items[5])\n"
    compile(code, "<fix>", "exec")


def test_fixer_without_indexerror_echoes_the_code_marked_fixed(http: httpx.Client) -> None:
    content = chat(http, "sandbox/fixer", "NameError here:\n```python\nprint(x)\n```")["choices"][0]["message"][
        "content"
    ]
    assert "```python\n# fixed\nprint(x)\n```" in content


# --- latency, pacing, rate limits, concurrency


@pytest.mark.parametrize("stream", [False, True])
def test_latency_model_waits_its_latency(http: httpx.Client, stream: bool) -> None:
    start_ = time.monotonic()
    response = http.post(
        "/chat/completions",
        json={"model": "sandbox/latency-200", "messages": [{"role": "user", "content": "row 1"}], "stream": stream},
    )
    elapsed = time.monotonic() - start_
    assert 0.2 <= elapsed < 1.0
    assert ("Answer" if stream else "Answer to “row 1”") in response.text


def test_ratelimit_model_refuses_a_share_of_first_tries_then_answers(http: httpx.Client, sb: Sandbox) -> None:
    prompts = [f"row {i}" for i in range(60)]
    first = {
        p: http.post(
            "/chat/completions", json={"model": "sandbox/ratelimit-30", "messages": [{"role": "user", "content": p}]}
        )
        for p in prompts
    }
    limited = {p for p, r in first.items() if r.status_code == 429}
    assert limited == {p for p in prompts if limited_first_try(p, 30)}
    assert 5 < len(limited) < 35
    assert all(first[p].headers["Retry-After"] == "1" for p in limited)
    for p in limited:
        assert (
            http.post(
                "/chat/completions",
                json={"model": "sandbox/ratelimit-30", "messages": [{"role": "user", "content": p}]},
            ).status_code
            == 200
        )
    counts = sb.prompt_counts("sandbox/ratelimit-30")
    assert {p for p, n in counts.items() if n == 2} == limited and sum(counts.values()) == 60 + len(limited)


def test_64_concurrent_requests_overlap(sb: Sandbox) -> None:
    sb.reset()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    with httpx.Client(base_url=sb.url, headers=AUTH, timeout=10, limits=limits) as client:

        def one(i: int) -> int:
            body = {"model": "sandbox/latency-200", "messages": [{"role": "user", "content": f"c{i}"}]}
            return client.post("/chat/completions", json=body).status_code

        start_ = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(64) as pool:
            statuses = list(pool.map(one, range(64)))
        elapsed = time.monotonic() - start_
    assert statuses == [200] * 64
    assert elapsed < 1.5, f"64 requests of 200 ms took {elapsed:.2f} s: they did not overlap"
    assert sum(sb.prompt_counts().values()) == 64


def test_paced_model_spreads_its_answer(http: httpx.Client) -> None:
    body = {"model": "sandbox/paced-500", "messages": [{"role": "user", "content": "pace me"}], "stream": True}
    start_ = time.monotonic()
    with http.stream("POST", "/chat/completions", json=body) as response:
        first = None
        for line in response.iter_lines():
            if first is None and '"content":"Answer' in line:
                first = time.monotonic() - start_
    total = time.monotonic() - start_
    assert first is not None and first < 0.3 and 0.45 <= total < 1.2
