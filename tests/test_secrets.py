"""The API key never leaves the places it must be (issue 7, "Secrets"): zero hits anywhere else.

A recognisable fake key (``FAKE_KEY``) is set as OPENROUTER_API_KEY, then searched for in everything a user,
a log or a saved notebook could show: every iopub message of a broad kernel session (every sandbox model,
streaming and not, every ``%chat`` subcommand, dry runs, exports, the panel), the exported files, the kernel's
log output and everything it wrote to disk (IPython history, caches), the executed demo notebooks; the
str/repr/attributes/pickles/tracebacks/cards of every error class built from hostile responses that echo the
key in odd places; the client's log records at DEBUG; and the sandbox's request records.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import pickle
import threading
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from _kernel import FAKE_KEY, Execution, kernel

import or_magic.errors as errors
from or_magic import render
from or_magic._sandbox_models import MODELS
from or_magic.client import OpenRouter, RetryConfig
from or_magic.sandbox import Sandbox, start
from or_magic.session import error_view

ROOT = Path(__file__).resolve().parents[1]
SUFFIX = FAKE_KEY.removeprefix("sk-or-v1-")  # a partial leak (prefix stripped, "Bearer …" cut) still counts
ODD_KEY = "odd-shaped-key_0123456789abcdefFAKE"  # not sk-…: only the client's registration can scrub it
NEEDLES = {"the fake key": FAKE_KEY, "its suffix": SUFFIX, "the odd-shaped key": ODD_KEY}


def hits(text: str | bytes) -> list[str]:
    """Which needles occur in ``text`` (by label, so a failing test's report does not print the key)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [label for label, needle in NEEDLES.items() if needle in text]


def files_with_key(root: Path) -> list[str]:
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if any(n.encode() in data for n in NEEDLES.values()):
            found.append(str(path))
    return found


# ---------------------------------------------------------------- a whole kernel session

LOGGING_CELL = """
import logging as _logging
_h = _logging.FileHandler({log!r})
_h.setLevel(_logging.DEBUG)
_h.setFormatter(_logging.Formatter("%(name)s %(levelname)s %(message)s"))
_logging.getLogger().addHandler(_h)
_logging.getLogger().setLevel(_logging.DEBUG)
"""
M = "get_ipython().magics_manager.registry['ChatMagics']"


def session_cells(tmp: Path) -> list[str]:
    """A broad session: every model streaming and not, every subcommand, panel, errors inspected by hand."""
    cells = ["%load_ext or_magic", "%config ChatMagics.model = 'sandbox/echo'",
             "%config ChatMagics.max_retries = 1", "%config ChatMagics.read_timeout = 1.0",
             LOGGING_CELL.format(log=str(tmp / "kernel.log"))]
    for model in sorted(MODELS):
        for flag in ("", " --no-stream"):
            prompt = "hello fail=1 stall=3 chars=3000 rate=0 retry_after=0"
            cells += [f"%%chat -m {model}{flag}\n{prompt}", "%chat error"]
    cells += [
        "%%chat -s 'be brief' --chat side -o answer\nbind this", "print(answer)",
        "%%chat --dry-run -t 0.3 --param provider='{\"sort\": \"price\"}'\nwhat would be sent",
        "%chat one line question",
        "%chat history", "%chat history side", "%chat threads", "%chat usage", "%chat models", "%chat config",
        "%config ChatMagics", "%chat error",
        f"%chat export {tmp / 'conv.json'}", f"%chat export {tmp / 'conv.md'}", f"%chat load {tmp / 'conv.json'}",
        "%chat undo", "%chat key",
        "%config ChatMagics.raise_on_error = True", "%%chat -m sandbox/error-401\nfails loudly",
        "%config ChatMagics.raise_on_error = False",
        "%%chat --param api_key=abc\nrefused", "%%chat --param authorization=abc\nrefused",
        f"_c = {M}.session.client()\nprint(repr(_c), vars(_c))\nprint(repr({M}.session), vars({M}.session))",
        f"_e = {M}.session.last_error\nprint(repr(_e), str(_e), _e.hint, _e.to_dict(), vars(_e))",
        "import or_magic.errors as _errors\n"
        "try:\n    _c.chat.send(messages=[{'role': 'user', 'content': 'x'}], model='sandbox/error-401')\n"
        "except _errors.ChatError as _err:\n    import traceback as _tb; _tb.print_exc()",
        "from or_magic import ChatPanel\n_p = ChatPanel()\n_p.prompt.value = 'from the panel'\nawait _p.send()\n"
        "_p.model.value = 'sandbox/error-403'\n_p.prompt.value = 'panel error'\nawait _p.send()\n"
        "print(_p.transcript_html()); print(_p.status.value)",
        "%chat sandbox", "%%chat\nafter switching to the in-kernel sandbox", "%chat config",
        "%unload_ext or_magic",
    ]
    return cells


@pytest.mark.kernel
@pytest.mark.timeout(600)
def test_a_whole_kernel_session_never_shows_the_key(sandbox: Sandbox, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {"OPENROUTER_BASE_URL": sandbox.url, "OPENROUTER_API_KEY": FAKE_KEY, "HOME": str(home),
           "XDG_CACHE_HOME": str(home / ".cache"), "XDG_CONFIG_HOME": str(home / ".config")}
    runs: list[Execution] = []
    sandbox.clear_requests()
    with kernel(env) as k:
        kernel_dir = Path(k.tmp)
        for n, cell in enumerate(session_cells(tmp_path)):
            r = k.run(cell, cell_id=f"s{n}", timeout=120)
            runs.append(r)
        statuses = [(cell.splitlines()[0], r.status) for cell, r in zip(session_cells(tmp_path), runs, strict=True)]
    everything = json.dumps([[m["content"], m.get("metadata")] for r in runs for m in r.messages] +
                            [r.reply["content"] for r in runs])
    print(f"secrets: {len(runs)} cells, {sum(len(r.messages) for r in runs)} iopub messages "
          f"({len(everything) / 2**20:.1f} MB), {len(list(kernel_dir.rglob('*')))} kernel files, "
          f"{len(list(home.rglob('*')))} files under HOME searched")
    assert hits(everything) == [], "the key reached the front end"
    # the session really went through the interesting paths
    assert everything.count("or-magic-error") > 30 and "UnauthorizedResponseError" in everything
    assert "dry run: nothing was sent" in everything and "exported" in everything
    assert "from the panel" in everything and "ForbiddenResponseError" in everything
    assert ("%%chat -m sandbox/error-401", "error") in statuses  # raise_on_error
    exported = [tmp_path / "conv.json", tmp_path / "conv.md"]
    assert all(p.stat().st_size > 1000 for p in exported)
    assert [str(p) for p in exported if hits(p.read_bytes())] == []
    log = (tmp_path / "kernel.log").read_text()
    assert "or_magic" in log and "httpcore" in log, "the log handler saw the client's records"
    assert hits(log) == [], "the key is in the kernel's log output"
    assert files_with_key(kernel_dir) == [], "the key is on disk (IPython history, caches)"
    assert files_with_key(home) == [], "the key is on disk under HOME"
    requests = [r for r in sandbox.requests if r["path"].endswith("/chat/completions")]
    assert len(requests) > 2 * len(MODELS)
    assert all(r["has_auth"] and r["headers"]["authorization"] == "<redacted>" for r in requests)
    assert hits(json.dumps(sandbox.requests)) == []


# ---------------------------------------------------------------- hostile responses, every error class


def _chunk(content: str = "", **extra: Any) -> dict[str, Any]:
    return {"id": "gen-1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": None}],
            **extra}


