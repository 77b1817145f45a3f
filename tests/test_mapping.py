"""Prompts over data: the map engine against the real sandbox, with MockTransport only to count overlap and
to inject first-try 429s precisely."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import httpx
import pandas as pd
import pytest
from _kernel import FAKE_KEY
from pydantic import BaseModel

from or_magic import OpenRouter, map_prompt
from or_magic.journal import MapJournal
from or_magic.map_api import build_job, plan
from or_magic.mapping import MapJob, run_map, run_map_async
from or_magic.progress import RecordingProgress
from or_magic.session import BudgetExceededError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def client(sandbox):
    sandbox.reset()
    with OpenRouter(api_key=FAKE_KEY, server_url=sandbox.url) as c:
        yield c


def _prompts(sandbox) -> list[str]:
    """The user message of every chat request the sandbox received, in arrival order."""
    out = []
    for r in sandbox.requests:
        if r["path"].endswith("/chat/completions") and isinstance(r.get("body"), dict):
            out.append(r["body"]["messages"][-1]["content"])
    return out


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"item-{i}" for i in range(n)], "n": range(n)},
                        index=pd.Index([f"r{i}" for i in range(n)], name="key"))


def test_sixty_rows_each_sent_once_in_order(sandbox, client, tmp_path):
    df = _frame(60)
    topic = "fruit"  # a notebook variable; the row's own fields shadow same-named ones
    text = "shadowed"  # noqa: F841 - must lose to the row's `text`
    out = map_prompt(df, "Label $text, row $index, about $topic", model="sandbox/echo", system="Be brief.",
                     client=client, concurrency=8, journal_dir=tmp_path, progress=None)
    assert list(out.columns[:2]) == ["text", "n"] and out.index.equals(df.index)
    assert list(out["answer"]) == [f"Label item-{i}, row r{i}, about {topic}" for i in range(60)]
    assert (out["error"] == "").all() and (out["model"] == "sandbox/echo").all() and out["cost"].gt(0).all()
    sent = Counter(_prompts(sandbox))
    assert len(sent) == 60 and set(sent.values()) == {1}
    systems = {r["body"]["messages"][0]["content"] for r in sandbox.requests if r["path"].endswith("completions")}
    assert systems == {"Be brief."}
    assert out.attrs["or_magic_map"]["ok"] == 60


def test_series_list_and_interpolation_rules(client, tmp_path):
    series = pd.Series(["a", "b"], index=[10, 20], name="letter")
    out = map_prompt(series, "$item at $index costs $5; keep \\$index", model="sandbox/echo", client=client,
                     journal=False, progress=None)
    assert list(out["answer"]) == ["a at 10 costs $5; keep $index", "b at 20 costs $5; keep $index"]
    assert list(out.index) == [10, 20] and list(out["letter"]) == ["a", "b"]
    listed = map_prompt(["x", "y"], r"$item \$item", model="sandbox/echo", client=client, journal=False,
                        progress=None)
    assert list(listed["answer"]) == ["x $item", "y $item"] and list(listed["item"]) == ["x", "y"]


class _Overlap:
    """A fake server that counts requests in flight at once (the only thing the sandbox cannot show)."""

    def __init__(self, latency: float = 0.03) -> None:
        self.latency, self.now, self.peak, self.bodies = latency, 0, 0, []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.now += 1
        self.peak = max(self.peak, self.now)
        body = json.loads(request.content)
        self.bodies.append(body)
        try:
            await asyncio.sleep(self.latency)
        finally:
            self.now -= 1
        text = body["messages"][-1]["content"]
        return httpx.Response(200, json={"id": "g", "model": body["model"], "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "cost": 0.001}})


@pytest.mark.parametrize("concurrency", [1, 8, 16])
def test_requests_overlap_up_to_the_concurrency(concurrency):
    server = _Overlap()
    client = OpenRouter(api_key=FAKE_KEY, server_url="http://fake/api/v1",
                        async_client=httpx.AsyncClient(transport=httpx.MockTransport(server)))
    job = build_job(_frame(60), "$text", model="m", concurrency=concurrency, journal=False)
    result = run_map(client, job)
    assert server.peak == concurrency
    assert list(result.frame["answer"]) == [f"item-{i}" for i in range(60)]
    assert result.stats.cost == pytest.approx(0.06)


class _Limited:
    """Answers 429 (Retry-After) to the first attempt of every fifth row; records when each request starts."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after, self.starts, self.limited_at, self.seen = retry_after, [], [], Counter()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        text = body["messages"][-1]["content"]
        self.starts.append((time.monotonic(), text))
        self.seen[text] += 1
        await asyncio.sleep(0.005)
        if int(text.split("-")[1]) % 5 == 0 and self.seen[text] == 1:
            self.limited_at.append(time.monotonic())
            return httpx.Response(429, headers={"Retry-After": str(self.retry_after)},
                                  json={"error": {"code": 429, "message": "slow down"}})
        return httpx.Response(200, json={"model": "m", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text.upper()}, "finish_reason": "stop"}]})


