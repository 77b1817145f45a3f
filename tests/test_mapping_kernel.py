"""``or_magic.map_prompt`` in a real kernel: the progress widget's messages, the summary card, an interrupt."""

from __future__ import annotations

import ast
import time

from _kernel import FAKE_KEY


def _setup(kern, tmp_path, n: int, delay: float) -> None:
    r = kern.run(f"import pandas as pd, or_magic\n"
                 f"df = pd.DataFrame({{'text': [f'k-{{i}} delay={delay}' for i in range({n})]}})\n"
                 f"jdir = {str(tmp_path)!r}")
    assert r.status == "ok", r.text()


def test_progress_widget_then_summary_card(kern, tmp_path):
    _setup(kern, tmp_path, 30, 0.05)
    r = kern.run("out = or_magic.map_prompt(df, 'Echo $text', model='sandbox/echo', concurrency=4, "
                 "journal_dir=jdir)\nprint(out.attrs['or_magic_map']['ok'], list(out['answer'])[:2])")
    assert r.status == "ok", r.text()
    opened = [m["content"]["data"]["state"].get("_model_name") for m in r.of_type("comm_open")]
    assert "IntProgressModel" in opened
    values = [m["content"]["data"].get("state", {}).get("value") for m in r.of_type("comm_msg")]
    assert any(isinstance(v, int) and 0 < v < 30 for v in values)  # live updates, not only the end
    assert "30 ok, 0 failed of 30 rows" in r.html()
    assert "Echo k-0 delay=0.05" in r.html() and "30 ['Echo k-0 delay=0.05', 'Echo k-1 delay=0.05']" in r.text()
    assert FAKE_KEY not in r.text() and "<script" not in r.html()


def test_interrupt_keeps_finished_rows_then_rerun_completes(kern, sandbox, tmp_path):
    _setup(kern, tmp_path, 40, 0.2)
    code = ("out = or_magic.map_prompt(df, 'Echo $text', model='sandbox/echo', concurrency=4, journal_dir=jdir)\n"
            "print('done', out.attrs['or_magic_map'])")
    msg_id = kern.send(code)
    time.sleep(1.2)
    kern.interrupt()
    first = kern.collect(msg_id, timeout=30)
    assert first.status == "ok", first.text()
    assert "'interrupted': True" in first.text() and "interrupted:" in first.html()
    r = kern.run("ok1 = set(out.index[out['error'] == '']); print(len(ok1), set(out['error']) - {''})")
    count, rest = r.text().strip().split(" ", 1)
    assert 0 < int(count) < 40 and "not run" in rest
    before = len(sandbox.requests)
    second = kern.run(code)
    assert "'ok': 40" in second.text() and f"'resumed': {count}" in second.text()
    resent = [q["body"]["messages"][-1]["content"] for q in sandbox.requests[before:] if q.get("body")]
    r = kern.run("print(sorted(f'Echo k-{i} delay=0.2' for i in ok1))")
    assert not set(resent) & set(ast.literal_eval(r.text().strip()))  # finished rows are never sent again


def test_terminal_ipython_shows_one_updating_line_then_the_summary(sandbox, tmp_path):
    """No widget outside a kernel: the progress is one line rewritten with carriage returns."""
    import os
    import subprocess
    import sys

    code = ("from IPython.core.interactiveshell import InteractiveShell\n"
            "ip = InteractiveShell.instance()\n"
            "ip.run_cell(\"import pandas as pd, or_magic\\n"
            "df = pd.DataFrame({'text': [f'k-{i} delay=0.1' for i in range(12)]})\")\n"
            "ip.run_cell(\"print('BEFORE')\\n"
            f"out = or_magic.map_prompt(df, 'Echo $text', model='sandbox/echo', concurrency=2, "
            f"journal_dir={str(tmp_path)!r})\\n"
            "print('AFTER', out.attrs['or_magic_map']['ok'])\")\n")
    env = {**os.environ, "OPENROUTER_BASE_URL": sandbox.url, "OPENROUTER_API_KEY": FAKE_KEY,
           "IPYTHONDIR": str(tmp_path / "ipython")}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=90)
    assert run.returncode == 0, run.stderr
    stdout = run.stdout.decode()  # bytes: text mode would turn each carriage return into a newline
    progress = stdout.split("BEFORE\n", 1)[1].split("AFTER 12", 1)[0]
    assert progress.count("\n") == 1 and progress.endswith("\n"), repr(progress)  # ONE line
    frames = progress.rstrip("\n").split("\r")[1:]
    assert len(frames) >= 3, repr(progress)  # the start, live updates, the summary: all on that line
    assert any(f.strip().startswith(tuple(f"{n}/12 rows" for n in range(1, 12))) for f in frames), frames
    assert "12 ok, 0 failed of 12 rows" in frames[-1]
    assert "<div" not in stdout and FAKE_KEY not in stdout + run.stderr.decode()


def test_the_widget_closes_and_only_the_summary_stays(kern, tmp_path):
    _setup(kern, tmp_path, 8, 0.05)
    r = kern.run("out = or_magic.map_prompt(df, 'Echo $text', model='sandbox/echo', concurrency=4, "
                 "journal_dir=jdir)")
    assert r.status == "ok", r.text()
    opened = {m["content"]["comm_id"]: m["content"]["data"]["state"].get("_model_name")
              for m in r.of_type("comm_open")}
    closed = {m["content"]["comm_id"] for m in r.of_type("comm_close")}
    widgets = {cid for cid, name in opened.items() if name in ("IntProgressModel", "LabelModel", "HBoxModel")}
    assert len(widgets) == 3 and widgets <= closed, (opened, closed)  # bar, label and their box all closed
    shown = r.of_type("display_data")
    [bar] = [m for m in shown if "application/vnd.jupyter.widget-view+json" in m["content"]["data"]]
    display_id = bar["content"]["transient"]["display_id"]
    [card] = [m for m in r.of_type("update_display_data") if m["content"]["transient"]["display_id"] == display_id]
    assert "8 ok, 0 failed of 8 rows" in card["content"]["data"]["text/html"]
    assert "application/vnd.jupyter.widget-view+json" not in card["content"]["data"]  # the bar is gone