def hostile_response(case: str, key: str) -> tuple[int, dict[str, str], bytes]:
    """What an OpenRouter-compatible server (or a proxy in front of it) answers, with the key echoed back."""
    def js(status: int, body: Any, **headers: str) -> tuple[int, dict[str, str], bytes]:
        return status, {"Content-Type": "application/json", **headers}, json.dumps(body).encode()

    def sse(*events: Any) -> tuple[int, dict[str, str], bytes]:
        data = b"".join(b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n"
                        for e in events)
        return 200, {"Content-Type": "text/event-stream"}, data

    bearer = f"Bearer {key}"
    cases: dict[str, Any] = {
        "message": lambda: js(400, {"error": {"code": 400, "message": f"Invalid key {key}"}}),
        "raw-string": lambda: js(502, {"error": {"code": 502, "message": "Provider returned error",
                                                 "metadata": {"raw": f"upstream rejected {bearer}",
                                                              "provider_name": "P"}}}),
        "raw-json": lambda: js(400, {"error": {"code": 400, "message": "Provider returned error", "metadata": {
            "raw": json.dumps({"error": {"message": f"key {key} invalid", "type": "auth"}})}}}),
        "raw-object": lambda: js(400, {"error": {"code": 400, "message": "Provider returned error",
                                                 "metadata": {"raw": {"detail": {"msg": key}}}}}),
        "provider-name": lambda: js(400, {"error": {"code": 400, "message": "Provider returned error",
                                                    "metadata": {"provider_name": key, "raw": "denied"}}}),
        "code": lambda: js(400, {"error": {"code": key, "message": "bad"}}),
        "error-type": lambda: js(400, {"error": {"code": 400, "message": "bad", "metadata": {"error_type": key}}}),
        "type": lambda: js(400, {"error": {"code": 400, "message": "bad", "type": key}}),
        "user-id": lambda: js(401, {"error": {"code": 401, "message": "User not found."}, "user_id": key}),
        "id": lambda: js(400, {"error": {"code": 400, "message": "bad"}, "id": key}),
        "availability": lambda: js(404, {"error": {"message": "", "error_type": "availability", "availability": {
            "code": "no_endpoints", "retryable": False, "requested_models": [key], "fallback_models": [key],
            "constraint": {"field": "provider", "detail": key}}}}),
        "metadata-keys": lambda: js(403, {"error": {"code": 403, "message": "Forbidden", "metadata": {
            key: "x", "headers": {"Authorization": bearer}, "reasons": [key], "flagged_input": key}}}),
        "headers": lambda: js(429, {"error": {"code": 429, "message": "slow down"}}, **{
            "X-Echo-Authorization": bearer, "Set-Cookie": f"session={key}", "X-Generation-Id": key,
            "Retry-After": "0", "X-Debug": key}),
        "html": lambda: (503, {"Content-Type": "text/html"},
                         f"<html><head><title>Denied {key}</title></head><body>{bearer}</body></html>".encode()),
        "text": lambda: (500, {"Content-Type": "text/plain"}, f"internal error for {bearer}".encode()),
        "json-200": lambda: js(200, {"error": {"code": 429, "message": f"limit for {key}",
                                               "metadata": {"provider_name": key}}, "user_id": key}),
        "choice-error": lambda: js(200, {"id": key, "object": "chat.completion", "model": "m", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "part"}, "finish_reason": "error",
             "error": {"code": 502, "message": f"choice failed {key}", "metadata": {"provider_name": key}}}]}),
        "stream-error": lambda: sse(_chunk("part"), {**_chunk(), "error": {
            "code": 502, "message": f"mid-stream {key}", "metadata": {"raw": bearer, "provider_name": key}}}),
        "stream-bare": lambda: sse({"error": {"message": f"bare {key}", "code": key}, "user_id": key}),
        "stream-finish": lambda: sse(_chunk("part"), {**_chunk(), "choices": [
            {"index": 0, "delta": {"content": ""}, "finish_reason": "error", "native_finish_reason": key}]}),
        "stream-malformed": lambda: sse(_chunk("part"), f'{{"note":"{key}","choices":[{{"delta":'.encode()),
        "malformed-200": lambda: (200, {"Content-Type": "application/json"}, f'{{"id":"{key}","choices":['.encode()),
        "not-an-object": lambda: js(200, [key]),
    }
    return cases[case]()