def test_first_try_429s_pause_every_worker_and_resend_only_limited_rows():
    server = _Limited(retry_after=0.2)
    client = OpenRouter(api_key=FAKE_KEY, server_url="http://fake/api/v1",
                        async_client=httpx.AsyncClient(transport=httpx.MockTransport(server)))
    result = run_map(client, build_job(_frame(200), "$text", model="m", concurrency=16, journal=False))
    assert (result.frame["error"] == "").all()
    assert list(result.frame["answer"]) == [f"ITEM-{i}" for i in range(200)]
    assert {t for t, n in server.seen.items() if n > 1} == {f"item-{i}" for i in range(0, 200, 5)}
    assert set(server.seen.values()) <= {1, 2}
    for limited in server.limited_at:  # the shared gate: nobody starts a request while it is closed
        started = [t for t, _ in server.starts if limited + 0.01 < t < limited + 0.2 - 0.01]
        assert started == []


def test_gate_through_the_sandbox_503s(sandbox, client):
    df = pd.DataFrame({"f": [1 if i % 4 == 0 else 0 for i in range(24)]})
    out = map_prompt(df, "fail=$f row $index", model="sandbox/flaky", client=client, concurrency=6,
                     journal=False, progress=None)
    assert (out["error"] == "").all(), out["error"].tolist()
    sent = Counter(_prompts(sandbox))
    assert all(n == (2 if int(p.split()[2]) % 4 == 0 else 1) for p, n in sent.items()) and len(sent) == 24


def test_per_row_errors_never_stop_the_others(sandbox, client):
    df = pd.DataFrame({"f": [0, 9, 0]})
    out = map_prompt(df, "fail=$f row $index", model="sandbox/flaky", client=client, max_retries=1,
                     journal=False, progress=None)
    assert out["error"][1].startswith("ServiceUnavailableResponseError: ")
    assert out["error"][0] == out["error"][2] == "" and pd.isna(out["answer"][1])
    assert FAKE_KEY not in out.to_json()


class Sentiment(BaseModel):
    label: str
    score: float


def test_schema_gives_typed_columns_and_bad_answers_fail_their_row(client, tmp_path):
    df = pd.DataFrame({"review": ["good", "bad invalid_json=2", "fine"]})
    out = map_prompt(df, "Rate: $review", model="sandbox/echo", schema=Sentiment, client=client,
                     journal_dir=tmp_path, progress=None)
    assert list(out.columns) == ["review", "label", "score", "error", "cost", "model"]
    assert isinstance(out["label"][0], str) and out["score"].dtype.kind == "f"
    assert out["error"][1].startswith("StructuredOutputError: ") and out["error"][0] == ""
    again = map_prompt(df, "Rate: $review", model="sandbox/echo", schema=Sentiment, client=client,
                       journal_dir=tmp_path, progress=None)
    assert again.attrs["or_magic_map"]["resumed"] == 3  # the invalid answer was paid for: not sent again
    assert again[["label", "score", "error"]].equals(out[["label", "score", "error"]])


def test_cancel_keeps_finished_rows_and_rerun_sends_only_the_rest(sandbox, client, tmp_path):
    df = pd.DataFrame({"text": [f"slow-{i} delay=0.15" for i in range(24)]})
    job = build_job(df, "$text", model="sandbox/echo", concurrency=4, journal_dir=tmp_path)

    async def interrupted():
        task = asyncio.ensure_future(run_map_async(client, job))
        deadline = time.monotonic() + 20
        while len(_lines(tmp_path)) < 5 and time.monotonic() < deadline:  # header + 4 answered rows
            await asyncio.sleep(0.02)
        task.cancel()
        return await task

    first = asyncio.run(interrupted())
    ok = set(first.frame.index[first.frame["error"] == ""])
    assert first.stats.interrupted and 0 < len(ok) < 24
    assert set(first.frame.loc[first.frame["error"] != "", "error"]) == {"not run"}
    sent_before = len(_prompts(sandbox))
    second = run_map(client, job)
    assert (second.frame["error"] == "").all() and second.stats.resumed == len(ok)
    resent = {int(p.split("-")[1].split()[0]) for p in _prompts(sandbox)[sent_before:]}
    assert resent == set(range(24)) - ok


