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


# -- 2. the key never enters a request, turn, metadata, history, dry run -------------------------
REFUSED_PATHS = ["%%chat -s $k\nhello", "%%chat --param user=$k\nhello", "%%chat --stop $k\nhello",
                 "%%chat\nplease keep $k", "%chat please keep $k", "%%chat -o $k\nhello",
                 "%%chat --dry-run\nplease keep $k", "%chat fix --param user=$k"]


def assert_no_key(text: str, key: str) -> None:
    assert key not in text and "sk-or-" not in text, text


@pytest.mark.parametrize("key", [FAKE_KEY, OTHER_KEY], ids=["key-in-use", "other-sk-or"])
def test_a_key_in_a_variable_is_refused_on_every_path(kern: Kernel, sandbox: Sandbox, key: str) -> None:
    kern.run(f"k = {key!r}")
    sandbox.clear_requests()
    for n, cell in enumerate(REFUSED_PATHS):
        r = kern.run(cell, cell_id=f"key{n}")
        assert "holds an API key" in one_line_error(r), cell
        assert_no_key(r.text(), key)
        assert_no_key(json.dumps(r.messages, default=str), key)
    assert chats(sandbox) == []
    assert kernel_value(kern, "sum(len(t.turns) for t in _m.session.store.threads.values())") == 0


def test_the_key_set_with_chat_key_is_refused_too(kern: Kernel, sandbox: Sandbox) -> None:
    secret = "plain-secret-without-a-prefix-1234"
    kern.run(f"_m = get_ipython().magics_manager.registry['ChatMagics']\n_m.session.api_key = {secret!r}\n"
             f"k = {secret!r}")
    try:
        sandbox.clear_requests()
        for cell in ("%%chat -s $k\nhello", "%%chat\nplease keep $k"):
            r = kern.run(cell, cell_id="own")
            assert "holds an API key" in one_line_error(r) and secret not in r.text()
        assert chats(sandbox) == []
    finally:
        kern.run("_m.session.api_key = None")


@pytest.mark.parametrize("key", [FAKE_KEY, OTHER_KEY], ids=["key-in-use", "other-sk-or"])
def test_a_key_inside_a_context_variable_is_masked(kern: Kernel, sandbox: Sandbox, key: str) -> None:
    kern.run(f"cfg = {{'api_key': {key!r}, 'region': 'eu-west'}}")
    dry = kern.run("%%chat --context cfg --dry-run\nwhat is configured?", cell_id="ctx0")
    assert "eu-west" in dry.text() and "[redacted]" in dry.text()
    assert_no_key(dry.text(), key)
    sandbox.clear_requests()
    r = kern.run("%%chat --chat cfg --context cfg\nwhat is configured?", cell_id="ctx1")
    assert r.status == "ok" and "eu-west" in r.text()
    assert_no_key(json.dumps(r.messages, default=str), key)  # the saved output's metadata included
    assert all(key not in json.dumps(c["body"]) for c in chats(sandbox))
    history = kern.run("%chat history cfg")
    assert "eu-west" in history.text()
    assert_no_key(history.text(), key)


# -- 3. %reload_ext keeps the threads, the sandbox and the settings; 4. getting out of the sandbox ----
def test_reload_keeps_threads_sandbox_and_settings_then_sandbox_off_leaves(kern: Kernel, sandbox: Sandbox) -> None:
    kern.run("%config ChatMagics.model = 'openai/gpt-4o-mini'")
    kern.run("%%chat --chat keep -m sandbox/echo\nremember me", cell_id="rl1")
    on = kern.run("%chat sandbox")
    assert "offline SANDBOX" in on.text() and "sandbox/echo" in on.text()
    kern.run("%config ChatMagics.update_rate = 4.0")
    reloaded = kern.run("%reload_ext or_magic")
    assert reloaded.status == "ok" and "kept 1 threads (1 turns)" in reloaded.text()
    assert "still on the offline SANDBOX" in reloaded.text()
    assert users(kern, "keep") == ["remember me"]
    assert kernel_value(kern, "[_m.session.on_sandbox, _m.model, _m.update_rate]") == [True, "sandbox/echo", 4.0]
    sandbox.clear_requests()
    kern.run("%%chat --chat keep\nstill offline?", cell_id="rl2")
    assert chats(sandbox) == []  # answered by the kernel's own sandbox, not the configured server
    off = kern.run("%chat sandbox off")
    assert "left the offline sandbox" in off.text() and sandbox.url in off.text()
    assert "openai/gpt-4o-mini" in off.text()
    assert kernel_value(kern, "[_m.session.on_sandbox, _m.model]") == [False, "openai/gpt-4o-mini"]
    kern.run("%%chat --chat keep -m sandbox/echo\nback on the configured server", cell_id="rl3")
    assert len(chats(sandbox)) == 1
    assert "nothing changed" in kern.run("%chat sandbox off").text()


def test_chat_key_without_stdin_is_one_line(kern: Kernel) -> None:
    r = kern.run("%chat key")  # the test kernel has no stdin, like a headless run
    assert "headless" in one_line_error(r)


