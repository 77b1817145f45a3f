"""An OpenRouter-compatible HTTP server on 127.0.0.1 with scripted fake models, for tests, demos and Binder.

In-process::

    from or_magic.sandbox import start
    with start() as sb:                    # sb.url == "http://127.0.0.1:PORT/api/v1"
        ...                                # point OPENROUTER_BASE_URL (or server_url=) at sb.url

or as a process: ``python -m or_magic.sandbox [--port N]`` prints the API root on its first line and serves
until SIGINT/SIGTERM.

It speaks OpenRouter's real wire format (keep-alive comments, role on every chunk, the usage chunk that still
carries a choice, ``[DONE]``, realistic error bodies) using only the standard library, and it imports nothing
from the client: an honest fake that cannot share the client's mistakes. Models are listed in ``MODELS``
(the newer ones are described in :mod:`or_magic.sandbox.more_models`). Besides chat and ``/models``/``/key``
it serves ``/generation?id=`` (:mod:`.generations`), the Batch API ``/batches`` (:mod:`.batch_store`) and
prompt caching (:mod:`.caching`). Test hooks on :class:`Sandbox`: ``requests``, ``prompt_counts()``,
``batch_submissions``, ``batch_delay``, ``generation_lag``, ``reset()``.
"""

from .._sandbox_models import MODELS
from .control import Sandbox, main, start

__all__ = ["MODELS", "Sandbox", "start", "main"]
