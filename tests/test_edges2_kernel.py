"""Trust at the edges, part 2, through a real kernel and the sandbox: several calls per cell, the key on
every path, reloads, leaving the sandbox, subcommand mistakes, what a cell keeps on screen."""

from __future__ import annotations

import json

import pytest
from _kernel import FAKE_KEY, Kernel

from or_magic.sandbox import Sandbox

pytestmark = pytest.mark.kernel

OTHER_KEY = "sk-or-v1-another0key0that0is0not0in0use0123456789"


def chats(sandbox: Sandbox) -> list[dict]:
    return [r for r in sandbox.requests if r["path"].endswith("/chat/completions")]


def sent_texts(sandbox: Sandbox) -> list[list[str]]:
    """Each chat request's message contents, in order."""
    return [[str(m.get("content")) for m in r["body"]["messages"]] for r in chats(sandbox)]


def one_line_error(r) -> str:
    text = r.text()
    assert "Traceback" not in text and "UsageError" in text, text
    return text


def kernel_value(kern: Kernel, expr: str):
    """Evaluate ``expr`` in the kernel (with ``_m`` the ChatMagics) and return it, through JSON."""
    r = kern.run("import json as _json\n_m = get_ipython().magics_manager.registry['ChatMagics']\n"
                 f"print('@@' + _json.dumps({expr}))")
    assert r.status == "ok", r.text()
    line = next(x for x in r.text().splitlines() if x.startswith("@@"))
    return json.loads(line[2:])


def users(kern: Kernel, thread: str) -> list[str]:
    return kernel_value(kern, f"[t.user for t in _m.session.store.get({thread!r}).turns]")


# -- 1. several chat calls in one cell -------------------------------------------------------------
def test_two_chat_lines_in_one_cell_are_two_turns(kern: Kernel, sandbox: Sandbox) -> None:
    sandbox.clear_requests()
    cell = "%chat --chat pair first question\n%chat --chat pair second question"
    assert kern.run(cell, cell_id="pair1").status == "ok"
    assert users(kern, "pair") == ["first question", "second question"]
    second = sent_texts(sandbox)[-1]
    assert second[0] == "first question" and second[-1] == "second question"
    kern.run(cell, cell_id="pair1")  # re-running the cell replaces its two turns as a group
    assert users(kern, "pair") == ["first question", "second question"]
    kern.run("%chat --chat pair only one now", cell_id="pair1")
    assert users(kern, "pair") == ["only one now"]


def test_run_cell_magic_in_a_loop_is_one_turn_each(kern: Kernel, sandbox: Sandbox) -> None:
    sandbox.clear_requests()
    loop = ("for word in ['alpha', 'beta', 'gamma']:\n"
            "    get_ipython().run_cell_magic('chat', '--chat loop', 'say ' + word)")
    assert kern.run(loop, cell_id="loop1").status == "ok"
    assert users(kern, "loop") == ["say alpha", "say beta", "say gamma"]
    last = sent_texts(sandbox)[-1]
    assert [last[0], last[2], last[4]] == ["say alpha", "say beta", "say gamma"] and len(last) == 5
    kern.run(loop, cell_id="loop1")
    assert users(kern, "loop") == ["say alpha", "say beta", "say gamma"]


def test_dry_run_shows_the_earlier_call_of_the_same_cell(kern: Kernel, sandbox: Sandbox) -> None:
    sandbox.clear_requests()
    r = kern.run("%chat --chat dry first part\n%chat --chat dry --dry-run second part", cell_id="dry1")
    assert "first part" in r.text().split("dry run:", 1)[1]
    assert len(chats(sandbox)) == 1
