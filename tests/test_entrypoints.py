"""Ways in besides %load_ext in a notebook: ipython_config.py, terminal IPython, %chat key's hidden prompt."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _kernel import FAKE_KEY, kernel

from or_magic.sandbox import Sandbox

pytestmark = pytest.mark.kernel
IPYTHON = str(Path(sys.executable).with_name("ipython"))


def test_extension_and_defaults_from_ipython_config(sandbox: Sandbox, tmp_path: Path) -> None:
    profile = tmp_path / "ipython" / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_config.py").write_text(
        "c.InteractiveShellApp.extensions = ['or_magic']\n"
        "c.ChatMagics.model = 'sandbox/echo'\n"
        "c.ChatMagics.temperature = 0.25\n")
    env = {"OPENROUTER_BASE_URL": sandbox.url, "OPENROUTER_API_KEY": FAKE_KEY, "IPYTHONDIR": str(tmp_path / "ipython")}
    sandbox.clear_requests()
    with kernel(env) as k:
        # the kernel fixture sets its own IPYTHONDIR; ours comes later in the env and wins
        r = k.run("%%chat\nconfigured by file", cell_id="cfg")
        assert r.status == "ok", r.text()
    body = [x for x in sandbox.requests if x["path"].endswith("/chat/completions")][-1]["body"]
    assert body["model"] == "sandbox/echo" and body["temperature"] == 0.25


def test_terminal_ipython_streams_plain_text(sandbox: Sandbox, tmp_path: Path) -> None:
    env = {**os.environ, "OPENROUTER_BASE_URL": sandbox.url, "OPENROUTER_API_KEY": FAKE_KEY,
           "IPYTHONDIR": str(tmp_path / "ipython")}
    code = "%load_ext or_magic\n%chat -m sandbox/echo hello from a terminal\n%chat -m sandbox/error-402 x\n"
    script = tmp_path / "session.ipy"
    script.write_text(code)
    out = subprocess.run([IPYTHON, "--no-banner", "--colors=NoColor", str(script)], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "hello from a terminal" in out.stdout
    assert "sandbox/echo via Sandbox" in out.stdout  # the footer, as text
    assert "PaymentRequiredResponseError" in out.stdout and "Traceback" not in out.stdout + out.stderr
    assert "<div" not in out.stdout and FAKE_KEY not in out.stdout + out.stderr


def test_chat_key_asks_with_a_hidden_prompt_and_keeps_it_out_of_outputs(sandbox: Sandbox) -> None:
    env = {"OPENROUTER_BASE_URL": sandbox.url, "OPENROUTER_API_KEY": ""}
    with kernel(env) as k:
        assert k.run("%load_ext or_magic\n%config ChatMagics.model = 'sandbox/echo'").status == "ok"
        content = dict(code="%chat key", silent=False, store_history=True, user_expressions={},
                       allow_stdin=True, stop_on_error=True)
        msg = k.kc.session.msg("execute_request", content)
        k.kc.shell_channel.send(msg)
        deadline = time.monotonic() + 30
        prompt = None
        while time.monotonic() < deadline and prompt is None:
            try:
                m = k.kc.get_stdin_msg(timeout=1)
            except queue.Empty:
                continue
            if m["msg_type"] == "input_request":
                prompt = m["content"]
        assert prompt is not None and prompt["password"] is True  # typed characters are not echoed
        k.kc.input(FAKE_KEY)
        r = k.collect(msg["header"]["msg_id"])
        assert "key set" in r.text() and FAKE_KEY not in r.text()
        sandbox.clear_requests()
        assert k.run("%%chat\nwith the typed key", cell_id="k").status == "ok"
        sent = [x for x in sandbox.requests if x["path"].endswith("/chat/completions")][-1]
        assert sent["has_auth"] is True
        assert k.run("%chat key sk-or-v1-on-the-line-000000").status == "error"  # refused: would be saved
