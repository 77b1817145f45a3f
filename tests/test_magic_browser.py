"""%%chat in JupyterLab (headless Debian chromium): rendered markdown, math, highlighting, re-run, error card."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _kernel import FAKE_KEY
from _lab import LabServer, browser, cells, open_notebook, run_all, screenshot_path, write_notebook
from playwright.sync_api import expect

from or_magic.sandbox import Sandbox

pytestmark = pytest.mark.browser


def test_chat_cells_render_and_rerun_replaces_turn(sandbox: Sandbox, tmp_path: Path) -> None:
    env = {"OPENROUTER_BASE_URL": sandbox.url, "OPENROUTER_API_KEY": FAKE_KEY}
    with LabServer(env) as server, browser(tmp_path) as b:
        write_notebook(server.root / "chat.ipynb", [
            "%load_ext or_magic\n%config ChatMagics.model = 'sandbox/echo'",
            "%%chat -m sandbox/markdown\nShow me what you can render.",
            "%%chat\nA follow-up question",
            "%%chat -m sandbox/error-402\nThis one fails",
            "%chat history",
        ])
        page = b.new_page(viewport={"width": 1200, "height": 1800})
        open_notebook(page, server, "chat.ipynb")
        run_all(page, timeout=90)
        all_cells = cells(page)
        md = all_cells.nth(1).locator(".jp-Cell-outputArea")
        # JupyterLab shows our text/html: a table, highlighted code (Pygments classes), typeset math
        expect(md.locator("table")).to_have_count(1, timeout=20_000)
        expect(md.locator(".highlight .k").first).to_be_visible()
        expect(md.locator("mjx-container").first).to_be_visible(timeout=20_000)
        assert "$$" not in md.inner_text()
        expect(md).to_contain_text("Sandbox")  # the footer names the provider that answered
        # the error card: class, status, hint; no traceback
        card = all_cells.nth(3).locator(".jp-Cell-outputArea")
        expect(card).to_contain_text("PaymentRequiredResponseError")
        expect(card).to_contain_text("402")
        assert "Traceback" not in card.inner_text()
        page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)
        all_cells.nth(1).screenshot(path=str(screenshot_path("chat.png", tmp_path)))
        # re-running the follow-up cell in Lab (which sends its cell id) replaces its turn
        sandbox.clear_requests()
        all_cells.nth(2).locator(".jp-InputPrompt").click()
        page.keyboard.press("Control+Enter")
        expect(all_cells.nth(2).locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"), timeout=20_000)
        page.wait_for_timeout(500)
        all_cells.nth(4).locator(".jp-InputPrompt").click()
        page.keyboard.press("Control+Enter")
        history = all_cells.nth(4).locator(".jp-Cell-outputArea")
        expect(history).to_contain_text("A follow-up question", timeout=20_000)
        assert history.inner_text().count("A follow-up question") == 2  # once asked, once echoed: one turn
        sent = [r for r in sandbox.requests if r["path"].endswith("/chat/completions")]
        assert [m["role"] for m in sent[0]["body"]["messages"]] == ["user", "assistant", "user"]
        assert FAKE_KEY not in page.content()
