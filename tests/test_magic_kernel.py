"""%%chat through a real kernel against the sandbox: streaming, state, errors, interrupts, options."""

from __future__ import annotations

import json
import time

import pytest
from _kernel import FAKE_KEY, Kernel

from or_magic.sandbox import Sandbox

pytestmark = pytest.mark.kernel


def chat_requests(sandbox: Sandbox) -> list[dict]:
    return [r for r in sandbox.requests if r["path"].endswith("/chat/completions")]


def final_bundle(r) -> dict:
    """The main output of a finished %%chat cell: the bundle with text/markdown."""
    bundles = [o["data"] for o in r.outputs() if "text/markdown" in o.get("data", {})]
    assert len(bundles) == 1, r.outputs()
    return bundles[0]


def test_streams_then_leaves_one_clean_bundle(kern: Kernel, sandbox: Sandbox) -> None:
    sandbox.clear_requests()
    prompt = " ".join(f"word{i}" for i in range(60)) + " rate=40"
    r = kern.run(f"%%chat -m sandbox/slow\n{prompt}", cell_id="c-stream")
    assert r.status == "ok", r.text()
    updates = r.of_type("update_display_data", "display_data")
    assert len(updates) >= 5, "the answer should appear progressively"
    bundle = final_bundle(r)
    assert bundle["text/plain"].startswith(prompt)
    assert "word59" in bundle["text/html"] and "word59" in bundle["text/markdown"]
    assert "sandbox" in bundle["text/html"].lower()  # the footer names the sandbox
    assert not r.of_type("error")
    body = chat_requests(sandbox)[-1]["body"]
    assert body["stream"] is True and body["messages"][-1] == {"role": "user", "content": prompt}


def test_follow_up_carries_context_and_rerun_replaces_turn(kern: Kernel, sandbox: Sandbox) -> None:
    for cell, text in (("c1", "first"), ("c2", "second"), ("c3", "third")):
        assert kern.run(f"%%chat\n{text}", cell_id=cell).status == "ok"
    sandbox.clear_requests()
    r = kern.run("%%chat\nsecond, edited", cell_id="c2")
    assert r.status == "ok"
    sent = chat_requests(sandbox)[-1]["body"]["messages"]
    assert [m["content"] for m in sent] == ["first", "first", "second, edited"]
    r = kern.run("_s = get_ipython().magics_manager.registry['ChatMagics'].session.store.get()\n"
                 "print([(t.user, t.stale) for t in _s.turns])")
    assert "[('first', False), ('second, edited', False), ('third', True)]" in r.text()


def test_without_cell_id_runs_append(kern: Kernel) -> None:
    kern.run("%%chat\nsame")
    kern.run("%%chat\nsame")
    r = kern.run("print(len(get_ipython().magics_manager.registry['ChatMagics'].session.store.get().turns))")
    assert r.text().strip().endswith("2")


def test_named_threads_new_and_once(kern: Kernel, sandbox: Sandbox) -> None:
    kern.run("%%chat --chat side\nin side", cell_id="s1")
    kern.run("%%chat\nin default", cell_id="d1")
    sandbox.clear_requests()
    kern.run("%%chat --chat side\nmore side", cell_id="s2")
    assert [m["content"] for m in chat_requests(sandbox)[-1]["body"]["messages"]] == ["in side", "in side",
                                                                                       "more side"]
    kern.run("%%chat --once\nalone", cell_id="o1")
    assert [m["content"] for m in chat_requests(sandbox)[-1]["body"]["messages"]] == ["alone"]
    kern.run("%%chat --chat side --new\nfresh", cell_id="s3")
    assert [m["content"] for m in chat_requests(sandbox)[-1]["body"]["messages"]] == ["fresh"]
    r = kern.run("%chat threads")
    assert "side" in r.text() and "default" in r.text()


