"""Trust at the edges through a real kernel and the sandbox: the user's files, threads and key are safe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _kernel import FAKE_KEY, Kernel

from or_magic.sandbox import Sandbox

pytestmark = pytest.mark.kernel


def chats(sandbox: Sandbox) -> list[dict]:
    return [r for r in sandbox.requests if r["path"].endswith("/chat/completions")]


def one_line_error(r) -> str:
    text = r.text()
    assert "Traceback" not in text and "UsageError" in text, text
    return text


def test_cache_clear_keeps_the_users_files(kern: Kernel, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "records.json").write_text("[1]")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "settings.json").write_text("{}")
    kern.run(f"%config ChatMagics.cache_dir = {str(tmp_path)!r}\n%chat cache on")
    try:
        assert kern.run("%%chat --chat cc\nrecord me", cell_id="cc1").status == "ok"
        assert "1 answers" in kern.run("%chat cache status").text()
        assert "removed 1 cached answers" in kern.run("%chat cache clear").text()
    finally:
        kern.run("%chat cache off\n%config ChatMagics.cache_dir = ''")
    assert (tmp_path / "data" / "records.json").read_text() == "[1]"
    assert (tmp_path / "config" / "settings.json").exists()


def test_export_refuses_to_overwrite_and_strips_quotes(kern: Kernel, tmp_path: Path) -> None:
    kern.run("%%chat\nsomething to export", cell_id="e1")
    target = tmp_path / "with space.json"
    ok = kern.run(f'%chat export "{target}"')
    assert "exported 1 turns" in ok.text() and target.exists()
    target.write_text("precious")
    refused = kern.run(f'%chat export "{target}"')
    assert "already exists" in one_line_error(refused) and target.read_text() == "precious"
    assert "exported" in kern.run(f'%chat export "{target}" --force').text()
    assert json.loads(target.read_text())["format"] == "or_magic.conversation/1"
    notebook = tmp_path / "analysis.ipynb"
    notebook.write_text('{"cells": []}')
    assert "%chat restore" in one_line_error(kern.run(f"%chat export {notebook} --force"))
    assert notebook.read_text() == '{"cells": []}'
    for bad in (tmp_path / "nowhere" / "x.json", tmp_path):
        one_line_error(kern.run(f'%chat export "{bad}"'))


def test_export_to_a_path_nobody_can_write_is_one_line(kern: Kernel, tmp_path: Path) -> None:
    """Paths that refuse root too (the tests may run as root, where chmod stops nothing)."""
    kern.run("%%chat\nsomething to export", cell_id="e2")
    plain = tmp_path / "plain.txt"
    plain.write_text("a file, not a folder")
    under_a_file = one_line_error(kern.run(f'%chat export "{plain / "x.json"}"'))
    assert "no folder" in under_a_file and plain.read_text() == "a file, not a folder"
    in_proc = one_line_error(kern.run("%chat export /proc/version --force"))  # procfs makes no new files
    assert "cannot write in '/proc'" in in_proc and len(in_proc.strip().splitlines()) == 1, in_proc
    assert not list(Path("/proc").glob(".or_magic-*")), "no temporary file left behind"


def test_export_never_carries_the_key(kern: Kernel, tmp_path: Path) -> None:
    kern.run("import os\nk = os.environ['OPENROUTER_API_KEY']")
    assert "holds an API key" in kern.run("%%chat\nplease remember $k", cell_id="k0").text()
    kern.run("%%chat\nplease remember this", cell_id="k1")
    # a key that got into a turn some other way (a tool's result, an old export) is masked on export
    kern.run("get_ipython().magics_manager.registry['ChatMagics'].session.store.get().turns[-1].user += ' ' + k")
    for name in ("k.json", "k.md"):
        kern.run(f"%chat export {tmp_path / name}")
        text = (tmp_path / name).read_text()
        assert "please remember" in text and FAKE_KEY not in text and "sk-or-" not in text


def test_bad_load_and_restore_leave_threads_working(kern: Kernel, tmp_path: Path) -> None:
    kern.run("%%chat --chat keep\nkeep this turn", cell_id="l1")
    bad = {"list.json": "[1, 2]", "deep.json": "[" * 50_000 + "]" * 50_000,
           "types.json": json.dumps({"format": "or_magic.conversation/1", "threads": [
               {"name": "x", "turns": [{"user": "u", "assistant": {}, "usage": {"prompt_tokens": "lots"}}]}]})}
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
        one_line_error(kern.run(f"%chat load {tmp_path / name}"))
    notebook = tmp_path / "broken.ipynb"
    notebook.write_text(json.dumps({"cells": [{"cell_type": "code", "outputs": [
        {"metadata": {"or_magic": {"turn": {"user": 1}}}}]}]}))
    one_line_error(kern.run(f"%chat restore {notebook}"))
    history = kern.run("%chat history keep")
    assert "keep this turn" in history.text() and "Traceback" not in history.text()
    usage = kern.run("%chat usage")
    assert usage.status == "ok" and "Traceback" not in usage.text()


def test_device_attachment_is_one_line_and_sends_nothing(kern: Kernel, sandbox: Sandbox) -> None:
    sandbox.clear_requests()
    r = kern.run("%%chat --file /dev/zero\nread this", cell_id="z1", timeout=30)
    assert "not a regular file" in one_line_error(r)
    assert chats(sandbox) == []


def test_context_shows_missing_values(kern: Kernel) -> None:
    kern.run("import pandas as pd\ndf = pd.DataFrame({'a': [1.0, None, 3.0], 'b': ['x', None, None]})\n"
             "full = pd.DataFrame({'c': [1, 2]})")
    r = kern.run("%%chat --context df --context full --dry-run\nsummarise", cell_id="m1")
    assert "1 missing" in r.text() and "2 missing" in r.text()
    assert "No missing values." in r.text()  # a complete frame says so rather than staying silent
