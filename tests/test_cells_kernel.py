"""The notebook as context, in a real kernel: cell capture, the --cells block, the fix request, the proposal."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from _kernel import FAKE_KEY, Kernel, kernel

pytestmark = pytest.mark.kernel

SETUP = (
    "import json\n"
    "from or_magic import cells as _cells, cellsblock as _cb, fix as _fix, codecells as _cc\n"
    "_hist = _cells.install(get_ipython())\n"
)

NOISY = (  # progress with \r, a thread printing, stderr, a display: must print the same with capture on
    "import sys, threading, time\n"
    "from IPython.display import display, HTML\n"
    "for i in range(0, 101, 20):\n"
    "    print(f'\\rprogress {i:3d}%', end='', flush=True); time.sleep(0.01)\n"
    "print()\n"
    "def work():\n"
    "    for j in range(5):\n"
    "        print('thread line', j, flush=True); time.sleep(0.005)\n"
    "t = threading.Thread(target=work); t.start()\n"
    "print('to stderr', file=sys.stderr)\n"
    "display(HTML('<b>shown</b>'))\n"
    "t.join()\n"
    "print('done')\n"
)


@pytest.fixture(scope="module")
def k() -> Iterator[Kernel]:
    with kernel({"OPENROUTER_API_KEY": FAKE_KEY}) as kern:
        r = kern.run(SETUP)
        assert r.status == "ok", r.text()
        yield kern


def value(k: Kernel, expression: str) -> object:
    """Evaluate ``expression`` in the kernel and bring its JSON value back."""
    r = k.run(f"print(json.dumps({expression}))", timeout=30)
    assert r.status == "ok", r.text()
    return json.loads("".join(m["content"]["text"] for m in r.of_type("stream")))


def count(k: Kernel) -> int:
    """The execution count the next cell will get."""
    return int(value(k, "len(In)"))  # In holds the cells before this one and this one: the next is len(In)


def streams(r) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in r.of_type("stream"):
        out[m["content"]["name"]] = out.get(m["content"]["name"], "") + m["content"]["text"]
    return out


def test_capture_does_not_change_what_cells_print(k: Kernel) -> None:
    with kernel({}) as plain:
        before = plain.run(NOISY)
    after = k.run(NOISY)
    assert before.status == after.status == "ok"
    assert streams(after) == streams(before)  # same text on each stream, \r and thread lines included
    assert "\rprogress 100%" in streams(after)["stdout"] and "thread line 4" in streams(after)["stdout"]
    shown = [m["content"]["data"] for m in after.of_type("display_data")]
    assert shown == [m["content"]["data"] for m in before.of_type("display_data")] and shown
    number = after.reply["content"]["execution_count"]
    printed = value(k, f"_hist.record({number}).printed.text()")
    assert "progress 100%" in printed and "progress  20%" not in printed  # the redrawn line keeps its last state
    assert "thread line 4" in printed and "to stderr" in printed and "done" in printed
    assert "<IPython.core.display.HTML object>" in printed


def test_normal_cell_dataframe_and_failed_cell_in_the_block(k: Kernel) -> None:
    n = count(k)
    assert k.run("x = 41\nprint('x is', x)\nx + 1").status == "ok"
    assert k.run("import pandas as pd\npd.DataFrame({'city': ['Oslo', 'Lima'], 'temp': [3.5, 18.0]})").status == "ok"
    failed = k.run("items = [1, 2, 3]\ndef pick(i):\n    return items[i]\npick(7)")
    assert failed.status == "error"
    block = value(k, f"_cb.cells_block('{n}-{n + 2}', _hist).text")
    assert f"### Cell In[{n}]" in block and "print('x is', x)" in block and "x is 41" in block
    assert f"Result `Out[{n}]` (int)" in block and "42" in block
    assert "pandas.DataFrame, 2 rows × 2 columns" in block and "Oslo" in block and "`temp`: float64" in block
    assert "Failed with IndexError: list index out of range" in block
    assert f"Cell In[{n + 2}], line 4, in <module>" in block and f"Cell In[{n + 2}], line 3, in pick" in block
    assert "interactiveshell.py" not in block and "site-packages" not in block
    assert block.index(f"In[{n}]") < block.index(f"In[{n + 1}]") < block.index(f"In[{n + 2}]")


def test_the_four_spec_forms_leave_chat_cells_and_the_current_cell_out(k: Kernel) -> None:
    n = count(k)
    for i in range(3):
        k.run(f"v{i} = {i}")
    k.run("%%chat --help\nnot a real turn: the extension is not loaded here")  # a chat cell, even when it fails
    specs = [f"{n}", f"{n}-{n + 3}", "-2", "all", f"-1,{n}"]
    r = k.run(f"print(json.dumps([_cb.select_cells(s, _hist) for s in {specs!r}]))")  # this cell is n + 4
    one, span, last_two, everything, mixed = json.loads(streams(r)["stdout"])
    assert one == [n] and span == [n, n + 1, n + 2] and last_two == [n + 1, n + 2] and mixed == [n, n + 2]
    assert everything[0] == 1 and everything[-3:] == [n, n + 1, n + 2] and n + 3 not in everything
    assert n + 4 not in everything


def test_spec_mistakes_are_one_line_errors(k: Kernel) -> None:
    for bad in ("", "3-1", "x", "-0", "0", "1,,2", "999999"):
        r = k.run(f"_cb.select_cells({bad!r}, _hist)")
        assert r.status == "error" and r.reply["content"]["ename"] == "ValueError", bad
        assert "\n" not in r.reply["content"]["evalue"] and r.reply["content"]["evalue"].startswith("--cells")


def test_limits_bound_each_cell_and_the_block(k: Kernel) -> None:
    n = count(k)
    k.run("for i in range(20000):\n    print('line', i, 'x' * 50)")
    k.run("'y' * 100000")
    assert len(value(k, f"_hist.record({n}).printed.text()")) < 9000
    block = value(k, f"_cb.cells_block('{n}-{n + 1}', _hist, cell_chars=2000, max_chars=5000).text")
    assert len(block) <= 5000 and "characters cut" in block and "line 0 " in block and "line 19999" in block
    assert "str, 100,000 characters" in block and "yyyy" in block and "more characters" in block
    small = value(k, f"_cb.cells_block('{n}-{n + 1}', _hist, cell_chars=2000, max_chars=1000).__dict__")
    assert small["numbers"] == [n + 1] and small["left_out"] == [n] and "left out" in small["text"]
    assert len(small["text"]) <= 1000 and "line 0 " not in small["text"]


def test_no_key_in_the_block(k: Kernel) -> None:
    n = count(k)
    k.run(f"print('my key is {FAKE_KEY}')\n'{FAKE_KEY}'")
    k.run("import os\nsecret = os.environ['OPENROUTER_API_KEY']\nsecret[::-1][::-1]")
    block = value(k, f"_cb.cells_block('{n}-{n + 1}', _hist).text")
    assert FAKE_KEY not in block and "sk-or-" not in block and "[redacted]" in block


def test_fix_request_after_index_error(k: Kernel) -> None:
    n = count(k)
    k.run("prices = [9.5, 3.0, 4.25]\nlimit = 10\nimport math")
    r = k.run("total = 0\nfor i in range(limit):\n    total += prices[i] * math.pi\nprint(total)")
    assert r.status == "error"
    k.run("ok_after = 1")
    fix = value(k, "_fix.fix_request(_hist, get_ipython().user_ns).__dict__")
    assert fix["number"] == n + 1 and fix["variables"] == ["total", "prices", "i"]
    message = fix["message"]
    assert "total += prices[i] * math.pi" in message and "IndexError: list index out of range" in message
    assert f"Cell In[{n + 1}], line 3" in message and "It failed at line 3" in message
    assert "Notebook variable `prices` (list, 3 items)" in message and "9.5" in message
    assert "`math`" not in message and "ONE ```python code block" in message


def test_no_failed_cell_is_a_clear_result() -> None:
    with kernel({}) as fresh:
        fresh.run(SETUP)
        fresh.run("a = 1")
        r = fresh.run("_fix.fix_request(_hist, get_ipython().user_ns)")
        assert r.reply["content"]["ename"] == "NoFailedCell" and "no failed cell" in r.reply["content"]["evalue"]
        r = fresh.run("_fix.fix_request(_hist, get_ipython().user_ns, 2)")
        assert r.reply["content"]["ename"] == "NoFailedCell" and "did not fail" in r.reply["content"]["evalue"]


def test_proposed_code_arrives_as_one_set_next_input_payload(k: Kernel) -> None:
    answer = "The index runs past the end.\n\n```python\nfor p in prices:\n    print(p)\n```\n\nDone."
    r = k.run(f"_cc.propose_cell(get_ipython(), _cc.answer_code({answer!r}))")
    assert r.status == "ok"
    assert r.reply["content"]["payload"] == [
        {"source": "set_next_input", "text": "for p in prices:\n    print(p)", "replace": False}]
    r = k.run("_cc.propose_cell(get_ipython(), 'a = 1')\n_cc.propose_cell(get_ipython(), 'b = 2')")
    assert r.reply["content"]["payload"] == [{"source": "set_next_input", "text": "a = 1\n\nb = 2", "replace": False}]
    assert value(k, "'b' in globals()") is False  # proposed, never run


def test_install_is_idempotent_uninstall_stops_capture_and_earlier_cells_come_from_in_out() -> None:
    with kernel({}) as fresh:
        fresh.run("before = [3, 1, 2]\nsorted(before)")  # cell 1: run before install
        assert fresh.run(SETUP + "assert _cells.install(get_ipython()) is _hist").status == "ok"
        r = fresh.run("print(json.dumps(_cb.cells_block('1', _hist).text))")
        block = json.loads(streams(r)["stdout"])
        assert "before = [3, 1, 2]" in block and "Result `Out[1]` (list, 3 items)" in block and "[1, 2, 3]" in block
        fresh.run("print('seen')")  # cell 4
        r = fresh.run("_cells.uninstall(get_ipython()); _cells.uninstall(get_ipython())\n"
                      "print(json.dumps([_cells.history(get_ipython()) is None, _hist.record(4) is not None]))")
        assert json.loads(streams(r)["stdout"]) == [True, True]
        after = fresh.run("print('not seen')")
        assert streams(after)["stdout"] == "not seen\n"
        r = fresh.run("print(json.dumps([_hist.record(6), sorted(_hist._records)]))")
        assert json.loads(streams(r)["stdout"]) == [None, [3, 4, 5]]  # the installing cell itself ran before the hooks
