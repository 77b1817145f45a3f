"""The panel's notebook parts through a real kernel and the sandbox: --cells/--code in the option box, the
"Fix last error" button and its code box, and the sliders' number boxes."""

from __future__ import annotations

import pytest
import test_panel
from _kernel import Kernel, ok, value
from test_panel import chat_requests

from or_magic.defaults import MAX_TOKENS_SLIDER as DEFAULT_TOP
from or_magic.sandbox import Sandbox

pytestmark = pytest.mark.kernel


panel = test_panel.panel  # the fixture: a fresh panel `p` in the kernel, its model list loaded


def test_option_box_sends_cells_and_fills_the_code_box(panel: Kernel, sandbox: Sandbox) -> None:
    k = panel
    n = int(value(k, "len(In)"))
    ok(k, "rows = [3, 1, 2]\nprint('rows ready')\nsorted(rows)")
    sandbox.clear_requests()
    ok(k, "p.options.value = '--cells -1 --code -m sandbox/fixer'\n"
          "p.prompt.value = 'sort it'; assert p.send() is not None\nawait _wait(p)")
    sent = chat_requests(sandbox)[-1]["body"]["messages"][-1]["content"]
    assert f"### Cell In[{n}]" in sent and "rows ready" in sent and sent.endswith("sort it")
    shown, code = value(k, "[p.code_box.layout.display, p.code_box.value]")
    assert shown is None and code.startswith("# fixed\n") and "```" not in code and "corrected" not in code
    ok(k, "p.options.value = '--code'\np.prompt.value = 'plain words'; assert p.send() is not None\n"
          "await _wait(p)")
    assert value(k, "p.code_box.layout.display") == "none" and "no Python code block" in value(k, "p.status.value")
    sandbox.clear_requests()
    ok(k, "p.options.value = '--cells 2-1'\np.prompt.value = 'bad spec'\nassert p.send() is None")
    assert "runs backwards" in value(k, "p.status.value") and chat_requests(sandbox) == []
    assert value(k, "p.prompt.value") == "bad spec"  # nothing lost


def test_fix_button_asks_in_thread_fix_and_proposes_code_in_the_box(panel: Kernel, sandbox: Sandbox) -> None:
    k = panel
    assert k.run("prices = [9.5, 3.0]\nfor i in range(3):\n    print(prices[i])").status == "error"
    ok(k, "p.model.value = 'sandbox/fixer'\np.prompt.value = 'a draft I am typing'\n"
          "p.fix_button.click()\nawait _wait(p)")
    sent = chat_requests(sandbox)[-1]["body"]
    assert sent["model"] == "sandbox/fixer" and "IndexError" in sent["messages"][-1]["content"]
    assert "print(prices[i])" in sent["messages"][-1]["content"]
    assert value(k, "p.thread.value") == "fix" and value(k, "len(_m.session.store.get('fix').turns)") == 1
    assert value(k, "len(_m.session.store.get('default').turns)") == 0
    code = value(k, "p.code_box.value")
    assert "if 0 <= i < len(prices):" in code and "```" not in code and "corrected" not in code
    assert "corrected version" in value(k, "p.transcript_html()")
    assert value(k, "p.prompt.value") == "a draft I am typing"  # the user's draft is kept


def test_fix_button_with_no_failed_cell_sends_nothing(panel: Kernel, sandbox: Sandbox) -> None:
    k = panel
    ok(k, "_cells_hist = __import__('or_magic.cells', fromlist=['history']).history(get_ipython())\n"
          "for _r in _cells_hist._records.values(): _r.error = None")  # as if no cell had failed
    sandbox.clear_requests()
    ok(k, "assert p.fix() is None")
    assert "no failed cell to fix" in value(k, "p.status.value") and chat_requests(sandbox) == []
    assert value(k, "p.thread.value") == "default"


def test_float_sliders_have_linked_number_boxes(panel: Kernel) -> None:
    k = panel
    state = value(k, "[p.temperature.readout, p.top_p.readout, p.temperature_entry.value, p.top_p_entry.max, "
                     "p.temperature_entry.continuous_update, type(p.temperature_entry).__name__]")
    assert state == [False, False, 1.0, 1.0, True, "BoundedFloatText"]
    links = value(k, "[(e.link.source, e.link.target) == ((s, 'value'), (e, 'value')) "
                     "for s, e in ((p.temperature, p.temperature_entry), (p.top_p, p.top_p_entry))]")
    assert links == [True, True]  # each box follows its slider in the browser (jslink), both ways
    ok(k, "p.temperature.value = 0.4")
    assert value(k, "_m.temperature") == 0.4  # the slider is still what sets the default


def test_max_tokens_slider_has_a_linked_int_box_with_the_model_default(panel: Kernel, sandbox: Sandbox) -> None:
    """Typed max tokens for Notebook 7, where a focused slider ignores the arrow keys; 0 is the model's default."""
    k = panel
    state = value(k, "[type(p.max_tokens_entry).__name__, p.max_tokens_entry.value, p.max_tokens_entry.min, "
                     "p.max_tokens_entry.max == p.max_tokens.max, p.max_tokens_readout.value]")
    assert state == ["BoundedIntText", 0, 0, True, "model default"]
    link = value(k, "(p.max_tokens_entry.link.source, p.max_tokens_entry.link.target) == "
                    "((p.max_tokens, 'value'), (p.max_tokens_entry, 'value'))")
    assert link is True  # the box follows the slider in the browser (jslink), both ways
    shown = "p.max_tokens_entry in __import__('or_magic.panel_transcript', fromlist=['x']).descendants(p)"
    assert value(k, shown) is True  # in the panel, next to the slider
    ok(k, "p.model.value = 'nobody/unknown-model'")  # no cap from /models: the default top
    assert value(k, "[p.max_tokens.max, p.max_tokens_entry.max]") == [DEFAULT_TOP, DEFAULT_TOP]
    ok(k, "p.model.value = 'sandbox/echo'")
    cap = value(k, "next(m.max_completion_tokens for m in p.models if m.id == 'sandbox/echo')")
    assert value(k, "p.max_tokens_entry.max") == cap, "the box's top follows the model's cap"
    sandbox.clear_requests()
    ok(k, "p.max_tokens.value = 77; p.prompt.value = 'typed cap'; assert p.send() is not None\nawait _wait(p)")
    assert chat_requests(sandbox)[-1]["body"]["max_tokens"] == 77
    assert value(k, "[_m.max_tokens, p.max_tokens_readout.value]") == [77, "77"]
