"""``--cells``, ``%chat fix`` and ``--code`` through the magic: a real kernel, the sandbox, what it received."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _kernel import FAKE_KEY, Kernel, kernel, ok, value

from or_magic import defaults
from or_magic.sandbox import Sandbox

pytestmark = pytest.mark.kernel

FAILING = "items = [1, 2, 3]\ndef pick(i):\n    return items[i]\npick(7)"


def next_count(k: Kernel) -> int:
    """The execution count the next cell gets (``In`` holds the cells so far and the asking one)."""
    return int(value(k, "len(In)"))


def chats(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests if r["path"].endswith("/chat/completions")]


def last_user(sandbox: Sandbox) -> str:
    return str(chats(sandbox)[-1]["body"]["messages"][-1]["content"])


def usage_line(r: Any) -> str:
    assert r.status == "error" and r.reply["content"]["ename"] == "UsageError", r.text()
    text = r.reply["content"]["evalue"]
    assert "\n" not in text
    return text


def run_four_cells(k: Kernel) -> int:
    """A print with a result, a DataFrame, an IndexError and a chat cell; returns the first one's number."""
    n = next_count(k)
    ok(k, "x = 41\nprint('x is', x)\nx + 1")
    ok(k, "import pandas as pd\npd.DataFrame({'city': ['Oslo', 'Lima'], 'temp': [3.5, 18.0]})")
    assert k.run(FAILING).status == "error"
    ok(k, "%%chat\na chat cell in between", cell_id="between")
    return n


def test_cells_in_its_four_forms_reach_the_request(kern: Kernel, sandbox: Sandbox) -> None:
    n = run_four_cells(kern)
    sandbox.clear_requests()
    ok(kern, f"%%chat --cells {n}\nwhat did cell {n} print?")
    sent = last_user(sandbox)
    assert sent.startswith("Notebook cells") and sent.endswith(f"what did cell {n} print?")
    assert f"### Cell In[{n}]" in sent and "x is 41" in sent and f"Result `Out[{n}]` (int)" in sent
    assert f"In[{n + 1}]" not in sent
    ok(kern, f"%%chat --cells {n}-{n + 3}\nsummarise")
    sent = last_user(sandbox)
    assert "pandas.DataFrame, 2 rows × 2 columns" in sent and "Oslo" in sent
    assert "Failed with IndexError: list index out of range" in sent and "return items[i]" in sent
    assert "a chat cell in between" not in sent  # chat cells are left out: their turns are in the thread
    assert sent.index(f"In[{n}]") < sent.index(f"In[{n + 1}]") < sent.index(f"In[{n + 2}]")
    ok(kern, "%%chat --cells -2\nthe last two")
    sent = last_user(sandbox)
    assert f"In[{n + 1}]" in sent and f"In[{n + 2}]" in sent and f"### Cell In[{n}]" not in sent
    ok(kern, "%chat --cells all everything please")
    sent = last_user(sandbox)
    assert all(f"### Cell In[{i}]" in sent for i in (n, n + 1, n + 2)) and "a chat cell" not in sent
    assert sent.endswith("everything please")


def test_dry_run_shows_the_block_and_its_size_and_sends_nothing(kern: Kernel, sandbox: Sandbox) -> None:
    n = next_count(kern)
    ok(kern, "print('dry run me')")
    sandbox.clear_requests()
    r = ok(kern, "%%chat --cells -1 --dry-run --context x\nlook")
    assert chats(sandbox) == []
    text = r.text()
    assert f"cells: In[{n}] (" in text and "characters)" in text and "dry run me" in text
    assert text.index("Notebook cells") < text.index("Notebook variable `x`")  # cells, context, then message


@pytest.mark.parametrize(("spec", "says"), [("3-1", "runs backwards"), ("x", "cannot read"), ("-0", "-0"),
                                            ("999999", "has not run"), ("''", "needs a SPEC")])
def test_cells_mistakes_are_one_line_and_send_nothing(kern: Kernel, sandbox: Sandbox, spec: str, says: str) -> None:
    sandbox.clear_requests()
    line = usage_line(kern.run(f"%%chat --cells {spec}\nhello"))
    assert line.startswith("--cells") and says in line
    assert chats(sandbox) == []


def test_the_block_is_bounded(kern: Kernel, sandbox: Sandbox) -> None:
    n = next_count(kern)
    ok(kern, "for i in range(20000):\n    print('line', i, 'x' * 50)")
    ok(kern, "'y' * 200000")
    sandbox.clear_requests()
    ok(kern, f"%%chat --cells {n}-{n + 1}\nbig")
    sent = last_user(sandbox)
    assert len(sent) <= defaults.CELLS_CHARS + 10 and "characters cut" in sent and "line 19999" in sent
    assert "str, 200,000 characters" in sent


