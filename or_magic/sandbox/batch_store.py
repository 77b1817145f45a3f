"""The sandbox's Batch API: submitted batches, answered at once but revealed over a completion delay.

Every row is answered when the batch is submitted (as a non-streaming chat request through the same
:func:`answer.answer`), then ``GET /batches/{id}`` reveals them in order over the batch's delay: status
``validating`` for the first tenth, ``in_progress`` (``request_counts`` and ``results`` growing) until the
delay has passed, then ``completed``. The delay is ``Sandbox.batch_delay`` (default 1 s), or per batch
``metadata: {"sandbox_delay": "<seconds>"}``. A row fails (``error`` set, ``response`` null) when its
model fails before answering, e.g. ``"model": "sandbox/error-500"`` in its body, or its body is not a chat
request. ``POST /batches/{id}/cancel`` cancels a batch that has not finished; ``DELETE`` needs a finished one
(else 409).
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from .._sandbox_models import Cut, HttpError, Stall
from .answer import Answer

ENDPOINT = "/v1/chat/completions"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_ALPHANUMERIC = "abcdefghijklmnopqrstuvwxyz0123456789"


def _row_error(error: HttpError) -> dict[str, Any]:
    try:
        payload = json.loads(error.body)
        inner = payload.get("error") or {}
        message = str(inner.get("message") or "error")
        error_type = (inner.get("metadata") or {}).get("error_type")
    except (ValueError, AttributeError):
        message, error_type = f"HTTP {error.status}", None
    row = {"message": message, "param": None, "type": "api_error" if error.status >= 500 else "invalid_request"}
    if error_type:
        row["error_type"] = error_type
    return row


def validate(body: Any) -> str | None:
    """Why a submit body is refused (400), or None."""
    if not isinstance(body, dict):
        return "Invalid JSON in request body"
    if body.get("endpoint") != ENDPOINT:
        return f"endpoint must be {ENDPOINT!r} in the sandbox"
    if not isinstance(body.get("model"), str):
        return "model is required"
    if body.get("completion_window", "24h") != "24h":
        return "completion_window must be '24h'"
    rows = body.get("requests")
    if not isinstance(rows, list) or not rows:
        return "requests must be a non-empty list"
    ids = [r.get("custom_id") if isinstance(r, dict) else None for r in rows]
    if not all(isinstance(i, str) and i for i in ids) or len(set(ids)) != len(ids):
        return "every request needs a unique, non-empty custom_id"
    if not all(isinstance(r.get("body"), dict) for r in rows):
        return "every request needs a body object"
    return None


class _Batch:
    def __init__(self, body: dict[str, Any], results: list[dict[str, Any]], usage: dict[str, Any], delay: float):
        now = time.time()
        self.id = "batch_" + "".join(random.choices(_ALPHANUMERIC, k=24))
        self.body, self.results, self.usage, self.delay = body, results, usage, delay
        self.started, self.created = time.monotonic(), int(now)
        self.cancelled_after: int | None = None

    def revealed(self) -> int:
        if self.cancelled_after is not None:
            return self.cancelled_after
        if self.delay <= 0:
            return len(self.results)
        share = (time.monotonic() - self.started) / self.delay
        return len(self.results) if share >= 1 else math.floor(len(self.results) * max(0.0, share - 0.1) / 0.9)

    def status(self) -> str:
        if self.cancelled_after is not None:
            return "cancelled"
        if self.delay > 0 and time.monotonic() - self.started < self.delay / 10:
            return "validating"
        return "completed" if self.revealed() == len(self.results) else "in_progress"

    def view(self, *, with_results: bool = True) -> dict[str, Any]:
        shown = self.results[: self.revealed()]
        status = self.status()
        failed = sum(1 for r in shown if r["error"] is not None)
        done = status in TERMINAL
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": ENDPOINT,
            "model": self.body["model"],
            "status": status,
            "request_counts": {"completed": len(shown) - failed, "failed": failed, "total": len(self.results)},
            **({"results": shown or None} if with_results else {}),
            "usage": self.usage if status == "completed" else None,
            "created_at": self.created,
            "finalized_at": int(time.time()) if done else None,
            "expires_at": self.created + 86400,
            "completion_window": "24h",
            "provider": self.body.get("provider"),
            "metadata": self.body.get("metadata"),
            "error": None,
        }


class BatchStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: dict[str, _Batch] = {}
        self.delay = 1.0
        self.submissions = 0

    def reset(self) -> None:
        with self._lock:
            self._batches.clear()
            self.submissions = 0

    def create(self, body: dict[str, Any], run: Callable[[dict[str, Any]], Answer | HttpError]) -> dict[str, Any]:
        """Answer every row now (``run``: one chat body to an answer or an error); returns the new batch."""
        results, totals = [], {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "cost": 0.0}
        for row in body["requests"]:
            result = run({"model": body["model"], **row["body"], "stream": False})
            if isinstance(result, Answer) and any(isinstance(s, (Cut, Stall)) for s in result.plan.steps):
                result = HttpError(502, b'{"error":{"message":"Upstream connection lost"}}')
            if isinstance(result, HttpError):
                error = _row_error(result)
                results.append({"custom_id": row["custom_id"], "id": None, "error": error, "response": None})
                continue
            response = {"status_code": 200, "request_id": result.gen_id, "body": result.body()}
            results.append({"custom_id": row["custom_id"], "id": result.gen_id, "error": None, "response": response})
            for key in totals:
                totals[key] += result.usage[key]
        totals["cost"] = round(totals["cost"], 12)
        batch = _Batch(body, results, totals, self._delay_of(body))
        with self._lock:
            self._batches[batch.id] = batch
            self.submissions += 1
        view = batch.view()
        return {**view, "status": "validating" if batch.delay > 0 else view["status"]}

    def _delay_of(self, body: dict[str, Any]) -> float:
        meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        try:
            return max(0.0, float(meta.get("sandbox_delay", self.delay)))
        except (TypeError, ValueError):
            return self.delay

    def get(self, batch_id: str) -> _Batch | None:
        with self._lock:
            return self._batches.get(batch_id)

    def page(self, after: str | None, limit: int) -> dict[str, Any]:
        with self._lock:
            newest = list(reversed(self._batches.values()))
        ids = [b.id for b in newest]
        start = ids.index(after) + 1 if after in ids else 0
        chosen = newest[start : start + limit]
        data = [b.view(with_results=False) for b in chosen]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": start + limit < len(newest),
        }

    def cancel(self, batch_id: str) -> dict[str, Any] | None:
        """Cancel an unfinished batch; None if it had already finished."""
        batch = self.get(batch_id)
        if batch is None or batch.status() in TERMINAL:
            return None
        batch.cancelled_after = batch.revealed()
        return batch.view()

    def delete(self, batch_id: str) -> bool:
        with self._lock:
            return self._batches.pop(batch_id, None) is not None
