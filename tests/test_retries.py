"""Retries, measured: the real client over real HTTP against the sandbox, then %%chat through a kernel.

Attempts are counted from what the sandbox received; waits are measured twice, as the sleeps the client
asked for (a recording ``sleep`` that really sleeps) and as the gaps between the requests' arrival times at
the server. The policy under test (``RetryConfig`` defaults): 2 retries for 408/429/500/502/503/524/529 and
connection failures, exponential backoff from 0.5 s with up to 25 % jitter, ``Retry-After`` (or
``retry-after-ms``) honoured exactly, at most 15 s of waiting in all (a longer ``Retry-After`` fails at once,
carrying ``retry_after``), and never a retry once the response body has started.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from _kernel import Kernel

import or_magic.errors as errors
from or_magic.client import OpenRouter, RetryConfig
from or_magic.sandbox import Sandbox, start

KEY = "sk-or-v1-retries000000000000000000000000000000000000000000000000000"
SLACK = 0.35  # scheduling and request handling on a loaded 2-core machine


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with start() as sandbox:
        yield sandbox


class Recorder:
    """A sleep that really sleeps and records what it was asked for."""

    def __init__(self, really: bool = True) -> None:
        self.calls: list[float] = []
        self.really = really

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.really:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.really:
            await asyncio.sleep(seconds)


def client(sb: Sandbox, sleep: Recorder | None = None, **kwargs: Any) -> OpenRouter:
    sb.reset()
    if sleep is not None:
        kwargs.setdefault("sleep", sleep)
        kwargs.setdefault("async_sleep", sleep.asleep)
    return OpenRouter(api_key=KEY, server_url=sb.url, **kwargs)


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": f"{text} id={uuid.uuid4().int % 10**9}"}]  # fresh sandbox/flaky counter


def chats(sb: Sandbox) -> list[dict[str, Any]]:
    return [r for r in sb.requests if r["path"].endswith("/chat/completions")]


def gaps(sb: Sandbox) -> list[float]:
    times = [r["time"] for r in chats(sb)]
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def consume(c: OpenRouter, model: str, prompt: str, stream: bool, **kwargs: Any) -> Any:
    res = c.chat.send(messages=ask(prompt), model=model, stream=stream, **kwargs)
    if stream:
        with res:
            for _ in res:
                pass
        return res.accumulator.text
    return res.choices[0].message.content


# ---------------------------------------------------------------- attempts and waits


@pytest.mark.parametrize("fails", [0, 1, 2])
@pytest.mark.parametrize("stream", [False, True])
def test_transient_503_is_retried_and_recovers(sb: Sandbox, fails: int, stream: bool) -> None:
    """sandbox/flaky answers 503 with ``Retry-After: 0`` ``fails`` times: that many retries, no waiting."""
    sleep = Recorder()
    t0 = time.monotonic()
    with client(sb, sleep) as c:
        text = consume(c, "sandbox/flaky", f"fail={fails}", stream)
    assert text.startswith(f"fail={fails}")
    assert len(chats(sb)) == fails + 1
    assert sleep.calls == [0.0] * fails, "Retry-After: 0 means no wait, not the backoff"
    assert time.monotonic() - t0 < 2.0


def test_more_failures_than_retries_raise_the_typed_error(sb: Sandbox) -> None:
    sleep = Recorder()
    with client(sb, sleep) as c, pytest.raises(errors.ServiceUnavailableResponseError) as info:
        consume(c, "sandbox/flaky", "fail=5", False)
    assert len(chats(sb)) == 3 and info.value.attempts == 3 and len(sleep.calls) == 2
    assert info.value.status_code == 503 and info.value.hint


def test_backoff_schedule_without_retry_after(sb: Sandbox) -> None:
    """sandbox/error-503 sends no Retry-After: waits follow initial * 2**n, shortened by at most the jitter."""
    cfg = RetryConfig(max_retries=3, initial_interval=0.3, max_interval=8.0, jitter=0.25, max_wait=15.0)
    sleep = Recorder()
    t0 = time.monotonic()
    with client(sb, sleep, retry_config=cfg) as c, pytest.raises(errors.ServiceUnavailableResponseError) as info:
        consume(c, "sandbox/error-503", "x", False)
    took = time.monotonic() - t0
    assert len(chats(sb)) == 4 and info.value.attempts == 4
    assert len(sleep.calls) == 3
    for n, (asked, measured) in enumerate(zip(sleep.calls, gaps(sb), strict=True)):
        nominal = 0.3 * 2**n
        assert nominal * 0.75 - 1e-9 <= asked <= nominal + 1e-9, (n, asked)
        assert asked - 0.01 <= measured <= asked + SLACK, (n, asked, measured)
    assert took <= sum(sleep.calls) + 4 * SLACK
    print(f"retries: backoff asked {[round(x, 3) for x in sleep.calls]} s, measured between arrivals "
          f"{[round(x, 3) for x in gaps(sb)]} s, total {took:.2f} s")


def test_retry_after_is_honoured_in_real_time(sb: Sandbox) -> None:
    sleep = Recorder()
    t0 = time.monotonic()
    with client(sb, sleep) as c:
        text = consume(c, "sandbox/flaky", "fail=2 retry_after=1", True)
    took = time.monotonic() - t0
    assert text.startswith("fail=2 retry_after=1")
    assert sleep.calls == [1.0, 1.0]
    assert all(1.0 - 0.01 <= g <= 1.0 + SLACK for g in gaps(sb)), gaps(sb)
    assert 2.0 <= took <= 2.0 + 3 * SLACK
    print(f"retries: Retry-After 1 -> gaps {[round(x, 3) for x in gaps(sb)]} s, total {took:.2f} s")


def test_retry_after_ms_wins_over_retry_after(sb: Sandbox) -> None:
    sleep = Recorder()
    with client(sb, sleep) as c:
        consume(c, "sandbox/flaky", "fail=1 retry_after=5 retry_after_ms=250", False)
    assert sleep.calls == [0.25]
    (gap,) = gaps(sb)
    assert 0.25 - 0.01 <= gap <= 0.25 + SLACK


def test_rate_limit_waits_what_the_server_asks(sb: Sandbox) -> None:
    """429 from the provider, ``Retry-After: 1``: both retries wait 1 s, then the typed error."""
    sleep = Recorder()
    t0 = time.monotonic()
    with client(sb, sleep) as c, pytest.raises(errors.TooManyRequestsResponseError) as info:
        consume(c, "sandbox/ratelimit", "retry_after=1", False)
    assert sleep.calls == [1.0, 1.0] and len(chats(sb)) == 3 and info.value.attempts == 3
    assert info.value.retry_after == 1.0
    assert 2.0 <= time.monotonic() - t0 <= 2.0 + 3 * SLACK


@pytest.mark.parametrize("model, prompt, cls, wait", [
    ("sandbox/ratelimit", "retry_after=60", errors.TooManyRequestsResponseError, 60.0),
    ("sandbox/error-429", "retry_after=16", errors.TooManyRequestsResponseError, 16.0),
    ("sandbox/error-503", "retry_after=3600", errors.ServiceUnavailableResponseError, 3600.0),
    ("sandbox/flaky", "fail=1 retry_after_ms=20000", errors.ServiceUnavailableResponseError, 20.0),
    ("sandbox/error-html", "retry_after=30", errors.OpenRouterDefaultError, 30.0),
])
def test_retry_after_beyond_the_wait_budget_fails_at_once(sb: Sandbox, model: str, prompt: str,
                                                          cls: type[errors.OpenRouterError], wait: float) -> None:
    """The default budget is 15 s of waiting: a server asking for more gets its error raised immediately,
    with ``retry_after`` set (a cell that blocks silently for minutes is worse than a clear message)."""
    sleep = Recorder()
    t0 = time.monotonic()
    with client(sb, sleep) as c, pytest.raises(cls) as info:
        consume(c, model, prompt, True)
    assert time.monotonic() - t0 < 1.0
    assert sleep.calls == [] and len(chats(sb)) == 1 and info.value.attempts == 1
    assert info.value.retry_after == wait
    print(f"retries: {model} asking {wait:g} s -> {type(info.value).__name__} after "
          f"{time.monotonic() - t0:.3f} s, 1 request")
    if cls is errors.TooManyRequestsResponseError:
        assert "wait" in info.value.hint


def test_wait_budget_caps_the_total_sleep(sb: Sandbox) -> None:
    cfg = RetryConfig(max_retries=10, initial_interval=0.4, max_wait=1.0, jitter=0.0)
    sleep = Recorder()
    t0 = time.monotonic()
    with client(sb, sleep, retry_config=cfg) as c, pytest.raises(errors.ServiceUnavailableResponseError) as info:
        consume(c, "sandbox/error-503", "x", False)
    assert sleep.calls == pytest.approx([0.4, 0.6])  # the second wait is cut to what is left of the budget
    assert sum(sleep.calls) <= 1.0 + 1e-9
    assert len(chats(sb)) == 3 and info.value.attempts == 3
    assert time.monotonic() - t0 <= 1.0 + 3 * SLACK


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 524, 529])
def test_retryable_statuses(sb: Sandbox, status: int) -> None:
    sleep = Recorder(really=False)
    with client(sb, sleep) as c, pytest.raises(errors.ChatError) as info:
        consume(c, f"sandbox/error-{status}", "x", False)
    assert info.value.status_code == status
    assert len(chats(sb)) == 3 and info.value.attempts == 3 and len(sleep.calls) == 2
    if status == 429:  # the sandbox's own rate limit asks for 1 s
        assert sleep.calls == [1.0, 1.0]
    else:
        assert 0.375 <= sleep.calls[0] <= 0.5 and 0.75 <= sleep.calls[1] <= 1.0


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 413, 418, 422])
def test_client_errors_are_sent_once(sb: Sandbox, status: int) -> None:
    sleep = Recorder(really=False)
    with client(sb, sleep, retry_config=RetryConfig(max_retries=5)) as c, pytest.raises(errors.ChatError):
        consume(c, f"sandbox/error-{status}", "x", True)
    assert len(chats(sb)) == 1 and sleep.calls == []


# ---------------------------------------------------------------- never after the first byte

AFTER_FIRST_BYTE = ["sandbox/midstream-documented", "sandbox/midstream-string-code", "sandbox/midstream-raw-metadata",
                    "sandbox/midstream-empty-choices", "sandbox/midstream-bare", "sandbox/midstream-finish-only",
                    "sandbox/disconnect", "sandbox/malformed", "sandbox/error-200", "sandbox/stall"]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "nostream"])
@pytest.mark.parametrize("model", AFTER_FIRST_BYTE)
def test_nothing_is_resent_once_the_server_has_the_request(sb: Sandbox, model: str, stream: bool) -> None:
    """Failures after the server has the whole request (it answers, or is generating the answer) are never
    retried, even with retries on: a retry re-bills the prompt, and without streaming the whole answer too
    (OPENROUTER.md 4.6 and 7.13). A read timeout is already excluded for that reason; a dropped connection
    after the request was sent is the same case."""
    sleep = Recorder(really=False)
    with client(sb, sleep, retry_config=RetryConfig(max_retries=5)) as c, \
            pytest.raises(errors.OpenRouterError) as info:
        consume(c, model, "stall=5", stream, timeout_ms=700)
    assert len(chats(sb)) == 1, f"{type(info.value).__name__} was retried {len(chats(sb)) - 1} times"
    assert sleep.calls == [] and info.value.attempts == 1


@pytest.mark.parametrize("model", ["sandbox/midstream-documented", "sandbox/disconnect", "sandbox/stall"])
def test_nothing_is_resent_after_the_first_byte_async(sb: Sandbox, model: str) -> None:
    sleep = Recorder(really=False)

    async def go() -> None:
        async with client(sb, sleep, retry_config=RetryConfig(max_retries=5)) as c:
            res = await c.chat.send_async(messages=ask("stall=5"), model=model, stream=True, timeout_ms=700)
            async with res:
                async for _ in res:
                    pass

    with pytest.raises(errors.OpenRouterError):
        asyncio.run(go())
    assert len(chats(sb)) == 1 and sleep.calls == []


def test_async_retries_follow_the_same_policy(sb: Sandbox) -> None:
    sleep = Recorder()

    async def go() -> str:
        async with client(sb, sleep) as c:
            res = await c.chat.send_async(messages=ask("fail=2 retry_after=1"), model="sandbox/flaky")
            return res.choices[0].message.content

    t0 = time.monotonic()
    assert asyncio.run(go()).startswith("fail=2 retry_after=1")
    assert sleep.calls == [1.0, 1.0] and len(chats(sb)) == 3
    assert 2.0 <= time.monotonic() - t0 <= 2.0 + 3 * SLACK


# ---------------------------------------------------------------- total time


def test_connection_refused_total_time_is_bounded() -> None:
    sleep = Recorder()
    t0 = time.monotonic()
    with OpenRouter(api_key=KEY, server_url="http://127.0.0.1:9/api/v1", sleep=sleep) as c, \
            pytest.raises(errors.APIConnectionError) as info:
        c.chat.send(messages=ask("x"), model="sandbox/echo")
    took = time.monotonic() - t0
    assert info.value.attempts == 3 and len(sleep.calls) == 2
    assert sum(sleep.calls) <= 1.5 and took <= sum(sleep.calls) + 1.0
    print(f"retries: connection refused -> 3 attempts, slept {[round(x, 3) for x in sleep.calls]}, {took:.2f} s")


def test_default_policy_total_time_for_a_persistent_outage(sb: Sandbox) -> None:
    """Every attempt fails with 503 and no Retry-After: the cell is told within about 1.5 s."""
    t0 = time.monotonic()
    with client(sb) as c, pytest.raises(errors.ServiceUnavailableResponseError):
        consume(c, "sandbox/error-503", "x", True)
    took = time.monotonic() - t0
    assert len(chats(sb)) == 3
    assert 0.375 + 0.75 <= took <= 1.5 + 3 * SLACK
    print(f"retries: persistent 503, default policy -> 3 requests, {took:.2f} s")


# ---------------------------------------------------------------- through the kernel


@pytest.mark.kernel
@pytest.mark.parametrize("retries", [0, 1, 3])
def test_max_retries_config_through_the_kernel(kern: Kernel, sandbox: Sandbox, retries: int) -> None:
    try:
        assert kern.run(f"%config ChatMagics.max_retries = {retries}").status == "ok"
        sandbox.clear_requests()
        tag = uuid.uuid4().hex[:8]
        r = kern.run(f"%%chat -m sandbox/flaky\nfail=9 {tag}", cell_id="rk1")
        assert r.status == "ok" and not r.of_type("error")
        assert "ServiceUnavailableResponseError" in r.text()
        assert len([q for q in sandbox.requests if q["path"].endswith("/chat/completions")]) == retries + 1
        details = kern.run("import json as _j\nprint('@@' + _j.dumps(get_ipython().magics_manager"
                           ".registry['ChatMagics'].session.last_error.to_dict()['attempts']))")
        assert f"@@{retries + 1}" in details.text()
        # and a transient failure within the budget is invisible: the answer arrives
        sandbox.clear_requests()
        r = kern.run(f"%%chat -m sandbox/flaky\nfail={retries} {tag}b", cell_id="rk2")
        assert r.status == "ok" and "Error" not in json.dumps([o.get("data") for o in r.outputs()])
        assert f"fail={retries} {tag}b" in r.text()
        assert len([q for q in sandbox.requests if q["path"].endswith("/chat/completions")]) == retries + 1
    finally:
        kern.run("%config ChatMagics.max_retries = 2")