def test_no_key_in_the_block(kern: Kernel, sandbox: Sandbox) -> None:
    ok(kern, "_m.session.api_key = 'typed-secret-0123456789'")  # the key in use, not shaped like one
    try:
        n = next_count(kern)
        ok(kern, f"print('keys: {FAKE_KEY} typed-secret-0123456789')\n'typed-secret-0123456789'")
        ok(kern, "import os\nos.environ['OPENROUTER_API_KEY'][::-1][::-1]")
        sandbox.clear_requests()
        ok(kern, f"%%chat --cells {n}-{n + 1}\nwhat keys?")
        body = json.dumps(chats(sandbox)[-1]["body"])
        assert FAKE_KEY not in body and "typed-secret-0123456789" not in body and "[redacted]" in body
    finally:
        ok(kern, "_m.session.api_key = None")


def test_fix_after_an_index_error_proposes_only_the_code(kern: Kernel, sandbox: Sandbox) -> None:
    n = next_count(kern)
    assert kern.run(FAILING).status == "error"
    ok(kern, "after = 'a cell that worked'")
    sandbox.clear_requests()
    r = ok(kern, "%chat fix -m sandbox/fixer", cell_id="fix-cell")
    sent = last_user(sandbox)
    assert chats(sandbox)[-1]["body"]["model"] == "sandbox/fixer"
    assert "return items[i]" in sent and "IndexError: list index out of range" in sent
    assert f"Cell In[{n}], line 3, in pick" in sent and "Notebook variable `items` (list, 3 items)" in sent
    payload = r.reply["content"]["payload"]
    assert len(payload) == 1 and payload[0]["source"] == "set_next_input" and payload[0]["replace"] is False
    code = payload[0]["text"]
    assert "```" not in code and "corrected version" not in code  # only the code, no prose or fences
    assert "if 0 <= i < len(items):" in code and code.rstrip().endswith("pick(7)")
    assert "corrected version" in r.text()  # the answer is shown as any turn is
    assert value(kern, "'after' in globals() and 'pick' in globals()") is True
    threads = value(kern, "{t: len(_m.session.store.get(t).turns) for t in _m.session.store.names()}")
    assert threads.get("fix") == 1 and threads.get("default", 0) == 0  # its own thread
    ok(kern, "%chat fix -m sandbox/fixer", cell_id="fix-cell")  # re-running the cell replaces its turn
    assert value(kern, "len(_m.session.store.get('fix').turns)") == 1


def test_fix_of_a_named_cell_and_its_mistakes(kern: Kernel, sandbox: Sandbox) -> None:
    n = next_count(kern)
    assert kern.run("{}['missing']").status == "error"
    ok(kern, "fine = 1")
    sandbox.clear_requests()
    r = ok(kern, f"%chat fix {n} -m sandbox/fixer --once")
    assert "KeyError" in last_user(sandbox) and r.reply["content"]["payload"]
    assert value(kern, "len(_m.session.store.get('fix').turns)") == 0  # --once keeps nothing
    sandbox.clear_requests()
    r = ok(kern, f"%chat fix {n + 1}")
    lines = [x for x in r.text().splitlines() if x.strip()]
    assert lines == [f"or_magic: cell In[{n + 1}] did not fail (or ran before the extension was loaded): "
                     "nothing to fix; nothing was sent"]
    assert chats(sandbox) == [] and r.reply["content"]["payload"] == []
    assert "N is the number" in usage_line(kern.run("%chat fix seven"))
    assert "-t" in usage_line(kern.run("%chat fix -t 9"))
    assert chats(sandbox) == []


def test_fix_with_no_failed_cell_says_so_and_sends_nothing(kernel_env: dict[str, str], sandbox: Sandbox) -> None:
    with kernel(kernel_env) as fresh:
        ok(fresh, "%load_ext or_magic")
        ok(fresh, "a = 1")
        sandbox.clear_requests()
        r = ok(fresh, "%chat fix")
        assert [x for x in r.text().splitlines() if x.strip()] == [
            "or_magic: no failed cell to fix: every cell run since the extension was loaded succeeded; "
            "nothing was sent"]
        assert chats(sandbox) == [] and r.reply["content"]["payload"] == []


def test_code_proposes_the_answers_python_blocks(kern: Kernel, sandbox: Sandbox) -> None:
    r = ok(kern, "%%chat --code -m sandbox/fixer\nplease fix\n```python\ntotal = sum(range(4))\n```")
    assert r.reply["content"]["payload"] == [
        {"source": "set_next_input", "text": "# fixed\ntotal = sum(range(4))", "replace": False}]
    assert "corrected version" in r.text() and value(kern, "'total' in globals()") is False  # shown, not run
    r = ok(kern, "%%chat --code\nno code in this answer")
    assert r.reply["content"]["payload"] == []
    assert "or_magic: the answer has no Python code block, so no cell was proposed" in r.text()
    assert "no code in this answer" in r.text()


def test_code_joins_several_python_blocks_in_order(kern: Kernel, sandbox: Sandbox) -> None:
    """The echo model answers with the prompt: two python blocks around a shell one and some prose."""
    body = ("first load\n```python\nimport math\n```\nthen a shell step\n```bash\nls -l\n```\n"
            "and compute\n```py\nprint(math.pi)\n```\nthe end")
    r = ok(kern, f"%%chat --code --once -m sandbox/echo\n{body}")
    assert r.reply["content"]["payload"] == [
        {"source": "set_next_input", "text": "import math\n\nprint(math.pi)", "replace": False}]
    assert "ls -l" in r.text()  # the answer is still shown whole