def test_out_binds_answer_and_system_prompt(kern: Kernel, sandbox: Sandbox) -> None:
    sandbox.clear_requests()
    r = kern.run("%%chat -o answer -s 'be terse'\nbind me", cell_id="o-1")
    assert r.status == "ok"
    assert "'bind me'" in kern.run("answer").text()
    assert chat_requests(sandbox)[-1]["body"]["messages"][0] == {"role": "system", "content": "be terse"}
    kern.run("%%chat\nnext", cell_id="o-2")
    assert chat_requests(sandbox)[-1]["body"]["messages"][0] == {"role": "system", "content": "be terse"}


@pytest.mark.parametrize("line", ["-t 9", "--reasoning extreme", "--max-tokens 0", "--bogus", "-s 'unclosed"])
def test_bad_options_send_nothing_change_nothing(kern: Kernel, sandbox: Sandbox, line: str) -> None:
    kern.run("%%chat\nkeep me", cell_id="k1")
    sandbox.clear_requests()
    r = kern.run(f"%%chat {line}\nhello", cell_id="k2")
    assert r.status == "error"
    # IPython shows a UsageError as one stderr line, not a traceback
    stderr = [m["content"]["text"] for m in r.of_type("stream") if m["content"]["name"] == "stderr"]
    assert len(stderr) == 1 and stderr[0].startswith("UsageError:") and stderr[0].count("\n") <= 1
    assert chat_requests(sandbox) == []
    turns = kern.run("print(len(get_ipython().magics_manager.registry['ChatMagics'].session.store.get().turns))")
    assert turns.text().strip().endswith("1")


def test_dry_run_shows_exact_request_and_sends_nothing(kern: Kernel, sandbox: Sandbox) -> None:
    kern.run("%%chat\nbefore", cell_id="d0")
    sandbox.clear_requests()
    r = kern.run("""%%chat --dry-run -t 0.4 --param provider='{"sort": "price"}'\nwhat would go""", cell_id="d1")
    assert r.status == "ok"
    assert chat_requests(sandbox) == []
    plain = "\n".join(o["data"]["text/plain"] for o in r.outputs() if "data" in o)
    body = json.loads(plain[plain.index("{"):])
    assert body["temperature"] == 0.4 and body["provider"] == {"sort": "price"}
    assert [m["content"] for m in body["messages"]] == ["before", "before", "what would go"]
    assert FAKE_KEY not in r.text()


STATUSES = [400, 401, 402, 403, 404, 408, 413, 422, 429, 500, 502, 503, 524, 529, 418]


@pytest.mark.parametrize("status", STATUSES)
def test_error_status_renders_card_and_keeps_thread(kern: Kernel, sandbox: Sandbox, status: int) -> None:
    kern.run("%config ChatMagics.max_retries = 0")
    kern.run("%%chat\nkept", cell_id="e0")
    r = kern.run(f"%%chat -m sandbox/error-{status}\nfail please", cell_id="e1")
    assert r.status == "ok" and not r.of_type("error"), "no traceback"
    html = final_bundle(r)["text/html"]
    assert str(status) in html and "ResponseError" in html or "OpenRouterDefaultError" in html
    assert "Traceback" not in r.text()
    r = kern.run("%%chat\nstill works", cell_id="e2")
    assert r.status == "ok"
    state = kern.run("print([t.user for t in get_ipython().magics_manager.registry['ChatMagics']"
                     ".session.store.get().turns])")
    assert "['kept', 'still works']" in state.text()
    kern.run("%config ChatMagics.max_retries = 2")


@pytest.mark.parametrize("shape", ["documented", "string-code", "raw-metadata", "empty-choices", "bare",
                                   "finish-only"])
def test_midstream_error_keeps_partial_answer(kern: Kernel, shape: str) -> None:
    r = kern.run(f"%%chat -m sandbox/midstream-{shape}\ngo", cell_id="m1")
    assert r.status == "ok" and not r.of_type("error")
    bundle = final_bundle(r)
    assert "StreamError" in bundle["text/html"]
    if shape != "bare":  # the text that streamed before the failure stays, marked as partial
        assert bundle["text/plain"].startswith("This partial answer was cut off")
        assert "partial — the answer above stopped" in bundle["text/html"]
    r = kern.run("print(len(get_ipython().magics_manager.registry['ChatMagics'].session.store.get().turns))")
    assert r.text().strip().endswith("0"), "a failed turn never enters the context"


