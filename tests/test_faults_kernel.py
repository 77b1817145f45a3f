"""Fault matrix through a real kernel against the sandbox (issue 7), for what test_magic_kernel.py leaves out.

test_magic_kernel.py already covers every status code of the error table and every mid-stream shape while
streaming. Here: an HTML error page, an error-only 200 body, a malformed chunk, an abrupt disconnect, a
stalled stream (read timeout at its configured value; an interrupt sooner), the server gone, the
non-streaming variant of every error model, and a 10 MB answer. For each fault the cell must end in a typed
error card with no traceback, keep the partial answer when there was one, leave the thread as it was, and
the next request must work.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from _kernel import FAKE_KEY, Execution, Kernel, kernel, value

from or_magic._sandbox_models import ERROR_STATUSES, long_text
from or_magic.sandbox import Sandbox

pytestmark = pytest.mark.kernel

MAGICS = "get_ipython().magics_manager.registry['ChatMagics']"


def chat_requests(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests if r["path"].endswith("/chat/completions")]


def turns(k: Kernel, thread: str | None = None) -> list[list[Any]]:
    name = repr(thread)
    return value(k, f"[[t.user, t.status, t.text] for t in {MAGICS}.session.store.get({name}).turns]")


def final_bundle(r: Execution) -> dict[str, str]:
    bundles = [o["data"] for o in r.outputs() if "text/markdown" in o.get("data", {})]
    assert len(bundles) == 1, r.outputs()
    return bundles[0]


def assert_no_traceback(r: Execution) -> None:
    assert r.status == "ok", r.text()
    assert not r.of_type("error"), r.of_type("error")
    everything = json.dumps([m["content"] for m in r.messages])
    assert "Traceback" not in everything and "most recent call last" not in everything
    stderr = [m["content"]["text"] for m in r.of_type("stream") if m["content"]["name"] == "stderr"]
    assert stderr == [], stderr


def assert_card(r: Execution, kind: str, *fragments: str) -> dict[str, str]:
    """One final output holding an error card that names the error type (html, markdown and plain)."""
    assert_no_traceback(r)
    bundle = final_bundle(r)
    assert 'class="or-magic-error"' in bundle["text/html"]
    for mime in ("text/html", "text/markdown", "text/plain"):
        assert kind in bundle[mime], (mime, bundle[mime][:2000])
    for fragment in fragments:
        assert fragment in bundle["text/plain"], (fragment, bundle["text/plain"][:2000])
    return bundle


@pytest.fixture
def fk(kern: Kernel, sandbox: Sandbox) -> Kernel:
    """The module kernel with one committed turn ("kept"), no retries, the default read timeout."""
    r = kern.run("%config ChatMagics.max_retries = 0\n%config ChatMagics.read_timeout = 300.0\n"
                 f"{MAGICS}.session.base_url = None\n"
                 f"{MAGICS}.session.store._busy.clear()  # isolation: a test that wedged a thread fails alone")
    assert r.status == "ok", r.text()
    assert kern.run("%%chat\nkept", cell_id="f-kept").status == "ok"
    sandbox.clear_requests()
    return kern


def assert_thread_intact_and_next_works(k: Kernel, sandbox: Sandbox) -> None:
    """The failed turn is not in the thread, nothing is left busy, and the next request works."""
    assert turns(k) == [["kept", "ok", "kept"]]
    assert value(k, f"{MAGICS}.session.store.is_busy()") is False
    sandbox.clear_requests()
    r = k.run("%%chat\nafter the fault", cell_id="f-after")
    assert_no_traceback(r)
    assert final_bundle(r)["text/plain"].startswith("after the fault")
    assert [m["content"] for m in chat_requests(sandbox)[-1]["body"]["messages"]] == \
        ["kept", "kept", "after the fault"]
    assert turns(k) == [["kept", "ok", "kept"], ["after the fault", "ok", "after the fault"]]


# (model, --no-stream?, error type, text the card must show, partial answer kept or None)
FAULTS = [
    ("sandbox/error-html", False, "OpenRouterDefaultError", "Worker exceeded resource limits", None),
    ("sandbox/error-html", True, "OpenRouterDefaultError", "Worker exceeded resource limits", None),
    ("sandbox/error-200", False, "StreamError", "free-models-per-day", None),
    ("sandbox/error-200", True, "StreamError", "free-models-per-day", None),
    ("sandbox/malformed", False, "ResponseValidationError", "Malformed stream chunk", "Two good chunks,"),
    ("sandbox/malformed", True, "ResponseValidationError", "Could not parse the response", None),
    ("sandbox/disconnect", False, "APIConnectionError", "dropped mid-stream",
     "The upstream connection is about to drop"),
    ("sandbox/disconnect", True, "APIConnectionError", "127.0.0.1", None),
    ("sandbox/provider-error", True, "BadRequestResponseError", "Invalid schema for function", None),
    ("sandbox/ratelimit", True, "TooManyRequestsResponseError", "rate-limited upstream", None),
]
PARTIAL = "This partial answer was cut off by a simulated provider failure"
# the mid-stream shapes without streaming: the server folds the partial answer and the error into one body
FAULTS += [(f"sandbox/midstream-{shape}", True, "StreamError", "", None if shape == "bare" else PARTIAL)
           for shape in ("documented", "string-code", "raw-metadata", "empty-choices", "bare", "finish-only")]
# every status of the error table without streaming (test_magic_kernel.py covers them streaming)
FAULTS += [(f"sandbox/error-{status}", True, "", f"({status})", None) for status in ERROR_STATUSES]


@pytest.mark.parametrize("model, no_stream, kind, fragment, partial", FAULTS,
                         ids=[f"{f[0].split('/')[1]}-{'nostream' if f[1] else 'stream'}" for f in FAULTS])
def test_fault_ends_in_a_typed_card(fk: Kernel, sandbox: Sandbox, model: str, no_stream: bool, kind: str,
                                    fragment: str, partial: str | None) -> None:
    flag = " --no-stream" if no_stream else ""
    r = fk.run(f"%%chat -m {model}{flag}\nplease fail", cell_id="f-fault")
    kind = kind or ("Error" if model.endswith("418") else "ResponseError")
    bundle = assert_card(r, kind, fragment)
    assert "error" in bundle["text/plain"].splitlines()[-1]  # the footer marks the turn as failed
    if partial is not None:
        for mime in ("text/html", "text/markdown", "text/plain"):
            assert partial in bundle[mime], mime
        assert bundle["text/plain"].startswith(partial), "the partial answer comes first, the card below it"
    else:
        assert bundle["text/plain"].startswith("⚠"), "no answer text before the card"
    (req,) = chat_requests(sandbox)  # max_retries = 0: exactly one request
    assert req["body"]["stream"] is (not no_stream)
    # %chat error shows the same error, in full
    details = fk.run("%chat error")
    assert details.status == "ok" and kind in details.text()
    assert_thread_intact_and_next_works(fk, sandbox)


def test_stall_hits_the_configured_read_timeout(fk: Kernel, sandbox: Sandbox) -> None:
    assert fk.run("%config ChatMagics.read_timeout = 1.5").status == "ok"
    t0 = time.monotonic()
    r = fk.run("%%chat -m sandbox/stall\nstall=30", cell_id="f-stall", timeout=30)
    took = time.monotonic() - t0
    bundle = assert_card(r, "APITimeoutError", "within 1.5 s (read timeout)")
    assert bundle["text/plain"].startswith("Thinking out loud before the line goes quiet")
    # the stream starts at once, so the cell ends about 1.5 s after the last byte: not sooner, not much later
    assert 1.5 <= took < 5.0, took
    assert len(chat_requests(sandbox)) == 1, "a read timeout is never retried"
    print(f"faults: stall, read_timeout 1.5 s, streaming -> APITimeoutError card after {took:.2f} s")
    assert_thread_intact_and_next_works(fk, sandbox)


def test_stall_without_streaming_hits_the_read_timeout(fk: Kernel, sandbox: Sandbox) -> None:
    assert fk.run("%config ChatMagics.read_timeout = 1.5\n%config ChatMagics.max_retries = 2").status == "ok"
    t0 = time.monotonic()
    r = fk.run("%%chat -m sandbox/stall --no-stream\nstall=30", cell_id="f-stall", timeout=30)
    took = time.monotonic() - t0
    assert_card(r, "APITimeoutError", "within 1.5 s (read timeout)")
    assert 1.5 <= took < 5.0, took
    assert len(chat_requests(sandbox)) == 1, "a read timeout is never retried, even with retries on"
    print(f"faults: stall, read_timeout 1.5 s, --no-stream -> APITimeoutError card after {took:.2f} s")
    assert_thread_intact_and_next_works(fk, sandbox)


def test_interrupt_ends_a_stall_long_before_the_read_timeout(fk: Kernel, sandbox: Sandbox) -> None:
    assert fk.run("%config ChatMagics.read_timeout = 60").status == "ok"
    msg_id = fk.send("%%chat -m sandbox/stall\nstall=60", cell_id="f-stall-int")
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the answer has started on screen
        m = fk.kc.get_iopub_msg(timeout=10)
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        seen.append(m)
        if m["msg_type"] == "update_display_data" and "Thinking" in json.dumps(m["content"]):
            break
    time.sleep(1.5)  # the partial answer takes 0.2 s to arrive: this is well into the stall
    t_int = time.monotonic()
    fk.interrupt()
    r = fk.collect(msg_id, timeout=30)
    took = time.monotonic() - t_int
    r.messages = seen + r.messages
    assert took < 5.0, f"the interrupt took {took:.1f} s to end the cell"
    print(f"faults: interrupt 1.5 s into a 60 s stall (read_timeout 60 s) ended the cell in {took:.2f} s")
    assert r.status == "error"
    (err,) = r.of_type("error")
    assert len(err["content"]["traceback"]) == 1 and "interrupted" in err["content"]["traceback"][0]
    bundle = final_bundle(r)
    assert bundle["text/plain"].startswith("Thinking out loud before the line goes quiet")
    assert "interrupted" in bundle["text/html"].lower()
    assert turns(fk)[-1][:2] == ["stall=60", "interrupted"]
    assert len(chat_requests(sandbox)) == 1
    r = fk.run("%%chat\nafter the stall", cell_id="f-after")
    assert_no_traceback(r)
    assert [m["content"] for m in chat_requests(sandbox)[-1]["body"]["messages"]][-1] == "after the stall"


INJECT = {
    # the first "waiting for the model" notice of the turn (the sink is called right after the turn begins)
    "sink": "import or_magic.display as _d\n_orig = _d.HandleSink.waiting\n"
            "def _boom(self, *a, **kw):\n    _d.HandleSink.waiting = _orig\n    raise KeyboardInterrupt\n"
            "_d.HandleSink.waiting = _boom",
    # the start of the helper thread that refreshes the waiting notice
    "ticker": "import threading as _th\n_orig = _th.Thread.start\n"
              "def _boom(self):\n    if self.name.startswith('or_magic'):\n        _th.Thread.start = _orig\n"
              "        raise KeyboardInterrupt\n    return _orig(self)\n_th.Thread.start = _boom",
}


@pytest.mark.parametrize("where", sorted(INJECT))
def test_an_interrupt_while_a_turn_starts_leaves_nothing_busy(fk: Kernel, sandbox: Sandbox, where: str) -> None:
    """Ctrl-C / the stop button can land anywhere, also in the few milliseconds while a turn is set up:
    the thread must not stay "busy" (every later cell on it would be refused until the kernel restarts)."""
    assert fk.run(INJECT[where]).status == "ok"
    r = fk.run("%%chat -m sandbox/slow\ninterrupted while starting", cell_id="f-int-start")
    assert r.status == "error"  # the interrupt stops the cell (Run All stops here)
    assert value(fk, f"{MAGICS}.session.store.is_busy()") is False, "the thread is stuck busy"
    assert_thread_intact_and_next_works(fk, sandbox)


def test_interrupts_at_any_moment_never_wedge_the_thread(fk: Kernel, sandbox: Sandbox) -> None:
    """Real SIGINTs at 0-40 ms into a cell (setup, first request, first chunks), like an impatient user."""
    wedged = []
    for n in range(21):
        delay = n * 0.002
        msg_id = fk.send(f"%%chat -m sandbox/slow\nsweep {n} " + " ".join(["w"] * 40), cell_id=f"f-sweep-{n}")
        time.sleep(delay)
        fk.interrupt()
        with contextlib.suppress(Exception):  # an interrupt inside the kernel's own code may swallow the reply
            fk.collect(msg_id, timeout=20)
        time.sleep(0.6)  # a stray waiting-notice thread would tick (every 0.5 s) by now
        busy, tickers = value(fk, f"[{MAGICS}.session.store.is_busy(), "
                                  "[t.name for t in __import__('threading').enumerate() if "
                                  "t.name.startswith('or_magic')]]")
        if busy or tickers:
            wedged.append((delay, busy, tickers))
            fk.run(f"{MAGICS}.session.store._busy.clear()")
    assert wedged == [], f"(delay, thread busy, helper threads alive) after an interrupt: {wedged}"
    r = fk.run("%%chat\nafter the sweep", cell_id="f-after")
    assert_no_traceback(r)


def test_text_received_before_a_pause_is_shown_during_the_pause(fk: Kernel) -> None:
    """A model that goes quiet mid-answer (a stall, a slow tool, a long think): what has arrived must be on
    screen while it is quiet, not held back by the update throttle until the next chunk comes."""
    assert fk.run("%config ChatMagics.read_timeout = 30").status == "ok"
    r = fk.run("%%chat -m sandbox/stall\nstall=4", cell_id="f-pause", timeout=30)
    assert_no_traceback(r)
    shown = r.of_type("display_data", "update_display_data")
    quiet = next(m["t_recv"] for m in shown if "goes quiet" in json.dumps(m["content"]))
    back = next(m["t_recv"] for m in shown if "came back" in json.dumps(m["content"]))
    assert back - quiet > 3.0, (
        f"the text before the 4 s pause reached the screen only {back - quiet:.2f} s before the pause ended")


def test_server_gone_is_a_connection_card(fk: Kernel, sandbox: Sandbox) -> None:
    """Nothing listens at the base URL (a closed port): a typed card after the retries, then recovery."""
    assert fk.run("%config ChatMagics.max_retries = 1\n"
                  f"{MAGICS}.session.base_url = 'http://127.0.0.1:9/api/v1'").status == "ok"
    t0 = time.monotonic()
    r = fk.run("%%chat\nanyone there?", cell_id="f-gone")
    assert time.monotonic() - t0 < 10
    assert_card(r, "APIConnectionError", "Could not connect to 127.0.0.1")
    assert chat_requests(sandbox) == []
    assert fk.run(f"{MAGICS}.session.base_url = None").status == "ok"
    assert_thread_intact_and_next_works(fk, sandbox)


def test_errors_module_imports_in_a_fresh_kernel(kernel_env: dict[str, str]) -> None:
    """DESIGN.md's contract: ``from or_magic import errors`` then ``except errors.ChatError`` in a notebook."""
    with kernel(kernel_env) as k:
        r = k.run("from or_magic import errors, OpenRouter\n"
                  "try:\n"
                  "    OpenRouter().chat.send(messages=[{'role': 'user', 'content': 'x'}], model='sandbox/error-402')\n"
                  "except errors.ChatError as err:\n"
                  "    print('caught', type(err).__name__, err.status_code)\n")
        assert r.status == "ok", r.text()[-2000:]
        assert "caught PaymentRequiredResponseError 402" in r.text()


