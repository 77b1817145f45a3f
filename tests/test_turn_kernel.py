"""The turn driver's guarantees through a real kernel and the sandbox (issue 11's defects in the turn):
a cache that cannot be written or read never costs the answer; an interrupt before any answer keeps no
turn; a tool raising SystemExit is a tool error; the budget is checked before every request of a tool
loop; committed turns carry a flat ``reasoning_tokens``; request fields the client does not name pass.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from _kernel import Kernel, value

from or_magic.sandbox import Sandbox

pytestmark = pytest.mark.kernel

MAGICS = "get_ipython().magics_manager.registry['ChatMagics']"


def chats(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests if r["path"].endswith("/chat/completions")]


def final_bundle(r: Any) -> dict[str, str]:
    bundles = [o["data"] for o in r.outputs() if "text/markdown" in o.get("data", {})]
    assert bundles, r.outputs()
    return bundles[-1]


def stderr(r: Any) -> str:
    return "".join(m["content"]["text"] for m in r.of_type("stream") if m["content"]["name"] == "stderr")


@pytest.fixture
def tk(kern: Kernel, sandbox: Sandbox) -> Any:
    yield kern
    kern.run(f"%config ChatMagics.cache = False\n%config ChatMagics.budget = None\n"
             f"%config ChatMagics.max_retries = 2\n{MAGICS}.session.cache_warned = False")


@pytest.mark.parametrize("how", ["a file", "read-only"])
def test_unwritable_cache_never_costs_the_answer(tk: Kernel, sandbox: Sandbox, tmp_path: Path, how: str) -> None:
    target = tmp_path / "cache"
    if how == "a file":
        target.write_text("not a directory")
        setup = ""
    else:  # the process runs as root in CI, where chmod alone cannot refuse a write: patch the write itself
        target.mkdir()
        setup = ("import or_magic.cache as _c, tempfile as _tf\n"
                 "def _ro(*a, **k):\n    raise PermissionError(13, 'Read-only file system')\n"
                 "_c.tempfile = type('T', (), {'mkstemp': staticmethod(_ro)})\n")
    assert tk.run(f"{setup}%config ChatMagics.cache = True\n%config ChatMagics.cache_dir = {str(target)!r}"
                  ).status == "ok"
    r = tk.run("%%chat -o ans\nkeep me please", cell_id="c1")
    assert r.status == "ok" and not r.of_type("error"), r.text()
    assert "keep me please" in final_bundle(r)["text/plain"]
    assert "cannot be written" in stderr(r) and "Traceback" not in stderr(r)
    assert value(tk, "ans") == "keep me please"
    assert value(tk, f"[t.status for t in {MAGICS}.session.store.get().turns]") == ["ok"]
    r2 = tk.run("%%chat\nand again", cell_id="c2")  # warned once per session, the answer still shown
    assert r2.status == "ok" and "and again" in final_bundle(r2)["text/plain"]
    assert stderr(r2) == ""
    if how == "read-only":
        tk.run("import importlib, or_magic.cache as _c; importlib.reload(_c)")


def test_cache_entry_with_wrong_field_types_is_a_miss(tk: Kernel, sandbox: Sandbox, tmp_path: Path) -> None:
    assert tk.run(f"%config ChatMagics.cache = True\n%config ChatMagics.cache_dir = {str(tmp_path)!r}"
                  ).status == "ok"
    assert tk.run("%%chat\nrecorded once", cell_id="w1").status == "ok"
    [entry] = list(tmp_path.glob("*/*.json"))
    data = json.loads(entry.read_text())
    data["result"]["choices"] = "not a list"
    data["result"]["usage"] = {"prompt_tokens": "many"}
    entry.write_text(json.dumps(data))
    sandbox.clear_requests()
    tk.run(f"{MAGICS}.session.store.threads.clear()")
    r = tk.run("%%chat\nrecorded once", cell_id="w1")
    assert r.status == "ok" and not r.of_type("error"), r.text()
    assert "ValidationError" not in json.dumps([m["content"] for m in r.messages])
    assert "recorded once" in final_bundle(r)["text/plain"]
    assert len(chats(sandbox)) == 1  # a miss: asked the model again


def _interrupt_after(k: Kernel, code: str, cell_id: str, seconds: float) -> Any:
    msg_id = k.send(code, cell_id=cell_id)
    time.sleep(seconds)
    k.interrupt()
    return k.collect(msg_id, timeout=30)


@pytest.mark.parametrize("where", ["before the first token", "in a retry wait"])
def test_interrupt_before_any_answer_keeps_nothing(tk: Kernel, sandbox: Sandbox, where: str) -> None:
    assert tk.run("%%chat\nfirst", cell_id="n0").status == "ok"
    if where == "before the first token":
        code = "%%chat\nnothing yet delay=30"
    else:
        tk.run("%config ChatMagics.max_retries = 3")
        code = "%%chat -m sandbox/error-429\nwait retry_after=8"
    r = _interrupt_after(tk, code, "n1", 1.5)
    assert r.status == "error"
    [err] = r.of_type("error")
    assert "nothing was kept" in err["content"]["traceback"][0]
    assert "partial answer" not in err["content"]["traceback"][0]
    card = final_bundle(r)
    assert "nothing was kept" in card["text/plain"] and "answer above is partial" not in card["text/plain"]
    assert value(tk, f"[t.text for t in {MAGICS}.session.store.get().turns]") == ["first"]
    sandbox.clear_requests()
    assert tk.run("%%chat\nnext", cell_id="n2").status == "ok"
    sent = chats(sandbox)[-1]["body"]["messages"]
    assert [m["content"] for m in sent] == ["first", "first", "next"]  # no empty assistant message


def test_interrupt_with_once_says_the_partial_answer_is_not_kept(tk: Kernel) -> None:
    words = " ".join(f"w{i}" for i in range(300))
    r = _interrupt_after(tk, f"%%chat -m sandbox/slow --once\n{words} rate=20", "o1", 2.0)
    [err] = r.of_type("error")
    assert "not kept" in err["content"]["traceback"][0] and "is kept" not in err["content"]["traceback"][0]
    assert value(tk, f"len({MAGICS}.session.store.get().turns)") == 0


def test_tool_raising_system_exit_is_a_tool_error(tk: Kernel, sandbox: Sandbox) -> None:
    tk.run("def add(a: int, b: int) -> int:\n    \"\"\"Add.\"\"\"\n    raise SystemExit(3)\n")
    r = tk.run("%%chat -m sandbox/tools --tools add\nAdd two numbers", cell_id="s1")
    assert r.status == "ok" and not r.of_type("error"), r.text()
    html = final_bundle(r)["text/html"]
    assert "SystemExit" in html
    tool_msg = chats(sandbox)[-1]["body"]["messages"][-1]
    assert tool_msg["role"] == "tool" and "SystemExit" in tool_msg["content"]


def test_budget_is_checked_before_each_request_of_a_tool_loop(tk: Kernel, sandbox: Sandbox) -> None:
    tk.run("def add(a: int, b: int) -> int:\n    \"\"\"Add.\"\"\"\n    return a + b\n")
    # the first request fits the budget; the spend it reports does not leave room for a second one
    tk.run(f"{MAGICS}.session.spent = 0.0\n%config ChatMagics.budget = 0.0\n"
           "import or_magic.session as _s\n_orig_est = _s.Session.estimate_cost\n"
           "_s.Session.estimate_cost = lambda self, p, m: 0.0 if len(m) == 1 else 1.0")
    sandbox.clear_requests()
    r = tk.run("%%chat -m sandbox/tools --tools add\nkeep calling calls=3", cell_id="b1")
    tk.run("_s.Session.estimate_cost = _orig_est")
    assert len(chats(sandbox)) == 1
    assert "BudgetExceededError" in final_bundle(r)["text/html"]


def test_committed_turns_store_flat_reasoning_tokens(tk: Kernel) -> None:
    assert tk.run("%%chat -m sandbox/reasoning\nthink", cell_id="r1").status == "ok"
    usage = value(tk, f"{MAGICS}.session.store.get().turns[-1].usage")
    assert isinstance(usage.get("reasoning_tokens"), int) and usage["reasoning_tokens"] > 0


def test_unknown_request_fields_pass_through(tk: Kernel, sandbox: Sandbox) -> None:
    sandbox.clear_requests()
    r = tk.run("%%chat --param 'usage={\"include\":true}' --param 'future_field=7'\nhello", cell_id="u1")
    assert r.status == "ok" and not r.of_type("error"), r.text()
    body = chats(sandbox)[-1]["body"]
    assert body["usage"] == {"include": True} and body["future_field"] == 7
