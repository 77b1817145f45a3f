"""What differs between JupyterLab 4 and Notebook 7, checked in both (headless Debian chromium).

- A cell proposed with ``set_next_input(code, replace=False)`` (what ``%chat fix`` and ``--code`` will send)
  appears right below the running cell, unexecuted, in both front ends.
- Arrow keys on a focused ipywidgets slider: JupyterLab starts its application with ``bubblingKeydown``, so
  its shortcut handler listens on ``document`` in the bubbling phase and sees the key only after the slider
  handled (and ``preventDefault``-ed) it. Notebook 7 starts the same application without that option, so the
  handler listens in the capture phase and runs first: the command-mode bindings for ArrowLeft/Right/Up/Down
  (selector ``.jp-Notebook.jp-mod-commandMode:not(.jp-mod-readWrite) :focus``) match the focused handle, the
  event is ``preventDefault``-ed and stopped, and the slider never sees it. The handler skips an element that
  carries ``data-lm-suppress-shortcuts``, but ipywidgets cannot set attributes from the kernel (only classes),
  and it would have to be on the focused handle itself. What the kernel side *can* do: the notebook adds
  ``jp-mod-readWrite`` while an editable element (``:read-write``) has focus, which switches those bindings
  off; so a number box linked to the slider (``BoundedIntText`` + ``jslink``) takes ArrowUp/ArrowDown in
  both front ends.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from _lab import (
    CellState,
    cell_output,
    cells,
    notebook_cells,
    open_notebook,
    run_all,
    run_cell,
    wait_cell_count,
    write_notebook,
)
from playwright.sync_api import Locator, Page, expect

if TYPE_CHECKING:  # pragma: no cover
    from _fronts import FrontEnd  # imported by pytest_plugins, so its asserts are rewritten

pytestmark = pytest.mark.browser
pytest_plugins = ["_fronts"]  # the front and page fixtures

SETUP = """import ipywidgets as W
def watched(slider):
    seen = W.Label(value='kernel saw nothing')
    slider.observe(lambda change: setattr(seen, 'value', f'kernel saw {change.new}'), names='value')
    return seen
