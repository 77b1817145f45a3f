"""--compare through a real kernel and the sandbox: the requests on the wire, the row, the thread."""

from __future__ import annotations

import html
import re

import pytest
from _kernel import FAKE_KEY, Kernel

from or_magic.sandbox import Sandbox

pytestmark = pytest.mark.kernel


def chats(sandbox: Sandbox) -> list[dict]:
    return [r for r in sandbox.requests if r["path"].endswith("/chat/completions")]


def thread_texts(kern: Kernel, name: str = "default") -> list[str]:
    r = kern.run(f"print([t.text for t in _m.session.store.get({name!r}).turns])")
    return eval(r.text().strip().splitlines()[-1])  # noqa: S307 - our own repr of a list of str


def test_compare_sends_both_at_once_and_keeps_nothing(kern: Kernel, sandbox: Sandbox) -> None:
    kern.run("%%chat\nfirst turn", cell_id="p1")
    sandbox.clear_requests()
    r = kern.run("%%chat --compare sandbox/paced-1000,sandbox/paced-500\nwhich is faster?", cell_id="c1")
    assert r.status == "ok", r.text()
    sent = chats(sandbox)
    assert sorted(x["body"]["model"] for x in sent) == ["sandbox/paced-1000", "sandbox/paced-500"]
    assert abs(sent[0]["time"] - sent[1]["time"]) < 0.5, "the second request went out while the first streamed"
    for x in sent:  # the same messages, the thread's context included
        assert [m["content"] for m in x["body"]["messages"]][-1] == "which is faster?"
        assert len(x["body"]["messages"]) == 3
    outs = r.outputs()
    assert len(outs) == 1, "one output holds the whole row"
    html = outs[0]["data"]["text/html"]
    assert "flex-wrap:wrap" in html and "min-width" in html
    assert html.count("or-magic-compare-column") == 2 and "sandbox/paced-500" in html
    assert "no answer continues the thread" in html
    assert thread_texts(kern) == ["first turn"]
    assert FAKE_KEY not in r.text()


def test_each_column_has_its_own_full_footer(kern: Kernel, sandbox: Sandbox) -> None:
    """Provider, tokens, cost, first-token time and speed under each answer, for that answer's model."""
    r = kern.run("%%chat --compare sandbox/paced-500,sandbox/paced-1000 --once\nhow fast?", cell_id="cf")
    assert r.status == "ok", r.text()
    columns = r.outputs()[0]["data"]["text/html"].split("or-magic-compare-column")[1:]
    assert len(columns) == 2
    for model, column in zip(("sandbox/paced-500", "sandbox/paced-1000"), columns, strict=True):
        footer = html.unescape(re.sub(r"<[^>]+>", "", column.split("or-magic-footer", 1)[1]))
        assert f"{model} via Sandbox" in footer, footer
        assert re.search(r"\d+→\d+ tok", footer) and re.search(r"\$\d", footer), footer
        first = float(re.search(r"first token ([\d.]+) s", footer).group(1))
        assert 0 < first < 1.0, footer  # the first token came long before the paced answer ended
        assert re.search(r"[\d.]+ tok/s", footer), footer


def test_keep_makes_one_answer_the_turn_and_rerun_replaces_it(kern: Kernel, sandbox: Sandbox) -> None:
    r = kern.run("%%chat --compare sandbox/echo,sandbox/paced-500 --keep sandbox/echo\nkeep me", cell_id="k1")
    assert r.status == "ok", r.text()
    assert "sandbox/echo&#x27;s answer continues the thread" in r.html() or \
        "sandbox/echo's answer continues the thread" in r.html()
    assert thread_texts(kern) == ["keep me"]
    meta = r.outputs()[0].get("metadata", {})
    assert meta.get("or_magic", {}).get("turn", {}).get("text") == "keep me", "saved for %chat restore"
    again = kern.run("%%chat --compare sandbox/echo,sandbox/paced-500 --keep sandbox/echo\nkeep me again",
                     cell_id="k1")
    assert again.status == "ok"
    assert thread_texts(kern) == ["keep me again"], "the re-run replaced the cell's turn"
    nxt = kern.run("%%chat\nand then", cell_id="k2")
    assert nxt.status == "ok"
    assert [m["content"] for m in chats(sandbox)[-1]["body"]["messages"]] == ["keep me again", "keep me again",
                                                                            "and then"]


