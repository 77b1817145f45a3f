"""``--compare`` and Stop in the widget panel, through a real kernel against the sandbox.

The panel's option box takes ``--compare A,B --keep A`` like a ``%%chat`` line: the models answer at once
into columns of one wrapping row, and only a kept answer continues the thread.
"""

from __future__ import annotations

import pytest
import test_panel
from _kernel import Kernel, ok, value
from test_panel import chat_requests

from or_magic.sandbox import Sandbox

pytestmark = pytest.mark.kernel

panel = test_panel.panel  # the fixture: a fresh panel `p` in the kernel, its model list loaded


def turns(k: Kernel, thread: str = "default") -> list[list[str]]:
    return value(k, f"[[t.user, t.text, t.status] for t in _m.session.store.get({thread!r}).turns]")


def test_compare_streams_side_by_side_and_keeps_nothing(panel: Kernel, sandbox: Sandbox) -> None:
    k = panel
    ok(k, "%%chat\nfirst turn", cell_id="pc0")
    sandbox.clear_requests()
    ok(k, "p.options.value = '--compare sandbox/paced-1000,sandbox/paced-500'\n"
          "p.prompt.value = 'which is faster?'\nassert p.send() is not None\nawait _wait(p)")
    sent = chat_requests(sandbox)
    assert sorted(x["body"]["model"] for x in sent) == ["sandbox/paced-1000", "sandbox/paced-500"]
    assert abs(sent[0]["time"] - sent[1]["time"]) < 0.5, "the second request went out while the first streamed"
    assert all([m["content"] for m in x["body"]["messages"]] == ["first turn", "first turn", "which is faster?"]
               for x in sent), "each model gets the thread's context"
    row = value(k, "[p.comparison.row.layout.flex_flow, [c.layout.min_width for c in p.comparison.columns.values()],"
                   " p.comparison in p.transcript.children[-1].children]")
    assert row[0] == "row wrap" and row[1] == ["18em", "18em"] and row[2], row
    html = value(k, "p.transcript_html()")
    assert html.count("<b>sandbox/paced-") == 2 and "no answer continues the thread" in html
    assert "no answer continues the thread" in value(k, "p.status.value")
    assert [t[0] for t in turns(k)] == ["first turn"], "the thread is unchanged"
    assert value(k, "sorted(_m.session.last_compare.results)") == ["sandbox/paced-1000", "sandbox/paced-500"]
    # %chat keep right after a panel compare keeps that model's answer
    r = ok(k, "%chat keep sandbox/paced-500")
    assert "kept sandbox/paced-500" in r.text()
    assert [t[0] for t in turns(k)] == ["first turn", "which is faster?"]
    assert "which is faster?" in value(k, "p.transcript_html()")


def test_keep_continues_the_thread_and_binds_out(panel: Kernel, sandbox: Sandbox) -> None:
    k = panel
    ok(k, "p.options.value = '--compare sandbox/echo,sandbox/paced-500 --keep sandbox/echo -o picked'\n"
          "p.prompt.value = 'keep me'\nassert p.send() is not None\nawait _wait(p)")
    assert turns(k) == [["keep me", "keep me", "ok"]]
    assert value(k, "[picked, p.busy, p.stop_button.disabled]") == ["keep me", False, True]
    assert "sandbox/echo's answer continues the thread" in value(k, "p.status.value").replace("&#x27;", "'")
    html = value(k, "p.transcript_html()")
    assert html.count("— kept") == 1 and html.count("<b>sandbox/paced-500</b>") == 1, "the row is the turn's entry"
    sandbox.clear_requests()
    ok(k, "p.options.value = ''; p.prompt.value = 'and then'; p.send()\nawait _wait(p)")
    assert [m["content"] for m in chat_requests(sandbox)[-1]["body"]["messages"]] == ["keep me", "keep me",
                                                                                    "and then"]


def test_a_failing_model_beside_a_good_one(panel: Kernel, sandbox: Sandbox) -> None:
    k = panel
    ok(k, "p.options.value = '--compare sandbox/error-500,sandbox/echo --keep sandbox/error-500'\n"
          "p.prompt.value = 'still answered'\np.send()\nawait _wait(p)")
    html = value(k, "p.transcript_html()")
    assert "still answered" in html, "the good model's answer is shown"
    assert "500" in html and "error" in html.lower(), "the failing model has its error card"
    status = value(k, "p.status.value")
    assert "sandbox/error-500 failed" in status and "nothing kept" in status
    assert turns(k) == []


def test_stop_cancels_every_compared_model(panel: Kernel, sandbox: Sandbox) -> None:
    k = panel
    words = " ".join(f"w{i}" for i in range(100))
    ok(k, f"p.options.value = '--compare sandbox/slow,sandbox/echo --keep sandbox/slow'\n"
          f"p.prompt.value = '{words} rate=10 delay=0.2'\nimport time as _t\n_t0 = _t.monotonic()\np.send()")
    ok(k, "await _asyncio.sleep(1.0)\np.stop()\nawait _wait(p)\n_took = _t.monotonic() - _t0")
    assert value(k, "_took") < 5, "Stop ended the compare (the slow model alone takes 10 s)"
    results = value(k, "{m: [r.interrupted, r.text[:5]] for m, r in _m.session.last_compare.results.items()}")
    assert results["sandbox/slow"][0] is True and results["sandbox/slow"][1].startswith("w0")
    assert "stopped" in value(k, "p.status.value")
    assert turns(k) == [], "a stopped compare keeps nothing, --keep included"
    assert value(k, "[p.busy, p.send_button.disabled]") == [False, False]


def test_stop_before_any_answer_says_nothing_was_kept(panel: Kernel) -> None:
    k = panel
    ok(k, "p.prompt.value = 'hello delay=5'; p.send()")
    ok(k, "await _asyncio.sleep(0.5)\np.stop()\nawait _wait(p)")
    status = value(k, "p.status.value")
    assert "nothing was kept" in status and "partial answer is kept" not in status
    assert turns(k) == []


def test_the_key_set_with_chat_key_is_refused_in_the_option_box(panel: Kernel, sandbox: Sandbox) -> None:
    k = panel
    secret = "plain-secret-without-a-prefix-1234"
    ok(k, f"_m.session.api_key = {secret!r}\nk = {secret!r}")
    try:
        sandbox.clear_requests()
        for line in ("-s $k", "--param user=$k"):
            ok(k, f"p.options.value = {line!r}; p.prompt.value = 'hello'\nassert p.send() is None")
            status = value(k, "p.status.value")
            assert "holds an API key" in status and secret not in status, line
        assert chat_requests(sandbox) == []
    finally:
        ok(k, "_m.session.api_key = None")
