"""OpenRouter's Batch API (``/batches``, OPENROUTER.md §11.1): submit many chat requests, poll, read results.

Reached as ``OpenRouter(...).batches``. Mirrors the official SDK's ``batch`` module (create, get, list, delete)
plus ``cancel`` and a bounded ``wait``. Submitting is retried only on 429, never after a failure that may
have reached the server, so one call never submits twice. Results are matched to rows by ``custom_id``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pydantic_core import ValidationError

from .errors import (
    BatchPaymentRequiredResponseError,
    BatchTimeoutError,
    ConflictResponseError,
    OpenRouterError,
    ResponseValidationError,
    make_stream_error,
)
from .types import ChatResult, OpenRouterModel

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from .client import OpenRouter

ENDPOINT = "/v1/chat/completions"
TERMINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})


# ---------------------------------------------------------------- models


class BatchRequestCounts(OpenRouterModel):
    completed: int = 0
    failed: int = 0
    total: int = 0


class BatchResultError(OpenRouterModel):
    message: str = ""
    param: str | None = None
    type: str | None = None
    error_type: str | None = None


class BatchResultResponse(OpenRouterModel):
    status_code: int | None = None
    request_id: str | None = None
    body: ChatResult | None = None


class BatchResult(OpenRouterModel):
    """One row's outcome: ``response.body`` (a chat completion) or ``error``."""

    custom_id: str
    id: str | None = None
    error: BatchResultError | None = None
    response: BatchResultResponse | None = None


class Batch(OpenRouterModel):
    """A batch object; ``results`` is None until some rows have finished (and in lists)."""

    id: str
    object: str = "batch"
    endpoint: str | None = None
    model: str | None = None
    status: str = "validating"
    request_counts: BatchRequestCounts = BatchRequestCounts()
    results: list[BatchResult] | None = None
    usage: dict[str, Any] | None = None
    created_at: int | None = None
    finalized_at: int | None = None
    expires_at: int | None = None
    completion_window: str | None = None
    error: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        """A terminal status (unknown statuses count as not finished)."""
        return self.status in TERMINAL_STATUSES

    def results_by_id(self) -> dict[str, BatchResult]:
        return {r.custom_id: r for r in self.results or []}


class BatchList(OpenRouterModel):
    data: list[Batch] = []
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class BatchDeleted(OpenRouterModel):
    id: str
    deleted: bool = True


# ---------------------------------------------------------------- parsing and errors


def _parse(model: type[OpenRouterModel], body: bytes, headers: httpx.Headers) -> Any:
    try:
        payload = json.loads(body)
    except ValueError:
        raise ResponseValidationError(f"Could not parse the {model.__name__} answer: not JSON", body=body) from None
    if isinstance(payload, dict) and "error" in payload and "id" not in payload:
        raise make_stream_error(payload, headers=headers, body=body)
    try:
        inner = payload.get("data") if isinstance(payload, dict) else None
        return model.model_validate(inner if isinstance(inner, dict) else payload)
    except (ValidationError, AttributeError):
        raise ResponseValidationError(f"Could not parse the {model.__name__} answer", body=body) from None


def _retyped(err: OpenRouterError) -> OpenRouterError:
    """409 and 402 get the batch-specific classes; everything else is raised as the client typed it."""
    cls = {409: ConflictResponseError, 402: BatchPaymentRequiredResponseError}.get(err.status_code or 0)
    if cls is None or isinstance(err, cls):
        return err
    return cls(err.message, status_code=err.status_code, body=err.body, headers=err.headers, code=err.code)


def submit_body(
    model: str,
    requests: Sequence[Mapping[str, Any]],
    *,
    provider: Mapping[str, Any] | None = None,
    metadata: Mapping[str, str] | None = None,
    callback_url: str | None = None,
) -> dict[str, Any]:
    """The ``POST /batches`` body; ``requests`` are ``{"custom_id", "body"}`` items."""
    body: dict[str, Any] = {"endpoint": ENDPOINT, "model": model, "completion_window": "24h"}
    body["requests"] = [{"custom_id": str(r["custom_id"]), "body": dict(r["body"])} for r in requests]
    for key, value in (("provider", provider), ("metadata", metadata), ("callback_url", callback_url)):
        if value is not None:
            body[key] = dict(value) if isinstance(value, Mapping) else value
    return body


def next_poll(interval: float, maximum: float) -> float:
    """The next polling interval: half again as long, capped."""
    return min(maximum, interval * 1.5)


# ---------------------------------------------------------------- the API


