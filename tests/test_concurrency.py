"""The panel streaming while %%chat cells run in the same kernel (issue 7, "Concurrency").

The panel answers in an asyncio task on the kernel's event loop, so it keeps streaming between cells (the
kernel looks idle). A %%chat cell started meanwhile on the *same* thread must be refused with a clear message
(ThreadBusyError, nothing sent); on *another* thread both turns complete, none is lost, nothing of one answer
leaks into the other, and each thread keeps its turns in order with the right context sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from _kernel import Kernel, ok, value

from or_magic.sandbox import Sandbox

pytestmark = pytest.mark.kernel

WAIT = """
import asyncio as _asyncio
async def _wait(p, timeout=30.0):
    futures = {f for f in (p.models_task, p.task) if f is not None and not f.done()}
    if futures:
        done, pending = await _asyncio.wait(futures, timeout=timeout)
        assert not pending, "panel still busy after %s s" % timeout
    await _asyncio.sleep(0.05)  # the done-callbacks (busy state, refresh)
"""
M = "get_ipython().magics_manager.registry['ChatMagics']"
PANEL_WORDS = " ".join(f"pw{i}" for i in range(40))  # the slow model echoes these at 20 words/s: about 2 s


def turns(k: Kernel, thread: str) -> list[list[Any]]:
    return value(k, f"[[t.user, t.status, t.text] for t in {M}.session.store.get({thread!r}).turns]")


def sent(sandbox: Sandbox, last_user: str) -> list[str]:
    """The messages of the one request whose last message is ``last_user``."""
    (req,) = [r for r in sandbox.requests if r["path"].endswith("/chat/completions")
              and r["body"]["messages"][-1]["content"] == last_user]
    return [m["content"] for m in req["body"]["messages"]]


@pytest.fixture
def panel(kern: Kernel) -> Iterator[Kernel]:
    ok(kern, WAIT + "%config ChatMagics.max_retries = 0\n" + M + ".session.store._busy.clear()\n"
                    "_m = " + M + "\n_m.temperature = _m.top_p = _m.max_tokens = None\n"
                    "from or_magic import ChatPanel\np = ChatPanel()")
    ok(kern, "await _wait(p)")
    yield kern
    ok(kern, "for _x in [v for v in list(globals().values()) if isinstance(v, ChatPanel)]:\n"
             "    _x.close()\n"
             "await _asyncio.sleep(0.05)")


def start_panel_turn(k: Kernel, prompt: str, thread: str = "default") -> None:
    """Send from the panel on ``thread`` (slow model) and return while it streams."""
    ok(k, f"_n = p.new_thread({thread!r}) if {thread!r} not in _m.session.store.names() else None\n"
          f"p.refresh(); p.thread.value = {thread!r}\n"
          f"p.model.value = 'sandbox/slow'; p.prompt.value = {prompt!r}\n"
          "assert p.send() is not None")
    # the task has begun its turn: the thread is busy and the kernel is idle while it streams
    assert value(k, f"[p.busy, _m.session.store.is_busy({thread!r})]") == [True, True]


def test_same_thread_cell_is_refused_while_the_panel_streams(panel: Kernel, sandbox: Sandbox) -> None:
    k = panel
    ok(k, "%%chat\nbefore the panel", cell_id="cc-0")
    sandbox.clear_requests()
    prompt = f"{PANEL_WORDS} rate=20"
    start_panel_turn(k, prompt)
    r = k.run("%%chat\nfrom a cell meanwhile", cell_id="cc-1")
    assert r.status == "ok" and not r.of_type("error"), "a card, not a traceback"
    bundle = next(o["data"] for o in r.outputs() if "text/markdown" in o.get("data", {}))
    for mime in ("text/html", "text/plain"):
        assert "ThreadBusyError" in bundle[mime] and "already answering" in bundle[mime]
    assert "pw" not in json.dumps([m["content"] for m in r.messages]), "nothing of the panel's answer in the cell"
    # a second panel on the same thread is refused too, with a message in its status line
    ok(k, "p2 = ChatPanel(thread='default')\np2.prompt.value = 'second panel'\n"
          "assert p2.send() is None\nprint(p2.status.value)")
    assert "already answering" in value(k, "p2.status.value")
    ok(k, "await _wait(p)")
    assert turns(k, "default") == [["before the panel", "ok", "before the panel"], [prompt, "ok", prompt]]
    reqs = [r for r in sandbox.requests if r["path"].endswith("/chat/completions")]
    assert [r["body"]["messages"][-1]["content"] for r in reqs] == [prompt], "the refused turns sent nothing"
    assert sent(sandbox, prompt) == ["before the panel", "before the panel", prompt]
    html = value(k, "p.transcript_html()")
    assert "from a cell meanwhile" not in html and "second panel" not in html
    # and the thread works again from a cell, with the panel's turn in its context
    sandbox.clear_requests()
    ok(k, "%%chat\nafter the panel", cell_id="cc-2")
    assert sent(sandbox, "after the panel") == ["before the panel", "before the panel", prompt, prompt,
                                                "after the panel"]


def test_other_threads_interleave_without_losing_or_mixing_turns(panel: Kernel, sandbox: Sandbox) -> None:
    k = panel
    sandbox.clear_requests()
    p1, p2 = f"{PANEL_WORDS} first rate=20", f"{PANEL_WORDS} second rate=20"
    start_panel_turn(k, p1, thread="side")
    cells = []
    for i in range(1, 4):  # fast cells on the default thread while the panel streams on "side"
        r = ok(k, f"%%chat\ncell {i}", cell_id=f"ct-{i}")
        cells.append(r)
    # a slow cell too: the panel's task waits while it runs, then carries on
    r = ok(k, "%%chat -m sandbox/slow\nslow cell words go here rate=10", cell_id="ct-slow")
    cells.append(r)
    assert value(k, "p.busy") in (True, False)
    ok(k, "await _wait(p)")
    start_panel_turn(k, p2, thread="side")
    ok(k, "%%chat\ncell 4", cell_id="ct-4")
    ok(k, "await _wait(p)")
    assert turns(k, "side") == [[p1, "ok", p1], [p2, "ok", p2]]
    default = ["cell 1", "cell 2", "cell 3", "slow cell words go here rate=10", "cell 4"]
    assert turns(k, "default") == [[t, "ok", t] for t in default]
    # each request carried its own thread only, in order
    assert sent(sandbox, "cell 3") == ["cell 1", "cell 1", "cell 2", "cell 2", "cell 3"]
    assert sent(sandbox, p1) == [p1] and sent(sandbox, p2) == [p1, p1, p2]
    assert sent(sandbox, "cell 4")[-3:] == ["slow cell words go here rate=10"] * 2 + ["cell 4"]
    # nothing of the panel's answer reached the cells' outputs, nothing of the cells the panel's transcript
    assert "pw" not in json.dumps([m["content"] for r in cells for m in r.messages])
    html = value(k, "p.transcript_html()")
    assert "cell 1" not in html and p2.split()[-2] in html


def test_interrupting_a_cell_leaves_the_panel_streaming(panel: Kernel, sandbox: Sandbox) -> None:
    """The stop button of a cell (SIGINT to the kernel) ends the cell's turn, not the panel's."""
    k = panel
    prompt = f"{PANEL_WORDS} rate=20"
    start_panel_turn(k, prompt, thread="side")
    words = " ".join(f"cw{i}" for i in range(100))
    msg_id = k.send(f"%%chat -m sandbox/slow\n{words} rate=20", cell_id="ci-1")
    seen = []
    for _ in range(500):  # bounded: until the cell shows some answer
        m = k.kc.get_iopub_msg(timeout=10)
        if m["parent_header"].get("msg_id") == msg_id:
            seen.append(m)
            if m["msg_type"] == "update_display_data" and "cw3" in json.dumps(m["content"]):
                break
    k.interrupt()
    r = k.collect(msg_id, timeout=30)
    assert r.status == "error" and "interrupted" in r.of_type("error")[0]["content"]["traceback"][0]
    ok(k, "await _wait(p)")
    assert turns(k, "side") == [[prompt, "ok", prompt]], "the panel's turn completed untouched"
    (cell_turn,) = turns(k, "default")
    assert cell_turn[1] == "interrupted" and cell_turn[2].startswith("cw0 cw1 cw2") and "cw99" not in cell_turn[2]


def test_config_change_mid_panel_stream(panel: Kernel, sandbox: Sandbox) -> None:
    """A cell that changes the client's settings (rebuilding the shared client) while the panel streams."""
    k = panel
    prompt = f"{PANEL_WORDS} rate=20"
    start_panel_turn(k, prompt, thread="side")
    ok(k, "%config ChatMagics.max_retries = 1\n%config ChatMagics.read_timeout = 120.0")
    ok(k, "%%chat\nwith new settings", cell_id="cfg-1")
    ok(k, "await _wait(p)")
    assert turns(k, "side") == [[prompt, "ok", prompt]]
    assert turns(k, "default") == [["with new settings", "ok", "with new settings"]]
    ok(k, "%config ChatMagics.max_retries = 2\n%config ChatMagics.read_timeout = 300.0")
