"""The panel in JupyterLab, in headless Debian Chromium, against the sandbox (TESTING.md recipe 3).

A real user's path: open a notebook, run it, move the temperature slider with the keyboard, type a prompt,
click Send and watch the answer stream in; then Stop a slow answer and see it kept, marked "interrupted".
The sandbox (in this process) records what the kernel sent, so the slider's value is checked on the wire.
Saves docs/panel.png. Fails (never skips) when Chromium is missing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _kernel import FAKE_KEY
from _lab import LabServer, browser, open_notebook, run_all, write_notebook

from or_magic.sandbox import Sandbox

if TYPE_CHECKING:  # pragma: no cover
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "panel.png"


@pytest.fixture(scope="module")
def lab(sandbox: Sandbox) -> Iterator[LabServer]:
    """JupyterLab whose kernels talk to the sandbox (the env is inherited by every kernel it starts)."""
    with LabServer(env={"OPENROUTER_BASE_URL": sandbox.url, "OPENROUTER_API_KEY": FAKE_KEY}) as server:
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


def test_panel_slider_send_stream_stop(lab: LabServer, page: Page, sandbox: Sandbox) -> None:
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

    # a prompt, Send, and the answer arriving while Send is disabled (streaming), then the final footer
    prompt = panel.get_by_placeholder("Ask something…")
    words = " ".join(f"word{i}" for i in range(30))
    prompt.fill(f"Hello panel {words} rate=15")
    send = panel.get_by_role("button", name="Send")
    stop = panel.get_by_role("button", name="Stop")
    send.click()
    transcript = panel.locator(".or-magic-transcript")
    expect(transcript).to_contain_text("word3", timeout=10_000)
    streaming = send.is_disabled() and "word29" not in transcript.inner_text()
    expect(send).to_be_enabled(timeout=20_000)
    expect(transcript).to_contain_text("word29")
    expect(panel.locator(".or-magic-status")).to_contain_text("answered")
    assert streaming, "the answer should be visible while it is still streaming"
    body = chat_bodies(sandbox)[-1]
    assert body["temperature"] == 0.85 and body["model"] == "sandbox/echo"
    assert body["messages"][-1]["content"].startswith("Hello panel word0")

    # a slow answer, stopped halfway: it stays in the transcript, marked interrupted
    model = panel.locator(".widget-combobox input")
    model.fill("sandbox/slow")
    model.press("Enter")
    expect(panel.locator(".or-magic-model-ok")).to_contain_text("Slow")
    long = " ".join(f"slow{i}" for i in range(300))
    prompt.fill(f"{long} rate=10")
    send.click()
    expect(transcript).to_contain_text("slow5", timeout=10_000)
    t_click = time.monotonic()
    stop.click()
    expect(transcript).to_contain_text("interrupted", timeout=5_000)
    stopped_in = time.monotonic() - t_click
    expect(send).to_be_enabled()
    assert "slow299" not in transcript.inner_text()
    expect(panel.locator(".or-magic-status")).to_contain_text("stopped")
    body = chat_bodies(sandbox)[-1]
    assert body["model"] == "sandbox/slow" and body["temperature"] == 0.85
    assert stopped_in < 3, f"Stop took {stopped_in:.2f} s"

    SCREENSHOT.parent.mkdir(exist_ok=True)
    panel.screenshot(path=str(SCREENSHOT))
