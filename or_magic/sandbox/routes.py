"""The sandbox's non-chat routes: ``/generation`` and ``/batches`` (mixed into the request handler)."""

from __future__ import annotations

import re
from typing import Any

from .batch_store import validate

API = "/api/v1"
# (method, path pattern, handler method): paths with an id in them
PATTERNS = [
    ("GET", re.compile(rf"{API}/batches/([\w-]+)"), "_batch_get"),
    ("DELETE", re.compile(rf"{API}/batches/([\w-]+)"), "_batch_delete"),
    ("POST", re.compile(rf"{API}/batches/([\w-]+)/cancel"), "_batch_cancel"),
]
ROUTES = {
    ("GET", f"{API}/generation"): "_generation",
    ("POST", f"{API}/batches"): "_batch_create",
    ("GET", f"{API}/batches"): "_batch_list",
}


def match(method: str, path: str) -> tuple[str, str] | None:
    """(handler method, id) for a path with an id, or None."""
    for verb, pattern, name in PATTERNS:
        found = pattern.fullmatch(path)
        if found and verb == method:
            return name, found.group(1)
    return None


class ExtraRoutes:
    """Route methods; the handler supplies ``server``, ``headers``, ``_json``, ``_error`` and ``_answer``."""

    server: Any
    headers: Any

    def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None: ...
    def _error(self, status: int, message: str) -> None: ...
    def _answer(self, body: Any) -> Any: ...
    def _authorized(self) -> bool: ...

    def _generation(self, query: dict[str, str], body: Any, ok: bool) -> None:
        if not self._authorized():
            return self._error(401, "No auth credentials found")
        gen_id = query.get("id")
        if not gen_id:
            return self._error(400, "id is required")
        record = self.server.generations.get(gen_id)
        if record is None:
            return self._error(404, f"Generation {gen_id} not found")
        self._json(200, {"data": record})

    def _batch_create(self, query: dict[str, str], body: Any, ok: bool) -> None:
        if not self._authorized():
            return self._error(401, "No auth credentials found")
        problem = validate(body if ok else None)
        if problem is not None:
            return self._error(400, problem)
        created = self.server.batches.create(body, self._answer_row)
        self.server.charge(self._batch_cost(created["id"]))
        self._json(202, created)

    def _answer_row(self, body: dict[str, Any]) -> Any:
        result = self._answer(body)
        if hasattr(result, "gen_id"):
            self.server.generations.start(result, streamed=False, origin="batch")
            self.server.generations.end(result.gen_id, cancelled=False)
        return result

    def _batch_cost(self, batch_id: str) -> float:
        batch = self.server.batches.get(batch_id)
        return batch.usage["cost"] if batch is not None else 0.0

    def _batch_list(self, query: dict[str, str], body: Any, ok: bool) -> None:
        if not self._authorized():
            return self._error(401, "No auth credentials found")
        limit = int(query["limit"]) if query.get("limit", "").isdigit() else 20
        self._json(200, self.server.batches.page(query.get("after"), max(1, min(100, limit))))

    def _known_batch(self, batch_id: str) -> Any:
        """The batch, or None once the refusal is sent (401 without a key, 404 for an unknown id)."""
        if not self._authorized():
            return self._error(401, "No auth credentials found")
        batch = self.server.batches.get(batch_id)
        if batch is None:
            return self._error(404, f"Batch {batch_id} not found")
        return batch

    def _batch_get(self, batch_id: str) -> None:
        batch = self._known_batch(batch_id)
        if batch is not None:
            self._json(200, batch.view())

    def _batch_cancel(self, batch_id: str) -> None:
        if self._known_batch(batch_id) is None:
            return None
        view = self.server.batches.cancel(batch_id)
        if view is None:
            return self._error(409, "Batch has already finished")
        self._json(200, view)

    def _batch_delete(self, batch_id: str) -> None:
        batch = self._known_batch(batch_id)
        if batch is None:
            return None
        if batch.status() not in ("completed", "failed", "expired", "cancelled"):
            return self._error(409, "Batch is still running: only a finished batch can be deleted")
        self.server.batches.delete(batch_id)
        self._json(200, {"id": batch_id, "object": "batch", "deleted": True})
