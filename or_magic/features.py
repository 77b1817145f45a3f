"""OpenRouter-side request features decided from the model: the prompt-caching marker, image output and
the web-search server tool. Pure functions of the request fields (and the model's ``/models`` entry), so
the cell, the panel and a compare build the same body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .types import ModelInfo

WEB_SEARCH_TOOL = "openrouter:web_search"
PROMPT_CACHE_MODES = ("auto", "on", "off")
CACHE_MARKER = {"type": "ephemeral"}
# models whose provider caches only when asked (OpenRouter's prompt-caching guide); others cache implicitly
_EXPLICIT_PREFIXES = ("anthropic/",)
_EXPLICIT_MODELS = frozenset({"sandbox/anthropic"})


def web_tool(max_results: int | None = None) -> dict[str, Any]:
    """The web-search server tool, run by OpenRouter (citations come back as ``url_citation`` annotations)."""
    tool: dict[str, Any] = {"type": WEB_SEARCH_TOOL}
    if max_results is not None:
        tool["parameters"] = {"max_results": max_results}
    return tool


def is_server_tool(tool: Any) -> bool:
    return isinstance(tool, dict) and str(tool.get("type", "")).startswith("openrouter:")


def needs_cache_marker(model: str) -> bool:
    """Whether caching on this model happens only with an explicit ``cache_control``."""
    return model in _EXPLICIT_MODELS or model.startswith(_EXPLICIT_PREFIXES)


def apply_prompt_cache(params: dict[str, Any], mode: str, enabled: bool = True) -> None:
    """Top-level ``cache_control`` by the mode: ``auto`` where the model needs it, ``on`` always, ``off``
    never; a ``cache_control`` the user set with ``--param`` is left alone."""
    if not enabled or mode == "off" or "cache_control" in params:
        return
    if mode == "on" or needs_cache_marker(str(params.get("model", ""))):
        params["cache_control"] = dict(CACHE_MARKER)


def apply_output_modalities(params: dict[str, Any], info: ModelInfo | None) -> bool:
    """Ask an image-making model for images too (unless ``modalities`` was set); True when added."""
    if info is None or "modalities" in params:
        return False
    outputs = {str(m).lower() for m in info.output_modalities or []}
    if "image" not in outputs:
        return False
    params["modalities"] = ["image", "text"]
    return True


def cache_saving(usage: dict[str, Any], info: ModelInfo | None) -> float | None:
    """USD the prompt cache saved on one answer (negative: writing it cost more than it saved yet).

    Chat responses carry the token counts (``cached_tokens``, ``cache_write_tokens``) but not the money;
    ``/models`` carries the prices: cached tokens at the prompt price less the cache-read price, less the
    premium on tokens written. None when the answer used no cache or the prices are unknown.
    """
    cached, written = int(usage.get("cached_tokens") or 0), int(usage.get("cache_write_tokens") or 0)
    prompt = info.price("prompt") if info is not None else None
    if not (cached or written) or info is None or prompt is None:
        return None
    read, write = info.price("input_cache_read"), info.price("input_cache_write")
    saved = cached * (prompt - (prompt if read is None else read))
    saved -= written * ((prompt if write is None else write) - prompt)
    return round(saved, 12)