def test_last_error_details_never_show_the_key(kern: Kernel) -> None:
    kern.run("%config ChatMagics.max_retries = 0")
    kern.run("%%chat -m sandbox/error-401\nx", cell_id="k1")
    r = kern.run("%chat error")
    assert "UnauthorizedResponseError" in r.text() and "401" in r.text()
    assert FAKE_KEY not in r.text()
    kern.run("%config ChatMagics.max_retries = 2")


def test_raise_on_error_fails_the_cell_in_one_line(kern: Kernel) -> None:
    kern.run("%config ChatMagics.raise_on_error = True\n%config ChatMagics.max_retries = 0")
    r = kern.run("%%chat -m sandbox/error-402\nx", cell_id="r1")
    assert r.status == "error"
    err = r.of_type("error")[0]["content"]
    assert len(err["traceback"]) == 1 and "PaymentRequiredResponseError" in err["traceback"][0]
    kern.run("%config ChatMagics.raise_on_error = False\n%config ChatMagics.max_retries = 2")


def test_interrupt_keeps_partial_answer_marked(kern: Kernel) -> None:
    words = " ".join(f"w{i}" for i in range(200))
    msg_id = kern.send(f"%%chat -m sandbox/slow\n{words} rate=20", cell_id="i1")
    # wait until some answer has been displayed, then interrupt like the stop button does
    deadline = time.monotonic() + 30
    seen = []
    while time.monotonic() < deadline:
        m = kern.kc.get_iopub_msg(timeout=10)
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        seen.append(m)
        if m["msg_type"] == "update_display_data" and "w5" in json.dumps(m["content"]):
            break
    t_int = time.monotonic()
    kern.interrupt()
    from _kernel import Execution
    r = kern.collect(msg_id, timeout=30)
    r.messages = seen + r.messages
    assert time.monotonic() - t_int < 5
    assert r.status == "error"
    err = r.of_type("error")[0]["content"]
    assert len(err["traceback"]) == 1 and "interrupted" in err["traceback"][0]
    bundle = final_bundle(r)
    assert "w5" in bundle["text/plain"] and "w199" not in bundle["text/plain"]
    assert "interrupted" in bundle["text/html"].lower()
    state = kern.run("_t = get_ipython().magics_manager.registry['ChatMagics'].session.store.get().turns\n"
                     "print(len(_t), _t[-1].status)")
    assert "1 interrupted" in state.text()
    assert kern.run("%%chat\nafter", cell_id="i2").status == "ok"
    assert Execution  # imported for the type of r


def test_history_usage_export_load(kern: Kernel, tmp_path) -> None:
    kern.run("%%chat\nalpha", cell_id="h1")
    kern.run("%%chat\nbeta", cell_id="h2")
    assert "alpha" in kern.run("%chat history").text()
    usage = kern.run("%chat usage").text()
    assert "sandbox/echo" in usage and "total" in usage
    path = tmp_path / "conv.json"
    assert kern.run(f"%chat export {path}").status == "ok"
    kern.run("%chat reset")
    assert "no turns" in kern.run("%chat history").text()
    kern.run(f"%chat load {path}")
    assert "beta" in kern.run("%chat history").text()
    assert FAKE_KEY not in path.read_text()


def test_models_and_config(kern: Kernel) -> None:
    r = kern.run("%chat models sandbox")
    assert "sandbox/echo" in r.text() and "sandbox/image" in r.text()
    r = kern.run("%chat config")
    assert "model" in r.text() and FAKE_KEY not in r.text() and "api key" in r.text()


