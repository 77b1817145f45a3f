"""The ``/key`` answer: a sandbox key with a $10 limit whose usage is what the sandbox has charged so far."""

from __future__ import annotations

from typing import Any

from .._sandbox_models import USER_ID

#: The sandbox key's credit limit, in USD.
KEY_LIMIT = 10.0


def key_info(spent: float) -> dict[str, Any]:
    """The ``data`` of ``GET /key`` in the real shape: limit, remaining, usage by period, BYOK and flags."""
    spent = round(spent, 9)
    return {
        "label": "sk-or-v1-san...box",
        "limit": KEY_LIMIT,
        "limit_remaining": round(KEY_LIMIT - spent, 9),
        "limit_reset": None,
        "include_byok_in_limit": False,
        **{f"usage{period}": spent for period in ("", "_daily", "_weekly", "_monthly")},
        **{f"byok_usage{period}": 0 for period in ("", "_daily", "_weekly", "_monthly")},
        "is_free_tier": False,
        "is_management_key": False,
        "expires_at": None,
        "creator_user_id": USER_ID,
        "rate_limit": {
            "requests": -1,
            "interval": "10s",
            "note": "This field is deprecated and safe to ignore.",
        },
    }
