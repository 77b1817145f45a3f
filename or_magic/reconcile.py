"""Exact cost after the fact: a stream that was interrupted or failed never reported its cost, but its
generation can be looked up (``GET /generation?id=``) once the server has it.

The look-up runs in a daemon thread, so the cell is never delayed: a few tries with a doubling delay
(a 404 right after a stream is normal), then it gives up quietly. The real ``total_cost`` is added to the
session's spend and, when the turn was kept, to the turn; every reconciled figure is remembered for
``%chat usage``. Failures are noted by error type only, so nothing of the request or key is kept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import defaults as D
from .errors import OpenRouterError


@dataclass
class Reconciled:
    """One generation looked up after its stream ended without a cost."""

    generation_id: str
    model: str
    cost: float | None = None  # what /generation says was billed; None while pending or when it gave up
    state: str = "pending"  # pending, reconciled, unavailable
    kept: bool = False  # the turn was kept (interrupted), so its usage shows the cost too


def look_up_later(host: Any, generation_id: str, model: str, turn: Any = None, *,
                  tries: int = D.GENERATION_TRIES, delay: float = D.GENERATION_DELAY,
                  sleep: Callable[[float], None] = time.sleep) -> Reconciled:
    """Start the look-up in the background and return its (pending) record, already listed on the host."""
    record = Reconciled(generation_id, model, kept=turn is not None)
    host.reconciled.append(record)
    client = host.client()

    def work() -> None:
        cost = _total_cost(client, generation_id, tries, delay, sleep)
        if cost is None:
            record.state = "unavailable"
            return
        record.cost, record.state = cost, "reconciled"
        host.spent += cost
        if turn is not None:
            turn.usage["cost"] = cost
            turn.usage["cost_reconciled"] = True

    threading.Thread(target=work, name="or_magic-generation", daemon=True).start()
    return record


def _total_cost(client: Any, generation_id: str, tries: int, delay: float,
                sleep: Callable[[float], None]) -> float | None:
    for _ in range(tries):
        sleep(delay)
        try:
            info = client.generation(generation_id)
        except OpenRouterError as err:
            if err.status_code not in (404, 408, 429, 500, 502, 503):
                return None
        except Exception:  # a closed client or a transport failure: nothing to learn
            return None
        else:
            if isinstance(info.total_cost, (int, float)):
                return float(info.total_cost)
        delay *= 2
    return None


def has_cost(acc: Any) -> bool:
    usage = getattr(acc, "usage", None)
    return isinstance(getattr(usage, "cost", None), (int, float))


def reconciled_lines(records: list[Reconciled]) -> list[str]:
    """What ``%chat usage`` says of the looked-up costs: one line per generation."""
    lines = []
    for r in records:
        where = "turn and spend" if r.kept else "spend"
        if r.state == "reconciled" and r.cost is not None:
            lines.append(f"reconciled {r.generation_id} ({r.model}): ${r.cost:.6f} from /generation, "
                         f"added to the {where}")
        elif r.state == "pending":
            lines.append(f"pending {r.generation_id} ({r.model}): looking up its cost on /generation")
        else:
            lines.append(f"unreconciled {r.generation_id} ({r.model}): /generation did not report its cost")
    return lines


def credit_line(client: Any) -> str | None:
    """The key's credit from ``GET /key`` (limit, remaining, usage), or None when the server does not say."""
    try:
        info = client.key()
    except Exception:  # no key, offline, or a server without /key: the table above is still right
        return None
    if info.usage is None and info.limit is None:
        return None
    limit = "no limit" if info.limit is None else f"limit ${info.limit:.4f}"
    left = f", ${info.limit_remaining:.6f} remaining" if info.limit_remaining is not None else ""
    used = f", ${info.usage:.6f} used" if info.usage is not None else ""
    return f"key credit: {limit}{left}{used} (GET /key)"