def test_reasoning_and_images(kern: Kernel) -> None:
    r = kern.run("%%chat -m sandbox/reasoning\nthink", cell_id="r1")
    html = final_bundle(r)["text/html"]
    assert "<details" in html and "Reasoning" in html
    r = kern.run("%%chat -m sandbox/image\ndraw", cell_id="im1")
    assert any("image/png" in o.get("data", {}) for o in r.outputs())


def test_one_line_chat_and_unload(kern: Kernel) -> None:
    r = kern.run("%chat quick question", cell_id="q1")
    assert "quick question" in r.text()
    assert kern.run("%unload_ext or_magic").status == "ok"
    r = kern.run("%%chat\nx")
    assert r.status == "error" and "chat" in r.text()
    assert kern.run("%load_ext or_magic\n%config ChatMagics.model = 'sandbox/echo'").status == "ok"


def test_key_never_in_any_message(kern: Kernel) -> None:
    r = kern.run("%%chat -m sandbox/error-401\nx", cell_id="z1")
    assert FAKE_KEY not in json.dumps(r.messages, default=str)


def test_line_magic_keeps_what_the_cell_printed(kern: Kernel) -> None:
    r = kern.run("print('before')\n%chat -m sandbox/slow one two three four five rate=50\nprint('after')",
                 cell_id="p1")
    assert r.status == "ok"
    text = r.text()
    assert "before" in text and "after" in text and "one two three four five" in text
    bundles = [o for o in r.outputs() if "text/markdown" in o.get("data", {})]
    assert len(bundles) == 1
    # the streaming outputs other than the reused one are blanked, not left with stale text
    leftovers = [o for o in r.outputs() if o.get("data", {}).get("text/html") and o not in bundles]
    assert leftovers == []


def test_two_chats_in_one_cell_both_stay(kern: Kernel) -> None:
    r = kern.run("get_ipython().run_line_magic('chat', '--once first answer')\n"
                 "get_ipython().run_line_magic('chat', '--once second answer')", cell_id="p2")
    plain = [o["data"]["text/plain"] for o in r.outputs() if "text/markdown" in o.get("data", {})]
    assert len(plain) == 2 and plain[0].startswith("first answer") and plain[1].startswith("second answer")


def test_json_on_the_line_arrives_intact_without_quotes(kern: Kernel, sandbox: Sandbox) -> None:
    sandbox.clear_requests()
    r = kern.run('%%chat --param provider={"order":["a","b"], "allow_fallbacks": false} -s "be terse, please"\n'
                 "hello", cell_id="json-bare")
    assert r.status == "ok" and not r.of_type("error"), r.text()
    body = chat_requests(sandbox)[-1]["body"]
    assert body["provider"] == {"order": ["a", "b"], "allow_fallbacks": False}
    assert body["messages"][0] == {"role": "system", "content": "be terse, please"}


def test_subcommand_arguments_are_quoted_like_options(kern: Kernel) -> None:
    assert kern.run("%%chat --chat 'two words'\nin a named thread", cell_id="q-1").status == "ok"
    history = kern.run("%chat history 'two words'").text()
    assert "in a named thread" in history and "no turns" not in history
    assert "in a named thread" in kern.run('%chat history "two words"').text()


@pytest.mark.parametrize("setting", ["temperature = 7", "read_timeout = 0", "read_timeout = -1",
                                     "update_rate = 1e9", "max_tokens = -3", "budget = -1", "top_p = 2",
                                     "max_retries = 99", "model = 'has space'"])
def test_config_is_validated_at_assignment(kern: Kernel, setting: str) -> None:
    name = setting.split()[0]
    before = kern.run(f"print(repr(get_ipython().magics_manager.registry['ChatMagics'].{name}))").text().strip()
    r = kern.run(f"%config ChatMagics.{setting}")
    assert f"'{name}'" in r.text() or f"ChatMagics.{name}" in r.text(), r.text()  # a message naming the setting
    after = kern.run(f"print(repr(get_ipython().magics_manager.registry['ChatMagics'].{name}))").text().strip()
    assert after == before  # refused: the old value stays
