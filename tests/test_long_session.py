"""Long sessions (issue 7): 500 turns in one kernel, and ``%chat history`` of a 100-turn thread.

Figures (RSS growth, per-turn overhead early vs late, history render time) are printed by
``benchmarks/soak.py``; this test checks the behaviour: every turn lands in order, each request carries the
whole thread, and the history of a long thread renders completely.
"""

from __future__ import annotations

import time

import pytest
from _kernel import Kernel, value

from or_magic.sandbox import Sandbox

pytestmark = pytest.mark.kernel

TURNS = 500
M = "get_ipython().magics_manager.registry['ChatMagics']"


@pytest.mark.timeout(900)
def test_five_hundred_turns_in_one_kernel(kern: Kernel, sandbox: Sandbox) -> None:
    assert kern.run("%config ChatMagics.max_retries = 0").status == "ok"
    for i in range(1, TURNS + 1):
        if i == TURNS:
            sandbox.clear_requests()
        r = kern.run(f"%%chat\nturn {i}", cell_id=f"long-{i}")
        assert r.status == "ok" and not r.of_type("error"), (i, r.text()[-500:])
        if i in (1, 250, TURNS):  # spot checks of what the user sees
            bundles = [o["data"] for o in r.outputs() if "text/markdown" in o.get("data", {})]
            assert len(bundles) == 1 and bundles[0]["text/plain"].startswith(f"turn {i}")
    assert value(kern, f"[t.user for t in {M}.session.store.get().turns]") == [f"turn {i}" for i in
                                                                               range(1, TURNS + 1)]
    assert value(kern, f"sorted({{t.status for t in {M}.session.store.get().turns}})") == ["ok"]
    assert value(kern, f"{M}.session.store.is_busy()") is False
    # the last request carried the whole thread: 499 earlier turns (user + assistant) and the new message
    (last,) = [r for r in sandbox.requests if r["path"].endswith("/chat/completions")]
    messages = last["body"]["messages"]
    assert len(messages) == 2 * (TURNS - 1) + 1
    assert [m["content"] for m in messages[::2]] == [f"turn {i}" for i in range(1, TURNS + 1)]

    # a 100-turn thread: its history renders completely, in order, and quickly
    assert kern.run(f"_s = {M}.session.store\n_s.get('h100').turns = list(_s.get().turns[:100])").status == "ok"
    t0 = time.monotonic()
    r = kern.run("%chat history h100", timeout=120)
    took = time.monotonic() - t0
    assert r.status == "ok" and not r.of_type("error")
    plain = "\n".join(o["data"]["text/plain"] for o in r.outputs() if "data" in o)
    html = "\n".join(o["data"]["text/html"] for o in r.outputs() if "data" in o)
    assert "turn 100" in plain and "turn 100" in html and "turn 101" not in plain
    assert plain.count("--- ") == 100 and "--- 100. sandbox/echo" in plain
    positions = [plain.index(f"> turn {i}\n") for i in range(1, 101)]
    assert positions == sorted(positions)
    assert took < 30, f"%chat history of 100 turns took {took:.1f} s"  # sanity bound; figures: benchmarks/soak.py