def test_restart_then_rerun_sends_only_unrecorded_rows(sandbox, client, tmp_path):
    script = textwrap.dedent(f"""
        import pandas as pd
        from or_magic import OpenRouter, map_prompt
        df = pd.DataFrame({{"text": [f"r-{{i}} delay=0.2" for i in range(20)]}})
        map_prompt(df, "$text", model="sandbox/echo", client=OpenRouter(server_url={sandbox.url!r}),
                   concurrency=2, journal_dir={str(tmp_path)!r}, progress=None)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENROUTER_API_KEY": FAKE_KEY}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(_lines(tmp_path)) < 5:
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait(10)
    recorded = {json.loads(line)["position"] for line in _lines(tmp_path)[1:]}
    assert 4 <= len(recorded) < 20
    before = len(_prompts(sandbox))
    df = pd.DataFrame({"text": [f"r-{i} delay=0.2" for i in range(20)]})
    out = map_prompt(df, "$text", model="sandbox/echo", client=client, concurrency=8, journal_dir=tmp_path,
                     progress=None)
    assert (out["error"] == "").all() and out.attrs["or_magic_map"]["resumed"] == len(recorded)
    resent = {int(p.split("-")[1].split()[0]) for p in _prompts(sandbox)[before:]}
    assert resent == set(range(20)) - recorded
    assert FAKE_KEY not in "".join(_lines(tmp_path))


def _lines(directory: Path) -> list[str]:
    files = list(directory.glob("*.jsonl"))
    return files[0].read_text().splitlines() if files else []


def test_fresh_sends_all_again_and_foreign_journal_is_left_alone(sandbox, client, tmp_path):
    job = build_job(["a", "b"], "$item", model="sandbox/echo", journal_dir=tmp_path)
    run_map(client, job)
    job.fresh = True
    before = len(_prompts(sandbox))
    assert run_map(client, job).stats.resumed == 0 and len(_prompts(sandbox)) - before == 2
    path = next(tmp_path.glob("*.jsonl"))
    path.write_text("not ours\n")
    job.fresh = False
    result = run_map(client, job)
    assert result.stats.resumed == 0 and "not recorded" in result.stats.note
    assert path.read_text() == "not ours\n"


def test_truncated_last_line_loses_only_that_row(tmp_path):
    journal = MapJournal("k", tmp_path)
    journal.start()
    journal.append({"digest": "a", "text": "A"})
    with open(journal.path, "ab") as fh:
        fh.write(b'{"digest": "b", "te')  # killed mid-write
    again = MapJournal("k", tmp_path)
    assert set(again.load()) == {"a"}
    again.start()
    again.append({"digest": "c", "text": "C"})
    assert set(MapJournal("k", tmp_path).load()) == {"a", "c"}


def test_dry_run_and_budget_refusal_send_nothing(sandbox, client, tmp_path):
    df = _frame(10)
    job = build_job(df, "Say $text", model="sandbox/echo", max_tokens=100, journal_dir=tmp_path)
    p = plan(client, job)
    assert p.requests == 10 and p.body["messages"][-1]["content"] == "Say item-0" and p.body["max_tokens"] == 100
    assert p.estimate.completion_tokens == 1000 and p.estimate.usd > 0
    with pytest.raises(BudgetExceededError, match="nothing was sent"):
        map_prompt(df, "Say $text", model="sandbox/echo", max_tokens=100, client=client, budget=p.estimate.usd / 2,
                   journal_dir=tmp_path, progress=None)
    assert _prompts(sandbox) == [] and not list(tmp_path.glob("*.jsonl"))


def test_progress_is_throttled_and_ends_with_the_summary(client):
    rec = RecordingProgress()
    df = pd.DataFrame({"t": [f"x delay=0.05 {i}" for i in range(20)]})
    result = run_map(client, MapJob(df, "$t", {"model": "sandbox/echo"}, concurrency=2, journal=False), rec)
    names = [name for name, _ in rec.events]
    assert names[0] == "start" and names[-1] == "finish" and rec.frame is result.frame
    updates = [s for name, s in rec.events if name == "update"]
    assert len(updates) <= result.stats.elapsed * 10 + 2
    assert [s.done for s in updates] == sorted(s.done for s in updates)
    assert "20 ok, 0 failed of 20 rows" in rec.events[-1][1].summary()
