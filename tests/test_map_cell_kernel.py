"""``%%chat --map`` in a real kernel against the sandbox: overlap, row order, 429s, interrupt, restart, schema,
budget, dry run and bad input."""

from __future__ import annotations

import time
import uuid

from _kernel import FAKE_KEY, kernel


def _setup(kern, tmp_path, n: int, tag: str, extra: str = "") -> None:
    r = kern.run(f"import pandas as pd\n"
                 f"df = pd.DataFrame({{'text': [f'{tag}-{{i}}{extra}' for i in range({n})], 'n': list(range({n}))}},"
                 f" index=[f'r{{i}}' for i in range({n})])\n"
                 f"_m.cache_dir = {str(tmp_path)!r}; _m.budget = None")
    assert r.status == "ok", r.text()


def _counts(sandbox, tag: str) -> dict[str, int]:
    return {p: c for p, c in sandbox.prompt_counts().items() if tag in p}


def _chats(sandbox, since: int) -> list[dict]:
    return [q for q in sandbox.requests[since:] if q["path"].endswith("/chat/completions")]


def _max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(sum(1 for u in times[i:] if u - t < window) for i, t in enumerate(times))


def test_sixty_rows_overlap_in_row_order_each_sent_once(kern, sandbox, tmp_path):
    tag = f"ov{uuid.uuid4().hex[:6]}"
    _setup(kern, tmp_path, 60, tag)
    r = kern.run("%%chat --map df -o scored -m sandbox/latency-200 --concurrency 8\nSay $text (row $n)")
    assert r.status == "ok", r.text()
    assert "60 ok, 0 failed of 60 rows" in r.html() and FAKE_KEY not in r.text()
    times = [q["time"] for q in sandbox.requests if tag in str(q.get("body"))]
    assert len(times) == 60
    assert 4 <= _max_in_window(times, 0.15) <= 8  # in flight together, never more than --concurrency
    assert set(_counts(sandbox, tag).values()) == {1}
    r = kern.run("print(list(scored.columns)); print(list(scored.index[:2]));"
                 "print(all(f'Say {t} (row {n})' in a for t, n, a in zip(scored.text, scored.n, scored.answer)))")
    columns, index, in_order = r.text().strip().split("\n")[-3:]
    assert (columns, index, in_order) == ("['text', 'n', 'answer', 'error', 'cost', 'model']", "['r0', 'r1']", "True")
    r = kern.run("print(len(_m.session.store.threads), _m.session.spent > 0)")
    assert r.text().strip() == "0 True"  # no thread gained a turn (or appeared); the cost counts


def test_rate_limited_rows_are_resent_alone(kern, sandbox, tmp_path):
    tag = f"rl{uuid.uuid4().hex[:6]}"
    _setup(kern, tmp_path, 200, tag, " retry_after=0.2")
    r = kern.run("%%chat --map df -o out -m sandbox/ratelimit-30 --concurrency 16\n$text", timeout=120)
    assert r.status == "ok", r.text()
    assert "200 ok, 0 failed of 200 rows" in r.html()
    counts = _counts(sandbox, tag)
    assert len(counts) == 200 and set(counts.values()) <= {1, 2}
    limited = sum(1 for c in counts.values() if c == 2)
    assert 20 <= limited <= 100  # about 30 % got a first-try 429, and only those were sent twice


def test_interrupt_then_rerun_answers_every_row_once(kern, sandbox, tmp_path):
    tag = f"in{uuid.uuid4().hex[:6]}"
    _setup(kern, tmp_path, 40, tag)
    cell = "%%chat --map df -o out -m sandbox/latency-200 --concurrency 4\n$text"
    msg_id = kern.send(cell)
    time.sleep(1.5)
    kern.interrupt()
    first = kern.collect(msg_id, timeout=30)
    assert first.status == "ok", first.text()
    assert "Re-run this cell to send only those" in first.text() and "interrupted:" in first.html()
    r = kern.run("print((out.error == '').sum(), (out.error == 'not run').sum()); print(*out.text[out.error == ''])")
    counts_line, answered = r.text().strip().split("\n")
    done, left = map(int, counts_line.split())
    assert done > 0 and left > 0 and done + left == 40
    second = kern.run(cell)
    assert f"{done} from the journal" in second.html() and "40 ok" in second.html()
    counts = _counts(sandbox, tag)
    assert len(counts) == 40 and all(counts[t] == 1 for t in answered.split())  # answered once, never resent
    assert sum(counts.values()) - 40 <= 4  # only the rows cancelled in flight (unanswered) went out again


