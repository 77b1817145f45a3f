"""Shared fixtures: the sandbox server and a real kernel pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _kernel import FAKE_KEY, Kernel, kernel

from or_magic.sandbox import Sandbox, start


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with start() as sb:
        yield sb


@pytest.fixture(scope="module")
def kernel_env(sandbox: Sandbox) -> dict[str, str]:
    return {"OPENROUTER_BASE_URL": sandbox.url, "OPENROUTER_API_KEY": FAKE_KEY}


@pytest.fixture(scope="module")
def chat_kernel(kernel_env: dict[str, str]) -> Iterator[Kernel]:
    """One kernel per test module, with the extension loaded against the sandbox."""
    with kernel(kernel_env) as k:
        r = k.run("%load_ext or_magic\n%config ChatMagics.model = 'sandbox/echo'")
        assert r.status == "ok", r.text()
        yield k


@pytest.fixture
def kern(chat_kernel: Kernel) -> Kernel:
    """The module's kernel with every thread forgotten, default config restored."""
    r = chat_kernel.run(
        "_m = get_ipython().magics_manager.registry['ChatMagics']\n"
        "_m.session.store.threads.clear(); _m.session.store._busy.clear(); _m.session.last_error = None\n"
        "_m.model = 'sandbox/echo'; _m.raise_on_error = False; _m.update_rate = 10.0\n")
    assert r.status == "ok", r.text()
    return chat_kernel