BIG = int(os.environ.get("OR_MAGIC_BIG_ANSWER_CHARS", "10000000"))


@pytest.mark.timeout(1200)
def test_ten_megabyte_answer(fk: Kernel, sandbox: Sandbox) -> None:
    """A 10 MB answer streamed in 20-character chunks: the cell finishes, the final output is the whole answer,
    the thread holds it exactly, and the bytes sent to the front end are a small multiple of the final output."""
    expected = long_text(BIG)
    r = fk.run(f"%%chat -m sandbox/long\nchars={BIG} rate=0", cell_id="f-big", timeout=1100)
    assert_no_traceback(r)
    bundle = final_bundle(r)
    assert bundle["text/plain"].startswith(expected), "the final plain text is the whole answer"
    assert 'class="or-magic-error"' not in bundle["text/html"]
    assert "finish: length" not in bundle["text/plain"]
    final_bytes = len(json.dumps(bundle).encode())
    assert final_bytes >= 3 * BIG  # html + markdown + plain
    assert r.display_bytes <= 3 * final_bytes, (r.display_bytes, final_bytes)
    print(f"faults: {BIG:,}-char answer: {r.display_bytes / 2**20:.1f} MB sent = "
          f"{r.display_bytes / final_bytes:.2f}x the final output, {len(r.messages)} iopub messages")
    # Jupyter's server drops iopub output beyond 1000 messages/s averaged over 3 s windows
    times = sorted(m["t_recv"] for m in r.of_type("display_data", "update_display_data", "clear_output"))
    busiest = max(sum(1 for t in times if s <= t < s + 3.0) for s in times)
    assert busiest / 3.0 < 1000, busiest
    assert not [m for m in r.of_type("stream") if len(m["content"]["text"]) > 10_000]
    digest = hashlib.sha256(expected.encode()).hexdigest()
    got = value(fk, f"[[len(t.text), __import__('hashlib').sha256(t.text.encode()).hexdigest()] "
                    f"for t in {MAGICS}.session.store.get().turns[-1:]][0]")
    assert got == [len(expected), digest]
    assert len(chat_requests(sandbox)) == 1
    r = fk.run("%%chat\nafter the big one", cell_id="f-after")
    assert_no_traceback(r)
    assert FAKE_KEY not in r.text()


