"""What ``GET /generation?id=`` answers: every generation the sandbox served, with what it billed.

A generation is listed once its answer has ended (completed, cut by the client, or failed mid-stream), and
only ``lag`` seconds after that (``Sandbox.generation_lag``, default 0), so clients can test the 404 that real
servers give right after a stream. An interrupted stream is billed in full: the sandbox plans the whole answer
up front, so it knows what it would have charged.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Any

from .._sandbox_models import PROVIDER


class Generations:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, dict[str, Any]] = {}
        self._visible_at: dict[str, float] = {}
        self.lag = 0.0

    def reset(self) -> None:
        with self._lock:
            self._records.clear()
            self._visible_at.clear()

    def start(self, answer: Any, *, streamed: bool, origin: str = "chat") -> None:
        """Note a generation as it starts (not yet visible)."""
        usage, folded = answer.usage, answer.folded
        details = usage.get("prompt_tokens_details") or {}
        record = {
            "id": answer.gen_id,
            "model": answer.model,
            "provider_name": PROVIDER,
            "created_at": datetime.fromtimestamp(answer.created, timezone.utc).isoformat(),
            "streamed": streamed,
            "cancelled": False,
            "finish_reason": folded.finish,
            "native_finish_reason": folded.native,
            "tokens_prompt": usage["prompt_tokens"],
            "tokens_completion": usage["completion_tokens"],
            "native_tokens_prompt": usage["prompt_tokens"],
            "native_tokens_completion": usage["completion_tokens"],
            "native_tokens_reasoning": usage["completion_tokens_details"]["reasoning_tokens"],
            "native_tokens_cached": details.get("cached_tokens", 0),
            "total_cost": usage["cost"],
            "usage": usage["cost"],
            "cache_discount": answer.cache_discount or None,
            "upstream_inference_cost": None,
            "is_byok": False,
            "num_search_results": answer.plan.searches or None,
            "api_type": "completions",
            "origin": origin,
            "latency": None,
            "generation_time": None,
        }
        with self._lock:
            self._records[answer.gen_id] = {**record, "_started": time.monotonic()}

    def end(self, gen_id: str, *, cancelled: bool) -> None:
        """The answer ended (``cancelled``: the client or the script cut it); visible after the lag."""
        with self._lock:
            record = self._records.get(gen_id)
            if record is None:
                return
            record["cancelled"] = cancelled
            record["generation_time"] = round((time.monotonic() - record["_started"]) * 1000)
            record["latency"] = record["generation_time"]
            self._visible_at[gen_id] = time.monotonic() + self.lag

    def get(self, gen_id: str) -> dict[str, Any] | None:
        with self._lock:
            if self._visible_at.get(gen_id, float("inf")) > time.monotonic():
                return None
            return {k: v for k, v in self._records[gen_id].items() if not k.startswith("_")}
