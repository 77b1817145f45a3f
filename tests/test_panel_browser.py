"""The panel in JupyterLab, in headless Debian Chromium, against the sandbox (TESTING.md recipe 3).

A real user's path: open a notebook, run it, move the temperature slider with the keyboard, type a prompt,
click Send and watch the answer stream in; then Stop a slow answer and see it kept, marked "interrupted".
The sandbox (in this process) records what the kernel sent, so the slider's value is checked on the wire.
Saves a screenshot (docs/panel.png with OR_MAGIC_UPDATE_SCREENSHOTS=1). Fails (never skips) when Chromium is missing.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _kernel import FAKE_KEY
from _lab import LabServer, browser, open_notebook, run_all, screenshot_path, write_notebook

from or_magic.sandbox import Sandbox

if TYPE_CHECKING:  # pragma: no cover
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lab(sandbox: Sandbox) -> Iterator[LabServer]:
    """JupyterLab whose kernels talk to the sandbox (the env is inherited by every kernel it starts)."""
    # the kernels import or_magic from this checkout, installed or not (the server runs in a temp dir)
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {"OPENROUTER_BASE_URL": sandbox.url, "OPENROUTER_API_KEY": FAKE_KEY, "PYTHONPATH": path}
    with LabServer(env=env) as server:
        yield server


@pytest.fixture
def page(lab: LabServer) -> Iterator[Page]:
    with browser(lab.base) as b:
        context = b.new_context(viewport={"width": 1200, "height": 1400})
        page = context.new_page()
        page.set_default_timeout(30_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield page
        finally:
            context.close()
        assert not errors, f"JavaScript errors on the page: {errors}"


def chat_bodies(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [r["body"] for r in sandbox.requests if r["path"].endswith("/chat/completions")]


def test_panel_slider_send_stream_stop(lab: LabServer, page: Page, sandbox: Sandbox, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    write_notebook(lab.root / "panel.ipynb", [
        "%load_ext or_magic\n%config ChatMagics.model = 'sandbox/echo'",
        "%chat panel",
    ])
    open_notebook(page, lab, "panel.ipynb")
    sandbox.clear_requests()
    run_all(page)

    panel = page.locator(".or-magic-panel")
    expect(panel).to_be_visible()
    expect(panel.locator(".or-magic-model-ok")).to_contain_text("context")  # /models loaded into the picker

    # the temperature slider, moved with the keyboard: 1.00 -> 0.85 in steps of 0.05
    slider = panel.locator(".widget-slider").filter(has_text="Temperature")
    handle = slider.locator(".noUi-handle")
    expect(handle).to_have_attribute("aria-valuenow", re.compile(r"^1(\.0+)?$"))
    handle.focus()
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    expect(slider.locator(".widget-readout")).to_have_text("0.85")

    # the max-tokens slider, with the keyboard too: 0 is the model's default, then 3 tokens, then back to 0
    max_tokens = panel.locator(".widget-slider").filter(has_text="Max tokens").locator(".noUi-handle")
    expect(max_tokens).to_have_attribute("aria-valuenow", re.compile(r"^0(\.0+)?$"))
    expect(panel).to_contain_text("model default")
    max_tokens.focus()
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    expect(max_tokens).to_have_attribute("aria-valuenow", re.compile(r"^3(\.0+)?$"))
    expect(panel).not_to_contain_text("model default")
    page.keyboard.press("Home")
    expect(panel).to_contain_text("model default")

    # a prompt, Send, and the answer arriving while Send is disabled (streaming), then the final footer
    prompt = panel.get_by_placeholder("Ask something…")
    words = " ".join(f"word{i}" for i in range(30))
    prompt.fill(f"Hello panel {words} rate=15")
    send = panel.get_by_role("button", name="Send")
    stop = panel.get_by_role("button", name="Stop")
    send.click()
    transcript = panel.locator(".or-magic-transcript")
    streaming = transcript.locator(".or-magic-tail")  # the open tail exists only while an answer streams
    expect(streaming).to_contain_text("word3", timeout=10_000)
    assert send.is_disabled() and stop.is_enabled()
    assert "word29" not in streaming.inner_text()
    expect(send).to_be_enabled(timeout=20_000)
    expect(streaming).to_have_count(0)
    expect(transcript).to_contain_text("word29 rate=15")
    expect(panel.locator(".or-magic-status")).to_contain_text("answered")
    body = chat_bodies(sandbox)[-1]
    assert body["temperature"] == 0.85 and body["model"] == "sandbox/echo" and "max_tokens" not in body
    assert body["messages"][-1]["content"].startswith("Hello panel word0")

    # a long, slow answer, stopped partway: it stays in the transcript, marked interrupted
    model = panel.get_by_placeholder("model id, e.g. openai/gpt-4o-mini")
    model.fill("sandbox/long")
    model.press("Enter")
    expect(panel.locator(".or-magic-model-ok")).to_contain_text("Long answer")
    prompt.fill("A long answer with code and a table, please. chars=20000 rate=40 chunk=10")
    send.click()
    page.wait_for_function("document.querySelectorAll('.or-magic-transcript .or-magic-block').length >= 4",
                           timeout=15_000)  # several blocks streamed and froze
    t_click = time.monotonic()
    stop.click()
    last = transcript.locator(".or-magic-turn").last  # the final render of the stopped answer
    expect(last).to_contain_text("interrupted", timeout=5_000)
    stopped_in = time.monotonic() - t_click
    expect(send).to_be_enabled()
    partial = last.locator(".or-magic-answer").inner_text()
    assert 10 < len(partial) < 15_000, partial
    expect(panel.locator(".or-magic-status")).to_contain_text("stopped")
    body = chat_bodies(sandbox)[-1]
    assert body["model"] == "sandbox/long" and body["temperature"] == 0.85
    assert stopped_in < 3, f"Stop took {stopped_in:.2f} s"

    panel.screenshot(path=str(screenshot_path("panel.png", tmp_path)))