# ---------------------------------------------------------------- bad input: random magic lines
# test_options.py fuzzes parse+build; here random lines go through the real %%chat of an in-process IPython
# shell wired to the sandbox: a mistake is a one-line UsageError raised before anything is sent or changed,
# and no line ever escapes as another exception.

FLAGS = ["-m", "--model", "--models", "-t", "--temperature", "--top-p", "--max-tokens", "--seed", "--stop", "-s",
         "--system", "--reasoning", "--reasoning-tokens", "--web", "--provider-order", "--sort", "--json",
         "--no-stream", "--chat", "--new", "--once", "-o", "--out", "--param", "-h", "--help", "--"]
VALUES = ["sandbox/echo", "sandbox/nope", "0", "-1", "2.5", "1e309", "nan", "inf", "high", "extreme", "price",
          "a,b", ",", "x=1", "top_k=40", "provider={\"sort\":\"price\"}", "reasoning.exclude=true", "messages=[]",
          "stream=false", "api_key=abc", "x={bad", "'", "\"", "'quoted value'", "$missing", "$n", "$$", "{n}",
          "é", "😀", "\\", "sk-or-v1-notreallyakey0000", "=", "--x", "-", "1abc", "print"]


@pytest.fixture(scope="module")
def shell(sandbox: Sandbox) -> Any:
    """An in-process IPython shell with or_magic loaded against the sandbox (TerminalSink)."""
    from IPython.core.interactiveshell import InteractiveShell

    import or_magic

    saved = {k: os.environ.get(k) for k in ("OPENROUTER_BASE_URL", "OPENROUTER_API_KEY")}
    os.environ.update(OPENROUTER_BASE_URL=sandbox.url, OPENROUTER_API_KEY=FAKE_KEY)
    ip = InteractiveShell.instance()
    or_magic.load_ipython_extension(ip)
    ip.user_ns["n"] = 3
    magics = ip.magics_manager.registry["ChatMagics"]
    magics.model = "sandbox/echo"
    magics.max_retries = 0
    try:
        yield ip
    finally:
        or_magic.unload_ipython_extension(ip)
        InteractiveShell.clear_instance()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _state(ip: Any) -> Any:
    store = ip.magics_manager.registry["ChatMagics"].session.store
    return [(name, [t.id for t in store.get(name).turns], store.get(name).system) for name in store.names()]


