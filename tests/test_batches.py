"""The Batch API and /generation through the client, against the real sandbox over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from or_magic.batches import Batch, BatchTimeoutError, ConflictResponseError
from or_magic.client import OpenRouter
from or_magic.errors import BadRequestResponseError, NotFoundResponseError
from or_magic.sandbox import Sandbox, start

KEY = "sk-or-v1-batchtest0000000000000000000000000000000000000000000000000"


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with start() as sandbox:
        yield sandbox


@pytest.fixture
def client(sb: Sandbox) -> Iterator[OpenRouter]:
    sb.reset()
    sb.batch_delay = 0.4
    with OpenRouter(api_key=KEY, server_url=sb.url) as c:
        yield c


def rows(n: int, failing: int | None = None) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        body: dict[str, Any] = {"messages": [{"role": "user", "content": f"review {i}"}]}
        if i == failing:
            body["model"] = "sandbox/error-500"
        out.append({"custom_id": f"row-{i}", "body": body})
    return out


def test_create_poll_and_results_by_custom_id(client: OpenRouter, sb: Sandbox) -> None:
    batch = client.batches.create("sandbox/echo", rows(5, failing=2))
    assert isinstance(batch, Batch) and batch.status == "validating" and batch.request_counts.total == 5
    seen: list[str] = []
    done = client.batches.wait(batch.id, timeout=10, interval=0.05, on_update=lambda b: seen.append(b.status))
    assert done.status == "completed" and seen[-1] == "completed" and len(seen) > 1
    assert (done.request_counts.completed, done.request_counts.failed) == (4, 1)
    results = done.results_by_id()
    assert results["row-2"].error is not None and results["row-2"].response is None
    for i in (0, 1, 3, 4):
        body = results[f"row-{i}"].response.body
        assert body.choices[0].message.content == f"review {i}"
    assert done.usage["cost"] > 0 and sb.batch_submissions == 1
    submitted = [r for r in sb.requests if r["path"].endswith("/batches") and r["method"] == "POST"]
    assert len(submitted) == 1 and submitted[0]["body"]["endpoint"] == "/v1/chat/completions"
    assert "Authorization" not in repr(client.batches) and KEY not in repr(client.batches)


def test_progress_is_visible_while_running(client: OpenRouter, sb: Sandbox) -> None:
    batch = client.batches.create("sandbox/echo", rows(20), metadata={"sandbox_delay": "1.0"})
    statuses = set()
    counts = []
    client.batches.wait(
        batch.id,
        timeout=10,
        interval=0.05,
        max_interval=0.05,
        on_update=lambda b: (statuses.add(b.status), counts.append(b.request_counts.completed)),
    )
    assert {"validating", "in_progress", "completed"} <= statuses
    assert counts == sorted(counts) and len(set(counts)) > 2 and counts[-1] == 20


def test_list_cancel_delete(client: OpenRouter) -> None:
    first = client.batches.create("sandbox/echo", rows(2), metadata={"sandbox_delay": "0"})
    running = client.batches.create("sandbox/echo", rows(2), metadata={"sandbox_delay": "60"})
    page = client.batches.list()
    assert [b.id for b in page.data] == [running.id, first.id] and all(b.results is None for b in page.data)
    assert client.batches.list(after=running.id, limit=1).data[0].id == first.id
    with pytest.raises(ConflictResponseError):
        client.batches.delete(running.id)
    assert client.batches.cancel(running.id).status == "cancelled"
    with pytest.raises(ConflictResponseError):
        client.batches.cancel(running.id)
    assert client.batches.delete(running.id).deleted is True
    with pytest.raises(NotFoundResponseError):
        client.batches.get(running.id)


def test_bad_submit_is_refused_and_nothing_is_recorded(client: OpenRouter, sb: Sandbox) -> None:
    with pytest.raises(BadRequestResponseError):
        client.batches.create("sandbox/echo", [{"custom_id": "a", "body": {}}, {"custom_id": "a", "body": {}}])
    assert sb.batch_submissions == 0


def test_wait_is_bounded(client: OpenRouter) -> None:
    batch = client.batches.create("sandbox/echo", rows(1), metadata={"sandbox_delay": "60"})
    with pytest.raises(BatchTimeoutError):
        client.batches.wait(batch.id, timeout=0.2, interval=0.05)


def test_async_twins(client: OpenRouter, sb: Sandbox) -> None:
    async def run() -> Batch:
        batch = await client.batches.create_async("sandbox/echo", rows(3))
        assert (await client.batches.list_async()).data[0].id == batch.id
        return await client.batches.wait_async(batch.id, timeout=10, interval=0.05)

    done = asyncio.run(run())
    assert done.status == "completed" and done.request_counts.completed == 3 and sb.batch_submissions == 1


def test_generation_lookup_sync_and_async(client: OpenRouter, sb: Sandbox) -> None:
    result = client.chat.send(messages=[{"role": "user", "content": "price me"}], model="sandbox/echo")
    info = client.generation(result.id)
    assert info.id == result.id and info.total_cost == result.usage.cost and info.cancelled is False
    assert asyncio.run(client.generation_async(result.id)).total_cost == info.total_cost
    with pytest.raises(NotFoundResponseError):
        client.generation("gen-0-missing")
    records = [r for r in sb.requests if r["path"].endswith("/generation")]
    assert records and all(r["headers"]["authorization"] == "<redacted>" for r in records)