def test_chat_keep_after_a_compare(kern: Kernel) -> None:
    r = kern.run("%%chat --compare sandbox/echo,sandbox/paced-500\nchoose later", cell_id="l1")
    assert r.status == "ok" and thread_texts(kern) == []
    bad = kern.run("%chat keep sandbox/other")
    assert bad.status == "error" and "was not compared" in bad.text()
    ok = kern.run("%chat keep sandbox/paced-500")
    assert ok.status == "ok" and "kept sandbox/paced-500" in ok.text()
    assert len(thread_texts(kern)) == 1 and thread_texts(kern)[0]
    twice = kern.run("%chat keep sandbox/echo")
    assert twice.status == "error" and "already kept" in twice.text()


def test_a_failing_model_does_not_stop_the_other(kern: Kernel, sandbox: Sandbox) -> None:
    sandbox.clear_requests()
    r = kern.run("%%chat --compare sandbox/error-500,sandbox/echo --keep sandbox/error-500\nstill answered",
                 cell_id="f1")
    assert r.status == "ok", r.text()
    html = r.html()
    assert "still answered" in html, "the good model's answer is shown"
    assert "500" in html and "error" in html.lower(), "the failing model has its error card"
    assert "nothing kept" in r.text() and thread_texts(kern) == []


def test_compare_mistakes_and_dry_run(kern: Kernel, sandbox: Sandbox) -> None:
    sandbox.clear_requests()
    for line, words in [("--compare sandbox/echo", "2 to 4 different models"),
                        ("--compare a/b,c/d,e/f,g/h,i/j", "2 to 4"),
                        ("--compare sandbox/echo,sandbox/echo", "different models"),
                        ("--compare sandbox/echo,sandbox/openai --keep x/y", "not one of the compared"),
                        ("--keep sandbox/echo", "goes with --compare")]:
        r = kern.run(f"%%chat {line}\nhello")
        assert r.status == "error" and words in r.text(), (line, r.text())
    dry = kern.run("%%chat --compare sandbox/anthropic,sandbox/openai --dry-run\nhello")
    assert dry.status == "ok" and chats(sandbox) == []
    text = "\n".join(o["data"]["text/plain"] for o in dry.outputs())
    assert '"model": "sandbox/anthropic"' in text and '"model": "sandbox/openai"' in text
    assert text.count('"cache_control"') == 1, "each model gets its own caching decision"


def test_rerun_without_keep_removes_the_turn_an_earlier_run_kept(kern: Kernel, sandbox: Sandbox) -> None:
    kern.run("%%chat\nbefore", cell_id="r0")
    kept = kern.run("%%chat --compare sandbox/echo,sandbox/paced-500 --keep sandbox/echo\nkeep me", cell_id="r1")
    assert kept.status == "ok", kept.text()
    kern.run("%%chat\nafter", cell_id="r2")
    assert thread_texts(kern) == ["before", "keep me", "after"]
    again = kern.run("%%chat --compare sandbox/echo,sandbox/paced-500\nkeep me", cell_id="r1")
    assert again.status == "ok", again.text()
    assert thread_texts(kern) == ["before", "after"], "the re-run keeps nothing, so the earlier kept turn goes"
    r = kern.run("print([t.stale for t in _m.session.store.get().turns])")
    assert r.text().strip().endswith("[False, True]"), "the turn after it was answered with it in context"
    sandbox.clear_requests()
    kern.run("%%chat\nnext", cell_id="r3")
    assert [m["content"] for m in chats(sandbox)[-1]["body"]["messages"]] == ["before", "before", "after",
                                                                            "after", "next"]


def test_terminal_ipython_compares_one_model_after_another(sandbox: Sandbox, tmp_path) -> None:
    import os
    import subprocess
    import sys

    code = ("from IPython.core.interactiveshell import InteractiveShell\n"
            "ip = InteractiveShell.instance()\n"
            "ip.run_line_magic('load_ext', 'or_magic')\n"
            "ip.run_cell_magic('chat', '--compare sandbox/paced-500,sandbox/echo --keep sandbox/echo', 'in turn')\n"
            "m = ip.magics_manager.registry['ChatMagics']\n"
            "print('TURNS', [t.text for t in m.session.store.get().turns])\n")
    env = {**os.environ, "OPENROUTER_BASE_URL": sandbox.url, "OPENROUTER_API_KEY": FAKE_KEY,
           "IPYTHONDIR": str(tmp_path / "ipython")}
    sandbox.clear_requests()
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    sent = chats(sandbox)
    assert [x["body"]["model"] for x in sent] == ["sandbox/paced-500", "sandbox/echo"]
    assert sent[1]["time"] - sent[0]["time"] >= 0.4, "the second model is asked once the first has answered"
    out = run.stdout
    assert out.index("=== sandbox/paced-500 ===") < out.index("=== sandbox/echo ===")
    assert "[compare] sandbox/echo's answer continues the thread" in out
    assert "TURNS ['in turn']" in out
    assert FAKE_KEY not in out + run.stderr