def test_random_magic_lines_are_usage_errors_or_run(shell: Any, sandbox: Sandbox) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from IPython.core.error import UsageError

    token = st.sampled_from(FLAGS) | st.sampled_from(VALUES) | st.text(max_size=6)
    stats = {"usage": 0, "ran": 0}

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(token, max_size=8).map(" ".join))
    def check(line: str) -> None:
        before, sent = _state(shell), len(chat_requests(sandbox))
        try:
            shell.run_cell_magic("chat", line, "fuzzed prompt")
        except UsageError as err:
            stats["usage"] += 1
            assert "\n" not in str(err).strip(), str(err)
            assert len(chat_requests(sandbox)) == sent, f"a request went out for a refused line {line!r}"
            assert _state(shell) == before, f"state changed for a refused line {line!r}"
        else:
            stats["ran"] += 1

    check()
    print("fuzz", stats)
    assert stats["usage"] > 100, stats  # the strategy mostly makes mistakes, which is the point


# ---------------------------------------------------------------- bad input: random response bodies
# The malformed-chunk model above is one shape; here hypothesis writes whole response bodies (chunks whose
# fields have random types and shapes, junk lines, cut JSON, random bytes, error objects of any form) and a
# real Session turn (client -> accumulator -> renderer -> sink -> store) runs against each over real HTTP.
# Whatever arrives, the turn ends with its answer or a typed OpenRouterError, the sink's final output is
# shown, and the thread is left free.