class Batches:
    """``client.batches``: sync and ``*_async`` calls to ``/batches``."""

    def __init__(self, sdk: OpenRouter) -> None:
        self._sdk = sdk

    def __repr__(self) -> str:
        return f"Batches({self._sdk!r})"

    def _submit_retries(self) -> Any:
        return replace(self._sdk.retry_config, status_codes=frozenset({429}))

    def _call(self, method: str, path: str, **kw: Any) -> tuple[bytes, httpx.Headers]:
        try:
            return self._sdk._call(method, path, **kw)
        except OpenRouterError as err:
            raise _retyped(err) from err.__cause__

    async def _call_async(self, method: str, path: str, **kw: Any) -> tuple[bytes, httpx.Headers]:
        try:
            return await self._sdk._call_async(method, path, **kw)
        except OpenRouterError as err:
            raise _retyped(err) from err.__cause__

    def create(self, model: str, requests: Sequence[Mapping[str, Any]], **options: Any) -> Batch:
        """Submit one batch (``options``: provider, metadata, callback_url); answers in ``validating``."""
        body = submit_body(model, requests, **options)
        return _parse(Batch, *self._call("POST", "/batches", body=body, retries=self._submit_retries()))

    async def create_async(self, model: str, requests: Sequence[Mapping[str, Any]], **options: Any) -> Batch:
        body = submit_body(model, requests, **options)
        return _parse(Batch, *await self._call_async("POST", "/batches", body=body, retries=self._submit_retries()))

    def get(self, batch_id: str) -> Batch:
        return _parse(Batch, *self._call("GET", f"/batches/{batch_id}"))

    async def get_async(self, batch_id: str) -> Batch:
        return _parse(Batch, *await self._call_async("GET", f"/batches/{batch_id}"))

    def list(self, *, after: str | None = None, limit: int | None = None) -> BatchList:
        """A page of batches, newest first, without results; pass ``after=page.last_id`` for the next."""
        return _parse(BatchList, *self._call("GET", "/batches", params=_page(after, limit)))

    async def list_async(self, *, after: str | None = None, limit: int | None = None) -> BatchList:
        return _parse(BatchList, *await self._call_async("GET", "/batches", params=_page(after, limit)))

    def delete(self, batch_id: str) -> BatchDeleted:
        """Delete a finished batch (a running one: ``ConflictResponseError``)."""
        return _parse(BatchDeleted, *self._call("DELETE", f"/batches/{batch_id}"))

    async def delete_async(self, batch_id: str) -> BatchDeleted:
        return _parse(BatchDeleted, *await self._call_async("DELETE", f"/batches/{batch_id}"))

    def cancel(self, batch_id: str) -> Batch:
        """Cancel a batch that has not finished (a finished one: ``ConflictResponseError``)."""
        return _parse(Batch, *self._call("POST", f"/batches/{batch_id}/cancel"))

    async def cancel_async(self, batch_id: str) -> Batch:
        return _parse(Batch, *await self._call_async("POST", f"/batches/{batch_id}/cancel"))

    def wait(
        self,
        batch_id: str,
        *,
        timeout: float = 3600.0,
        interval: float = 0.5,
        max_interval: float = 30.0,
        on_update: Callable[[Batch], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Batch:
        """Poll until the batch finishes, backing off from ``interval`` to ``max_interval``; bounded by
        ``timeout`` (then ``BatchTimeoutError``, the batch left running). ``on_update`` sees every poll."""
        poll = _Poll(batch_id, timeout, interval, max_interval, on_update)
        while (pause := poll.seen(batch := self.get(batch_id))) is not None:
            sleep(pause)
        return batch

    async def wait_async(
        self,
        batch_id: str,
        *,
        timeout: float = 3600.0,
        interval: float = 0.5,
        max_interval: float = 30.0,
        on_update: Callable[[Batch], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> Batch:
        """Async twin of :meth:`wait`."""
        import asyncio

        poll, pause_for = _Poll(batch_id, timeout, interval, max_interval, on_update), sleep or asyncio.sleep
        while (pause := poll.seen(batch := await self.get_async(batch_id))) is not None:
            await pause_for(pause)
        return batch


class _Poll:
    """The waiting policy of ``wait``/``wait_async``: what each poll's batch means for the next one."""

    def __init__(self, batch_id: str, timeout: float, interval: float, max_interval: float,
                 on_update: Callable[[Batch], None] | None) -> None:
        self.batch_id, self.timeout, self.interval, self.max_interval = batch_id, timeout, interval, max_interval
        self.on_update = on_update
        self.deadline = time.monotonic() + timeout

    def seen(self, batch: Batch) -> float | None:
        """None once the batch is finished, else the seconds to wait; past the deadline, BatchTimeoutError."""
        if self.on_update is not None:
            self.on_update(batch)
        if batch.finished:
            return None
        if time.monotonic() + self.interval > self.deadline:
            raise BatchTimeoutError(f"Batch {self.batch_id} is still {batch.status} after {self.timeout:g} s")
        pause, self.interval = self.interval, next_poll(self.interval, self.max_interval)
        return pause


def _page(after: str | None, limit: int | None) -> dict[str, str] | None:
    params = {k: str(v) for k, v in (("after", after), ("limit", limit)) if v is not None}
    return params or None
