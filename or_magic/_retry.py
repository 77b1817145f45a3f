"""When to retry: the policy (:class:`RetryConfig`) and the decision for one failed attempt."""

from __future__ import annotations

from dataclasses import dataclass, replace

import httpx

from . import defaults
from .errors import OpenRouterError

# Transport failures that prove the server never had the whole request, so a retry cannot bill twice. Any
# failure while reading (a read timeout, a reset, a dropped connection) is not among them: by then the server
# may be generating, and billing, the answer. (httpcore discards pooled connections the server has closed
# before reusing them, so a stale keep-alive connection rarely shows up as a read error.)
RETRYABLE_TRANSPORT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
)


@dataclass(frozen=True)
class RetryConfig:
    """When and how long to retry. Only failures before a response body is read are retried.

    ``max_wait`` is the total time (seconds) the retries may sleep: a server asking for a longer wait
    (``Retry-After``) gets its typed error raised at once, with ``retry_after`` set, instead of a cell
    that blocks silently. ``jitter`` is the fraction by which a computed backoff is randomly shortened.
    """

    max_retries: int = defaults.MAX_RETRIES
    max_wait: float = 15.0
    initial_interval: float = 0.5
    max_interval: float = 8.0
    jitter: float = 0.25
    retry_connection_errors: bool = True
    status_codes: frozenset[int] = frozenset({408, 429, 500, 502, 503, 524, 529})

    def __post_init__(self) -> None:
        object.__setattr__(self, "status_codes", frozenset(self.status_codes))

    @classmethod
    def none(cls) -> RetryConfig:
        """No retries at all."""
        return cls(max_retries=0, retry_connection_errors=False)

    def backoff(self, attempt: int, rand: float) -> float:
        """Exponential backoff for retry number ``attempt`` (0-based), shortened by up to ``jitter``."""
        base = min(self.initial_interval * (2**attempt), self.max_interval)
        return base * (1.0 - self.jitter * rand)


def retry_config_from(value: RetryConfig | int | None, default: RetryConfig) -> RetryConfig:
    """A per-call ``retries`` argument as a policy: None keeps ``default``, an int sets its retry count."""
    if value is None:
        return default
    if isinstance(value, RetryConfig):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return replace(default, max_retries=value)
    raise TypeError(f"retries must be a RetryConfig, an int or None, not {type(value).__name__}")


def retry_delay(cfg: RetryConfig, attempt: int, waited: float, err: OpenRouterError, rand: float) -> float | None:
    """Seconds to sleep before the next attempt, or None to give up and raise ``err``."""
    if attempt >= cfg.max_retries:
        return None
    remaining = cfg.max_wait - waited
    if err.retry_after is not None:
        return err.retry_after if err.retry_after <= remaining else None
    if remaining <= 0:
        return None
    return min(cfg.backoff(attempt, rand), remaining)


def status_retryable(err: OpenRouterError, cfg: RetryConfig) -> bool:
    """A listed status, unless the server said this failure will not go away (``retryable: false``)."""
    if err.status_code not in cfg.status_codes:
        return False
    return not (err.availability and err.availability.get("retryable") is False)