class _Body:
    data = b""
    content_type = "text/event-stream"


class _Replay(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", _Body.content_type)
        self.send_header("Content-Length", str(len(_Body.data)))
        self.end_headers()
        self.wfile.write(_Body.data)


@pytest.fixture(scope="module")
def replay_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Replay)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class _RecordingSink:
    def __init__(self) -> None:
        self.finals: list[Any] = []

    def waiting(self, model: str, elapsed: float) -> None: ...
    def add_text(self, delta: str) -> None: ...
    def add_reasoning(self, delta: str) -> None: ...
    def add_image(self, data_url: str) -> None: ...
    def flush(self) -> None: ...

    def final(self, view: Any, images: list[str]) -> None:
        from or_magic import render

        render.final_bundle(view)  # what the HandleSink shows: must render too
        for url in images:
            render.image_bundle(url)
        self.finals.append(view)


def _strategies() -> Any:
    from hypothesis import strategies as st

    scalar = st.none() | st.booleans() | st.integers(-3, 10**6) | st.floats(allow_nan=False, width=32) | \
        st.text(max_size=12)
    anything = st.recursive(scalar, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c,
                                                                                          max_size=3), max_leaves=8)
    text = st.none() | st.text(max_size=20) | anything
    maybe = st.sampled_from([True, False])

    def obj(**fields: Any) -> Any:  # a dict with any subset of the fields (and sometimes an odd extra key)
        return st.fixed_dictionaries({}, optional={**fields, "zz_extra": anything})

    image = st.one_of(anything, obj(type=st.just("image_url") | text, image_url=text | obj(url=text | st.just(
        "data:image/png;base64,iVBORw0KGgo=") | st.just("https://evil.example/x.png"))))
    call = obj(index=st.integers(-2, 3) | text, id=text, type=text,
               function=obj(name=text, arguments=text) | anything)
    delta = obj(role=text, content=text, reasoning=text, refusal=text, reasoning_details=st.lists(anything, max_size=3),
                images=st.lists(image, max_size=2) | anything, tool_calls=st.lists(call, max_size=3) | anything,
                annotations=st.lists(obj(type=text, url_citation=obj(url=text, title=text)) | anything,
                                     max_size=2) | anything, audio=anything)
    error = obj(code=text | st.integers(100, 600), message=text, metadata=obj(raw=text, provider_name=text,
                                                                                error_type=text) | anything)
    choice = obj(index=st.integers(-1, 2) | text, delta=delta | anything, finish_reason=text | st.just("error"),
                 native_finish_reason=text, error=error, message=delta)
    usage = obj(prompt_tokens=text, completion_tokens=text, total_tokens=text, cost=text,
                completion_tokens_details=obj(reasoning_tokens=text) | anything, is_byok=text)
    chunk = obj(id=text, object=text, created=text, model=text, provider=text, choices=st.lists(choice, max_size=2)
                | anything, usage=usage | anything, error=error | anything, user_id=text)
    line = st.one_of(
        chunk.map(lambda c: "data: " + json.dumps(c)),
        chunk.map(lambda c: "data: " + json.dumps(c)[: len(json.dumps(c)) // 2]),  # cut JSON
        st.text(max_size=30).map(lambda t: "data: " + t.replace("\n", " ").replace("\r", " ")),
        st.sampled_from([": OPENROUTER PROCESSING", "data: [DONE]", "event: x", "retry: 5", "data:", "data", ""]),
        st.text(max_size=20).map(lambda t: t.replace("\n", " ").replace("\r", " ")),
    )
    sse = st.lists(line, max_size=8).map(lambda lines: "\n\n".join(lines).encode("utf-8", "surrogatepass"))
    raw = st.binary(max_size=60)
    body = chunk.map(lambda c: json.dumps({**c, "choices": c.get("choices", [])}).encode())
    # one well-formed chunk whose structured parts (images, tool calls, annotations, details) are random
    parts = obj(images=st.lists(image, min_size=1, max_size=2), tool_calls=st.lists(call, min_size=1, max_size=2),
                annotations=st.lists(anything, min_size=1, max_size=2),
                reasoning_details=st.lists(anything, min_size=1, max_size=2))
    structured = parts.map(lambda d: ("data: " + json.dumps({"id": "gen-1", "choices": [
        {"index": 0, "delta": {"content": "ok", **d}, "finish_reason": "stop"}]}) + "\n\n").encode())
    return st.one_of(sse.map(lambda b: ("text/event-stream", b)), raw.map(lambda b: ("text/event-stream", b)),
                     structured.map(lambda b: ("text/event-stream", b)),
                     body.map(lambda b: ("application/json", b)), anything.map(
                         lambda v: ("application/json", json.dumps(v).encode()))), maybe


IMAGE_URL_AS_STRING = b'data: {"id": "g", "choices": [{"index": 0, "delta": {"content": "hi", "images": ' \
                      b'[{"type": "image_url", "image_url": "data:image/png;base64,iVBORw0KGgo="}]}}]}\n\n'


def test_random_response_bodies_end_in_an_answer_or_a_typed_error(replay_url: str) -> None:
    from hypothesis import HealthCheck, example, given, settings

    from or_magic.errors import OpenRouterError
    from or_magic.session import Session, TurnRequest

    bodies, flags = _strategies()
    session = Session(settings=type("S", (), {"max_retries": 0, "read_timeout": 5.0})())
    session.api_key, session.base_url = "sk-or-v1-fuzz0000000000000000", replay_url
    seen: dict[str, int] = {}

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(bodies, flags)
    @example(("text/event-stream", IMAGE_URL_AS_STRING), True)  # found by hand: image_url as a plain string
    def check(body: tuple[str, bytes], stream: bool) -> None:
        _Body.content_type, _Body.data = body
        sink = _RecordingSink()
        result = session.run_turn(TurnRequest(prompt="x", params={"model": "m"}, stream=stream), sink)
        assert result.error is None or isinstance(result.error, OpenRouterError), repr(result.error)
        assert len(sink.finals) == 1
        assert not session.store.is_busy()
        kind = type(result.error).__name__ if result.error is not None else "answer"
        seen[kind] = seen.get(kind, 0) + 1

    try:
        check()
    finally:
        session.close()
    print("stream fuzz outcomes", seen)
    assert len(seen) >= 3, seen  # answers and several kinds of typed error were exercised
