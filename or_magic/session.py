"""The state one kernel shares between ``%%chat`` cells and the panel: the shared client (one connection
pool), the settings it reads, the spend and its budget, the sandbox. A turn itself runs in :mod:`or_magic.turn`.

The magic and the panel differ only in where the prompt comes from and which sink they pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any, Protocol

from . import defaults
from .cache import ResponseCache
from .client import OpenRouter, RetryConfig
from .conversation import ConversationStore
from .display import Sink
from .errors import BudgetExceededError, OpenRouterError, TurnFailed, TurnInterrupted
from .render import usd
from .turn import TurnRequest, TurnResult, run_async, run_sync
from .turn_finish import METADATA_KEY, error_view

__all__ = ["Session", "Settings", "TurnRequest", "TurnResult", "TurnInterrupted", "TurnFailed",
           "BudgetExceededError", "error_view", "METADATA_KEY"]


SANDBOX_KEY = "sandbox-no-key-needed"  # what requests to the sandbox carry when no key is set


class Settings(Protocol):
    """What the session reads from its settings (``ChatMagics``, usually); a missing name takes its default."""

    max_retries: int
    read_timeout: float
    cache: bool
    cache_dir: str
    budget: float | None


class Session:
    """The state one kernel shares between ``%%chat`` cells and the panel.

    ``settings`` (a :class:`Settings`: the ``ChatMagics`` instance, usually) is read for ``max_retries``,
    ``read_timeout``, ``cache``, ``cache_dir`` and ``budget`` each time they matter, so ``%config`` applies
    at once.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings
        self.store = ConversationStore()
        self.last_error: OpenRouterError | None = None
        self.api_key: str | None = None  # set by `%chat key`; memory only
        self.base_url: str | None = None  # set by `%chat sandbox`
        self.sandbox: Any = None
        self.model_before_sandbox: str | None = None  # the default model `%chat sandbox` replaced
        self.spent = 0.0  # USD reported by the API this session, failed and interrupted turns included
        self.reconciled: list[Any] = []  # reconcile.Reconciled: costs looked up after a stream ended without one
        self.last_compare: Any = None  # compare.CompareRecord of the last --compare, for %chat keep
        self.cache_warned = False  # the "cache cannot be written" warning was shown (once per session)
        self._client: OpenRouter | None = None
        self._client_key: tuple[Any, ...] | None = None
        self._in_use: dict[int, int] = {}  # id(client) -> turns streaming through it
        self._retired: dict[int, OpenRouter] = {}  # replaced clients still serving a turn

    def _setting(self, name: str, default: Any) -> Any:
        value = getattr(self.settings, name, default)
        return default if value is None and default is not None else value

    # -- the shared client -----------------------------------------------------------------------
    def client(self) -> OpenRouter:
        """One client (one connection pool) for every cell and the panel; rebuilt if key/URL change."""
        retries = int(self._setting("max_retries", defaults.MAX_RETRIES))
        read = float(self._setting("read_timeout", defaults.READ_TIMEOUT))
        key = (self.api_key, self.base_url, os.environ.get("OPENROUTER_BASE_URL"), retries, read)
        if self._client is None or key != self._client_key:
            if self._client is not None:
                if self._in_use.get(id(self._client)):  # a turn still streams through it: close it after
                    self._retired[id(self._client)] = self._client
                else:
                    _dispose(self._client)
            self._client = OpenRouter(api_key=self.api_key, server_url=self.base_url,
                                      x_open_router_title="or_magic",
                                      retry_config=RetryConfig(max_retries=retries),
                                      timeout_ms=int(read * 1000))
            self._client_key = key
        return self._client

    def hold_client(self) -> OpenRouter:
        """The shared client, held for one turn (a config change mid-turn must not close its pool)."""
        client = self.client()
        self._in_use[id(client)] = self._in_use.get(id(client), 0) + 1
        return client

    def let_go(self, client: OpenRouter) -> None:
        """A turn is done with ``client``: a replaced client is closed once its last turn lets go."""
        left = self._in_use.get(id(client), 1) - 1
        if left > 0:
            self._in_use[id(client)] = left
            return
        self._in_use.pop(id(client), None)
        retired = self._retired.pop(id(client), None)
        if retired is not None:
            _dispose(retired)

    @property
    def on_sandbox(self) -> bool:
        url = self.base_url or os.environ.get("OPENROUTER_BASE_URL", "")
        return self.sandbox is not None and url == self.sandbox.url

    def start_sandbox(self) -> str:
        """Start the offline sandbox (once) and send every later request to it."""
        from . import sandbox

        if self.sandbox is None:
            self.sandbox = sandbox.start()
        self.base_url = self.sandbox.url
        if not self.api_key and not os.environ.get("OPENROUTER_API_KEY"):
            self.api_key = SANDBOX_KEY
        return self.sandbox.url

    def stop_sandbox(self) -> None:
        """Leave the sandbox: later requests go to the configured server (with the configured key)."""
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
        self.base_url = None
        if self.api_key == SANDBOX_KEY:
            self.api_key = None

    def has_key(self) -> bool:
        return bool(self.api_key or os.environ.get("OPENROUTER_API_KEY"))

    def close(self, *, keep_sandbox: bool = False) -> None:
        """Close every connection pool (retired clients included) and stop the sandbox (unless kept for a
        reload: the next client is built on first use)."""
        for client in [*self._retired.values(), *([self._client] if self._client is not None else [])]:
            _dispose(client)
        self._retired.clear()
        self._in_use.clear()
        self._client = None
        self._client_key = None
        if self.sandbox is not None and not keep_sandbox:
            self.sandbox.stop()
            self.sandbox = None

    # -- cache and budget ------------------------------------------------------------------------
    @property
    def cache(self) -> ResponseCache | None:
        """The response cache when ``ChatMagics.cache`` is on, else None."""
        if not self._setting("cache", False):
            return None
        return ResponseCache(self._setting("cache_dir", None) or None)

    @property
    def budget(self) -> float | None:
        """``ChatMagics.budget`` in USD, or None (no budget)."""
        return self._setting("budget", None)

    def check_budget(self, req: TurnRequest, messages: list[dict[str, Any]]) -> None:
        """Refuse a request whose estimated cost would take the notebook past ``ChatMagics.budget``."""
        budget = self.budget
        if budget is None:
            return
        estimate = self.estimate_cost(req.params, messages)
        if self.spent + estimate > budget:
            raise BudgetExceededError(
                f"budget {usd(budget)} would be exceeded: {usd(self.spent)} spent so far, this request "
                f"could cost up to {usd(estimate)}",
                hint="raise %config ChatMagics.budget, lower --max-tokens, or pick a cheaper model "
                     "(%chat usage shows the spend)")

    def estimate_cost(self, params: dict[str, Any], messages: list[dict[str, Any]]) -> float:
        """Upper-bound cost from /models prices: prompt ≈ characters / 4 tokens, plus max_tokens of output."""
        try:
            models = {m.id: m for m in self.client().models()}
        except OpenRouterError:
            return 0.0
        info = models.get(str(params.get("model")))
        if info is None:  # an unknown model has no price to estimate with
            return 0.0
        prompt_tokens = len(str(messages)) / 4
        out_tokens = params.get("max_tokens") or params.get("max_completion_tokens") or \
            (info.context_length or 4096) // 4
        return prompt_tokens * _price(info, "prompt") + float(out_tokens) * _price(info, "completion")

    # -- turns: the cell (blocking) and the panel (on the event loop) ---------------------------
    def run_turn(self, req: TurnRequest, sink: Sink, interval: float = 0.1) -> TurnResult:
        """Send one turn, stream it into ``sink``, and commit it. Interrupts re-raise as TurnInterrupted."""
        return run_sync(self, req, sink, interval)

    async def run_turn_async(self, req: TurnRequest, sink: Sink, interval: float = 0.1) -> TurnResult:
        """The same turn on the kernel's event loop; cancelling the task interrupts it (Stop)."""
        return await run_async(self, req, sink, interval)


def _dispose(client: OpenRouter) -> None:
    """Close both connection pools: the sync one now, the async one (the panel's) on the running loop."""
    client.close()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        with contextlib.suppress(Exception):
            asyncio.run(client.aclose())
        return
    loop.create_task(client.aclose())


def _price(info: Any, kind: str) -> float:
    """USD per token of ``kind`` from /models (0 when unknown, never negative: -1 means "varies")."""
    return max(info.price(kind) or 0.0, 0.0)