# -- 5. subcommand mistakes ------------------------------------------------------------------------
def test_subcommand_mistakes_are_one_line_and_send_nothing(kern: Kernel, sandbox: Sandbox) -> None:
    sandbox.clear_requests()
    for line, says in [("%chat histroy", "did you mean history?"), ("%chat modles gpt", "did you mean models?"),
                       ("%chat usage everything", "unexpected: 'everything'"),
                       ("%chat threads now please", "takes no argument"),
                       ("%chat history a b", "unexpected: 'b'")]:
        assert says in one_line_error(kern.run(line)), line
    assert chats(sandbox) == []
    assert "no model matches 'zzz'" in kern.run("%chat models zzz").text()
    help_text = kern.run("%chat --help")
    assert help_text.status == "ok" and "--max-tokens" in help_text.text() and "UsageError" not in help_text.text()
    r = kern.run("%chat --chat typo historic figures of note", cell_id="t1")  # a longer line is a prompt
    assert r.status == "ok" and len(chats(sandbox)) == 1


# -- 6. the final redraw keeps what else the cell showed, and leaves no empty output -----------------
def empty(out: dict) -> bool:
    data = out.get("data", {})
    return out["type"] != "stream" and not any(str(v).strip() for v in data.values())


def test_a_one_line_chat_leaves_one_output(kern: Kernel) -> None:
    r = kern.run("print('before the question')\n%chat --chat one -m sandbox/long quick chars=4000 rate=0 chunk=40",
                 cell_id="o1")
    outs = r.outputs()
    assert not any(empty(o) for o in outs), outs
    assert len(outs) == 2 and "before the question" in outs[0]["text"] and "or_magic" in outs[1]["metadata"]


def test_a_tools_print_stays_under_the_answer(kern: Kernel) -> None:
    kern.run("def shout(word: str) -> str:\n    'Shout a word.'\n    print('tool printed', word)\n"
             "    return word.upper()")
    r = kern.run("%%chat -m sandbox/tools --tools shout\nShout something", cell_id="o2")
    outs = r.outputs()
    assert "tool printed" in r.text() and not any(empty(o) for o in outs), outs
    assert sum(1 for o in outs if "or_magic" in o.get("metadata", {})) == 1  # one saved turn


def test_a_loop_of_long_answers_keeps_each_and_nothing_empty(kern: Kernel) -> None:
    loop = ("print('looping')\nfor n in range(3):\n"
            "    get_ipython().run_cell_magic('chat', '--chat long -m sandbox/long', "
            "f'answer {n} chars=6000 rate=0 chunk=40')")
    r = kern.run(loop, cell_id="o3", timeout=120)
    outs = r.outputs()
    assert not any(empty(o) for o in outs), [o.get("data", o.get("text")) for o in outs]
    answers = [o for o in outs if "or_magic" in o.get("metadata", {})]
    assert len(answers) == 3 and len(outs) == 4 and "looping" in outs[0]["text"]


# -- 7. minor edges ------------------------------------------------------------------------------
def test_minor_mistakes_are_one_line_and_send_nothing(kern: Kernel, sandbox: Sandbox) -> None:
    sandbox.clear_requests()
    for cell, says in [("%%chat -o get_ipython\nhi", "belongs to IPython"), ("%%chat -o print\nhi", "belongs to"),
                       ("%%chat -o In\nhi", "belongs to"), ('%%chat --chat ""\nhi', "--chat needs a thread name")]:
        assert says in one_line_error(kern.run(cell, cell_id="m7")), cell
    assert chats(sandbox) == []
    assert kernel_value(kern, "callable(get_ipython)") is True


def test_tiny_budget_prints_its_digits(kern: Kernel) -> None:
    kern.run("%config ChatMagics.budget = 0.00002")
    try:
        text = kern.run("%chat usage").text()
        assert "$0.00002 budget" in text and "$0.0000 " not in text, text
    finally:
        kern.run("%config ChatMagics.budget = None")


def test_load_while_a_thread_answers_is_refused(kern: Kernel, tmp_path) -> None:
    kern.run("%%chat --chat busy\nkeep me", cell_id="b1")
    kern.run(f"%chat export {tmp_path / 'x.json'}")
    kern.run("_m = get_ipython().magics_manager.registry['ChatMagics']\n"
             "_pending = _m.session.store.begin('panel', 'streaming in the panel')")  # what a streaming turn holds
    try:
        for line in (f"%chat load {tmp_path / 'x.json'}", f"%chat restore {tmp_path / 'x.json'}"):
            assert "is answering" in one_line_error(kern.run(line)), line
        assert users(kern, "busy") == ["keep me"]
    finally:
        kern.run("_m.session.store.release(_pending)")
    assert "loaded threads" in kern.run(f"%chat load {tmp_path / 'x.json'}").text()


def test_terminal_ipython_shows_the_reasoning_it_mentions(sandbox: Sandbox, tmp_path) -> None:
    import os
    import subprocess
    import sys

    code = ("from IPython.core.interactiveshell import InteractiveShell\n"
            "ip = InteractiveShell.instance()\n"
            "ip.run_line_magic('load_ext', 'or_magic')\n"
            "ip.run_cell_magic('chat', '-m sandbox/reasoning', 'why is the sky blue?')\n")
    env = {**os.environ, "OPENROUTER_BASE_URL": sandbox.url, "OPENROUTER_API_KEY": FAKE_KEY,
           "IPYTHONDIR": str(tmp_path / "ipython")}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    reasoning = [r for r in sandbox.requests if r["path"].endswith("/chat/completions")][-1]
    assert reasoning["body"]["model"] == "sandbox/reasoning"
    out = run.stdout
    assert "[reasoning]" in out and "[answer]" in out and out.index("[reasoning]") < out.index("[answer]")
    thinking = out.split("[reasoning]", 1)[1].split("[answer]", 1)[0]
    assert len(thinking.split()) > 10, out
    assert FAKE_KEY not in out + run.stderr
