"""Fixtures for browser tests that run the same checks in JupyterLab 4 and Notebook 7.

A test module loads them with ``pytest_plugins = ["_fronts"]``: ``front`` is
one server per front end per module (pytest groups the tests by front end, so each server starts once), its
kernels pointed at the sandbox; ``page`` is a fresh browser page that fails the test on any JavaScript error
the front end does not raise by itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _kernel import FAKE_KEY
from _lab import FRONT_ENDS, LabServer, browser, unexpected_page_errors

from or_magic.sandbox import Sandbox

if TYPE_CHECKING:  # pragma: no cover
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parent.parent
VIEWPORT = {"width": 1200, "height": 1800}


@dataclass
class FrontEnd:
    """A running front end: ``app`` is "lab" or "notebook"."""

    app: str
    server: LabServer
    browser: Browser

    @property
    def is_lab(self) -> bool:
        return self.app == "lab"


def sandbox_env(sandbox: Sandbox) -> dict[str, str]:
    """What the server passes to its kernels: the sandbox, a fake key, and this checkout on the path."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {"OPENROUTER_BASE_URL": sandbox.url, "OPENROUTER_API_KEY": FAKE_KEY, "PYTHONPATH": path}


@pytest.fixture(scope="module", params=FRONT_ENDS)
def front(request: pytest.FixtureRequest, sandbox: Sandbox) -> Iterator[FrontEnd]:
    with LabServer(sandbox_env(sandbox), app=request.param) as server, browser(server.base) as b:
        yield FrontEnd(request.param, server, b)


@pytest.fixture
def page(front: FrontEnd) -> Iterator[Page]:
    context = front.browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    unexpected = unexpected_page_errors(front.app, errors)
    assert not unexpected, f"JavaScript errors on the {front.app} page: {unexpected}"