def test_restart_mid_map_then_rerun(kernel_env, sandbox, tmp_path):
    tag = f"rs{uuid.uuid4().hex[:6]}"
    setup = (f"%load_ext or_magic\n%config ChatMagics.cache_dir = {str(tmp_path)!r}\nimport pandas as pd\n"
             f"df = pd.DataFrame({{'text': [f'{tag}-{{i}}' for i in range(30)]}})")
    cell = "%%chat --map df -o out -m sandbox/latency-200 --concurrency 3\n$text"
    with kernel(kernel_env) as k:
        assert k.run(setup).status == "ok"
        k.send(cell)
        deadline = time.monotonic() + 20
        while sum(_counts(sandbox, tag).values()) < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        k.km.restart_kernel(now=True)
        k.kc.wait_for_ready(timeout=60)
        before = dict(_counts(sandbox, tag))
        assert 0 < len(before) < 30
        assert k.run(setup).status == "ok"
        r = k.run(cell)
        assert r.status == "ok", r.text()
        assert "30 ok" in r.html() and "from the journal" in r.html()
    counts = _counts(sandbox, tag)
    assert len(counts) == 30
    assert sum(counts.values()) - 30 <= 3  # only rows in flight at the kill (answer lost) were sent again


def test_schema_columns_and_dry_run(kern, sandbox, tmp_path):
    tag = f"sc{uuid.uuid4().hex[:6]}"
    _setup(kern, tmp_path, 4, tag)
    r = kern.run("from pydantic import BaseModel\nclass Sentiment(BaseModel):\n    label: str\n    score: float\n")
    before = len(sandbox.requests)
    r = kern.run("%%chat --map df --schema Sentiment --dry-run -s 'Be terse.'\nRate $text")
    assert r.status == "ok" and not _chats(sandbox, before)  # nothing sent
    assert "4 requests to sandbox/echo" in r.text() and f"Rate {tag}-0" in r.text()
    assert '"json_schema"' in r.text() and "Be terse." in r.text() and "estimated cost" in r.text()
    r = kern.run("%%chat --map df -o typed --schema Sentiment\nRate $text")
    assert r.status == "ok", r.text()
    r = kern.run("print(list(typed.columns), typed.score.dtype.kind, (typed.error == '').all())")
    assert r.text().strip() == "['text', 'n', 'label', 'score', 'error', 'cost', 'model'] f True"


def test_budget_refuses_the_whole_map(kern, sandbox, tmp_path):
    tag = f"bu{uuid.uuid4().hex[:6]}"
    _setup(kern, tmp_path, 50, tag)
    before = len(sandbox.requests)
    r = kern.run("_m.budget = 0.000001\n")
    r = kern.run("%%chat --map df -o never --max-tokens 500\n$text")
    kern.run("_m.budget = None")
    assert r.status == "ok" and "budget" in r.text() and "nothing was sent" in r.text()
    assert not _chats(sandbox, before)
    assert "NameError" in kern.run("never").text()


def test_bad_input_is_one_line(kern, tmp_path):
    _setup(kern, tmp_path, 2, "bad")
    for line, words in [("--map nope", "no such variable"), ("--map _m", "DataFrame, a Series or a list"),
                        ("--map df --new", "cannot be combined with --new"),
                        ("--map df --concurrency 0", "--concurrency must be within"),
                        ("--batch", "only applies with --map")]:
        r = kern.run(f"%%chat {line}\n$text")
        assert r.status == "error" and r.reply["content"]["ename"] == "UsageError", (line, r.text())
        assert words in r.reply["content"]["evalue"], r.reply["content"]["evalue"]