def keyboard_slider(**kw):
    '''A slider for the mouse and a number box for the keys, linked in the browser.'''
    slider = W.FloatSlider(readout=False, **kw)
    box = W.BoundedFloatText(min=slider.min, max=slider.max, step=slider.step, value=slider.value,
                             continuous_update=True, layout=W.Layout(width='6em'))
    W.jslink((slider, 'value'), (box, 'value'))
    return slider, box"""
PLAIN = "plain = W.IntSlider(value=5, description='plain')\nW.VBox([plain, watched(plain)])"
FIXED = ("fixed, fixed_box = keyboard_slider(value=1.0, min=0.0, max=2.0, step=0.05, description='fixed')\n"
         "W.VBox([W.HBox([fixed, fixed_box]), watched(fixed)])")


def test_set_next_input_proposes_a_cell_right_below(front: FrontEnd, page: Page) -> None:
    write_notebook(front.server.root / "next.ipynb", [
        "x = 1",
        "get_ipython().set_next_input('y = x + 1', replace=False)",
        "z = 3",
    ])
    open_notebook(page, front.server, "next.ipynb")
    before = notebook_cells(page)
    assert [c.execution_count for c in before] == [None, None, None]
    run_cell(page, 1)
    after = wait_cell_count(page, 4)
    assert after[0] == before[0] and after[3] == before[2]  # nothing else moved or ran
    assert isinstance(after[1].execution_count, int)
    assert after[2] == CellState("code", "y = x + 1", None)  # proposed, right below, never run
    expect(cells(page).nth(2).locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[ \]"))
    expect(cell_output(page, 2)).to_have_text("")


def press(page: Page, target: Locator, key: str, times: int) -> None:
    target.focus()
    for _ in range(times):
        page.keyboard.press(key)


def suppress_shortcuts(elements: Locator) -> None:
    """Mark elements the way only front-end code can (ipywidgets sets classes, never attributes)."""
    assert elements.count() > 0
    elements.evaluate_all("els => els.forEach(e => e.setAttribute('data-lm-suppress-shortcuts', ''))")


def test_slider_keys(front: FrontEnd, page: Page) -> None:
    write_notebook(front.server.root / "slider.ipynb", [SETUP, PLAIN, FIXED])
    open_notebook(page, front.server, "slider.ipynb")
    run_all(page)
    plain, fixed = cell_output(page, 1), cell_output(page, 2)
    handle = plain.locator(".noUi-handle")
    expect(handle).to_have_attribute("aria-valuenow", re.compile(r"^5(\.0+)?$"))

    # the fix, in both front ends: ArrowUp in the linked number box moves the slider and reaches the kernel
    # (a float slider stepping by 0.05, like the panel's temperature)
    box = fixed.locator(".widget-text input")
    press(page, box, "ArrowUp", 2)
    expect(fixed.locator(".noUi-handle")).to_have_attribute("aria-valuenow", re.compile(r"^1\.10*$"))
    expect(fixed).to_contain_text("kernel saw 1.1")
    press(page, box, "ArrowDown", 3)
    expect(fixed).to_have_text(re.compile(r"kernel saw 0\.95$"))

    # a plain slider's handle: arrows work in Lab, are taken by the shortcuts in Notebook 7
    press(page, handle, "ArrowRight", 2)
    if front.is_lab:
        expect(plain.locator(".widget-readout")).to_have_text("7")
        expect(plain).to_contain_text("kernel saw 7")
        return
    run_cell(page, 0)  # a full round trip after the key presses: anything they caused has happened by now
    expect(handle).to_have_attribute("aria-valuenow", re.compile(r"^5(\.0+)?$"))
    expect(plain).to_contain_text("kernel saw nothing")

    # why: the shortcut handler, which skips only elements marked data-lm-suppress-shortcuts, and only when
    # the focused element itself is marked (it matches ":focus" before any ancestor is looked at)
    suppress_shortcuts(plain.locator(".widget-slider"))
    press(page, handle, "ArrowRight", 2)
    run_cell(page, 0)
    expect(handle).to_have_attribute("aria-valuenow", re.compile(r"^5(\.0+)?$"))
    suppress_shortcuts(handle)
    press(page, handle, "ArrowRight", 2)
    expect(plain.locator(".widget-readout")).to_have_text("7")
    expect(plain).to_contain_text("kernel saw 7")


NOTEBOOK_CONTEXT = [
    "%load_ext or_magic\n%config ChatMagics.model = 'sandbox/fixer'",
    "items = [1, 2, 3]\nitems[7]",
    "%chat fix",
    "%%chat --code\nplease tidy\n```python\nprint('tidy')\n```",
    "z = 3",
]


def test_fix_and_code_propose_a_cell_right_below(front: FrontEnd, page: Page) -> None:
    """A failing cell, then ``%chat fix``: the corrected code arrives as a new cell below it, unexecuted;
    ``%%chat --code`` does the same with the answer's code. The answers are shown in their cells."""
    write_notebook(front.server.root / "fix.ipynb", NOTEBOOK_CONTEXT)
    open_notebook(page, front.server, "fix.ipynb")
    run_cell(page, 0)
    run_cell(page, 1)
    expect(cell_output(page, 1)).to_contain_text("IndexError")
    run_cell(page, 2)
    after = wait_cell_count(page, 6)
    assert after[3].cell_type == "code" and after[3].execution_count is None
    assert after[3].source.startswith("# fixed\n") and "if 0 <= 7 < len(items):" in after[3].source
    assert "```" not in after[3].source and after[4].source == NOTEBOOK_CONTEXT[3]
    expect(cell_output(page, 2)).to_contain_text("corrected version")
    expect(cell_output(page, 3)).to_have_text("")
    run_cell(page, 4)
    after = wait_cell_count(page, 7)
    assert after[5] == CellState("code", "# fixed\nprint('tidy')", None)
    assert after[6].source == "z = 3" and after[6].execution_count is None
    expect(cell_output(page, 4)).to_contain_text("corrected version")
    expect(cells(page).nth(5).locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[ \]"))
