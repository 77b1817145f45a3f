"""%%chat in JupyterLab 4 and Notebook 7 (headless Debian chromium): rendered markdown, math, highlighting,
re-run, error card. The same checks in both front ends, so "JupyterLab and Notebook 7" is a tested claim."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _kernel import FAKE_KEY
from _lab import cell_output, cells, open_notebook, run_all, run_cell, screenshot_path, write_notebook
from playwright.sync_api import Page, expect

from or_magic.sandbox import Sandbox

if TYPE_CHECKING:  # pragma: no cover
    from _fronts import FrontEnd  # imported by pytest_plugins, so its asserts are rewritten

pytestmark = pytest.mark.browser
pytest_plugins = ["_fronts"]  # the front and page fixtures


def test_chat_cells_render_and_rerun_replaces_turn(front: FrontEnd, page: Page, sandbox: Sandbox,
                                                   tmp_path: Path) -> None:
    write_notebook(front.server.root / "chat.ipynb", [
        "%load_ext or_magic\n%config ChatMagics.model = 'sandbox/echo'",
        "%%chat -m sandbox/markdown\nShow me what you can render.",
        "%%chat\nA follow-up question",
        "%%chat -m sandbox/error-402\nThis one fails",
        "%chat history",
    ])
    open_notebook(page, front.server, "chat.ipynb")
    run_all(page, timeout=90)
    md = cell_output(page, 1)
    # our text/html: a table, highlighted code (Pygments classes), typeset math
    expect(md.locator("table")).to_have_count(1, timeout=20_000)
    expect(md.locator(".highlight .k").first).to_be_visible()
    expect(md.locator("mjx-container").first).to_be_visible(timeout=20_000)
    assert "$$" not in md.inner_text()
    expect(md).to_contain_text("Sandbox")  # the footer names the provider that answered
    # the error card: class, status, hint; no traceback
    card = cell_output(page, 3)
    expect(card).to_contain_text("PaymentRequiredResponseError")
    expect(card).to_contain_text("402")
    assert "Traceback" not in card.inner_text()
    page.screenshot(path=str(tmp_path / f"chat_{front.app}.png"), full_page=True)
    if front.is_lab:
        cells(page).nth(1).screenshot(path=str(screenshot_path("chat.png", tmp_path)))
    # re-running the follow-up cell (both front ends send its cell id) replaces its turn
    sandbox.clear_requests()
    run_cell(page, 2)
    expect(cells(page).nth(2).locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"), timeout=20_000)
    run_cell(page, 4)
    history = cell_output(page, 4)
    expect(history).to_contain_text("A follow-up question", timeout=20_000)
    assert history.inner_text().count("A follow-up question") == 2  # once asked, once echoed: one turn
    sent = [r for r in sandbox.requests if r["path"].endswith("/chat/completions")]
    assert [m["role"] for m in sent[0]["body"]["messages"]] == ["user", "assistant", "user"]
    assert FAKE_KEY not in page.content()
