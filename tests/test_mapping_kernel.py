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
