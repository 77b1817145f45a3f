"""or_magic: chat with OpenRouter models from Jupyter.

``%load_ext or_magic`` registers ``%%chat`` and ``%chat``. Heavy modules (httpx, pydantic, the
renderer) load on first use, so loading the extension stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__ as __version__

__all__ = ["OpenRouter", "ChatPanel", "errors", "map_prompt", "load_ipython_extension", "unload_ipython_extension"]

if TYPE_CHECKING:  # pragma: no cover
    from IPython.core.interactiveshell import InteractiveShell

    from . import errors
    from .client import OpenRouter
    from .map_api import map_prompt
    from .panel import ChatPanel


def __getattr__(name: str) -> Any:
    """Import public names lazily (PEP 562) so ``import or_magic`` costs almost nothing."""
    if name == "OpenRouter":
        from .client import OpenRouter

        return OpenRouter
    if name == "errors":
        import importlib

        return importlib.import_module(f"{__name__}.errors")  # `from . import errors` would recurse here
    if name == "map_prompt":
        from .map_api import map_prompt

        return map_prompt
    if name == "ChatPanel":
        from .panel import ChatPanel

        return ChatPanel
    raise AttributeError(f"module 'or_magic' has no attribute {name!r}")


def load_ipython_extension(ip: InteractiveShell) -> None:
    """Register ``%%chat`` / ``%chat`` on the shell (``%load_ext or_magic``)."""
    from .magics import load

    load(ip)


def unload_ipython_extension(ip: InteractiveShell) -> None:
    """Remove what :func:`load_ipython_extension` registered (``%unload_ext or_magic``)."""
    from .magics import unload

    unload(ip)