CASES = ["message", "raw-string", "raw-json", "raw-object", "provider-name", "code", "error-type", "type",
         "user-id", "id", "availability", "metadata-keys", "headers", "html", "text", "json-200", "choice-error",
         "stream-error", "stream-bare", "stream-finish", "stream-malformed", "malformed-200", "not-an-object"]


class _Hostile(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        key = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        status, headers, data = hostile_response(body.get("model", "message"), key)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def surfaces(err: BaseException) -> dict[str, str]:
    """Every way an error can be turned into text by a user, a notebook, a log or the product itself."""
    assert isinstance(err, errors.OpenRouterError)
    view = error_view(err)
    out = {
        "str": str(err), "repr": repr(err), "args": repr(err.args), "hint": err.hint,
        "to_dict": json.dumps(err.to_dict(), default=repr),
        "attributes": json.dumps({k: repr(v) for k, v in vars(err).items()}),
        "traceback_lines": "".join(err._render_traceback_()),
        "format_exception": "".join(traceback.format_exception(err)),
        "pickled": repr(vars(pickle.loads(pickle.dumps(err)))),
        "card": render.error_card_html(view) + render.error_card_text(view),
        "final_bundle": json.dumps(render.final_bundle(render.TurnView(error=view, status="error"))),
    }
    return out


@pytest.mark.parametrize("key_shape", ["sk-key", "odd-key"])  # not the key itself: reports would print it
@pytest.mark.parametrize("stream", [False, True], ids=["nostream", "stream"])
@pytest.mark.parametrize("case", CASES)
def test_errors_from_hostile_responses_never_carry_the_key(hostile: str, case: str, stream: bool,
                                                           key_shape: str) -> None:
    key = FAKE_KEY if key_shape == "sk-key" else ODD_KEY
    with OpenRouter(api_key=key, server_url=hostile, retry_config=RetryConfig.none()) as c:
        with pytest.raises(errors.OpenRouterError) as info:
            res = c.chat.send(messages=[{"role": "user", "content": "hi"}], model=case, stream=stream)
            if stream:
                with res:
                    list(res)
        leaks = {name: hits(text) for name, text in surfaces(info.value).items() if hits(text)}
    assert leaks == {}, f"{type(info.value).__name__} carries the key in: {sorted(leaks)}"


def test_transport_errors_never_carry_the_key() -> None:
    for url in ("http://127.0.0.1:9/api/v1", f"http://127.0.0.1:9/{FAKE_KEY}/api/v1"):
        with OpenRouter(api_key=FAKE_KEY, server_url=url, retry_config=RetryConfig.none()) as c, \
                pytest.raises(errors.APIConnectionError) as info:
            c.chat.send(messages=[{"role": "user", "content": "x"}], model="m")
        leaks = {name: hits(text) for name, text in surfaces(info.value).items() if hits(text)}
        assert leaks == {}, (url, sorted(leaks))


def test_no_key_error_and_client_reprs() -> None:
    client = OpenRouter(api_key=FAKE_KEY, server_url="http://127.0.0.1:9/api/v1")
    text = repr(client) + repr(vars(client)) + repr(client.chat)
    assert hits(text) == []
    with pytest.raises(errors.ConfigError) as info:
        OpenRouter(api_key=lambda: "").chat.send(messages=[{"role": "user", "content": "x"}], model="m")
    assert hits(json.dumps(surfaces(info.value))) == []


# ---------------------------------------------------------------- logs at DEBUG


@pytest.mark.timeout(300)
def test_client_logs_at_debug_never_carry_the_key(caplog: pytest.LogCaptureFixture, hostile: str) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: or_magic, httpx, httpcore, asyncio, everything
    with start() as sb, OpenRouter(api_key=FAKE_KEY, server_url=sb.url, timeout_ms=700,
                                   retry_config=RetryConfig(max_retries=1, max_wait=1.0)) as c:
        for model in sorted(MODELS):
            for stream in (False, True):
                try:
                    res = c.chat.send(messages=[{"role": "user", "content": "hi fail=1 stall=2 chars=500"}],
                                      model=model, stream=stream)
                    if stream:
                        with res:
                            list(res)
                except errors.OpenRouterError as err:
                    logging.getLogger("test").exception("failed: %r", err)  # as a user's code would log it
        c.models()
        c.key()

        async def twin() -> None:
            res = await c.chat.send_async(messages=[{"role": "user", "content": "x"}], model="sandbox/echo",
                                          stream=True)
            async with res:
                async for _ in res:
                    pass
        asyncio.run(twin())
        assert all(r["headers"].get("authorization") == "<redacted>" for r in sb.requests)
        assert hits(json.dumps(sb.requests)) == []
        # the sandbox's own HTTP view of its records
        recorded = httpx.get(f"{sb.url}/_sandbox/requests").text
        assert "<redacted>" in recorded and hits(recorded) == []
    # what the client logs while hostile responses echo the key (their errors' own strings: see above); not
    # the "headers" case: httpcore's DEBUG trace prints *response* headers verbatim, whatever a server sends
    with OpenRouter(api_key=FAKE_KEY, server_url=hostile, retry_config=RetryConfig(max_retries=1, max_wait=0)) as c:
        for case in (c for c in CASES if c != "headers"):
            with contextlib.suppress(errors.OpenRouterError):
                c.chat.send(messages=[{"role": "user", "content": "x"}], model=case)
    assert any(r.name.startswith("httpcore") for r in caplog.records), "DEBUG records were captured"
    assert any(r.name == "or_magic" for r in caplog.records)
    assert hits(caplog.text) == [], "the key is in the log output"
    assert hits(repr([(r.msg, r.args) for r in caplog.records])) == []


def test_verbose_sandbox_log_never_carries_the_key(capfd: pytest.CaptureFixture) -> None:
    with start(verbose=True) as sb, OpenRouter(api_key=FAKE_KEY, server_url=sb.url) as c:
        c.chat.send(messages=[{"role": "user", "content": "x"}], model="sandbox/echo")
    err = capfd.readouterr().err
    assert "POST /api/v1/chat/completions" in err and hits(err) == []


# ---------------------------------------------------------------- the demo notebooks


@pytest.mark.kernel
@pytest.mark.timeout(900)
def test_executed_notebooks_never_carry_the_key(sandbox: Sandbox, tmp_path: Path) -> None:
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not notebooks:
        pytest.skip("no notebooks in notebooks/ yet")
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import run_notebooks
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    home = tmp_path / "home"
    home.mkdir()
    env = run_notebooks.kernel_env(extra={"OPENROUTER_API_KEY": FAKE_KEY, "OPENROUTER_BASE_URL": sandbox.url,
                                          "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")})
    out = tmp_path / "out"
    sandbox.clear_requests()
    cells = 0
    for nb in notebooks:
        result = run_notebooks.execute_notebook(nb, out, env=env, timeout=180)
        leaked = [p.describe(nb.name) for p in result.problems if "API key" in p.summary]
        assert leaked == [], leaked
        assert result.output is not None and hits(result.output.read_bytes()) == []
        cells += result.cells
    assert files_with_key(out) == [] and files_with_key(home) == []
    requests = [r for r in sandbox.requests if r["path"].endswith("/chat/completions")]
    assert requests, "the notebooks ran against the sandbox through OPENROUTER_BASE_URL"
    assert all(r["has_auth"] and r["headers"]["authorization"] == "<redacted>" for r in requests)
    print(f"secrets: {len(notebooks)} notebooks, {cells} cells, {len(requests)} chat requests, "
          f"{len(list(out.rglob('*')))} files written")
