"""OpenRouter-native features through a real kernel and the sandbox: prompt caching, exact cost after an
interrupt, the web-search server tool, image output and audio input from /models."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import re
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
from _kernel import FAKE_KEY, Kernel

from or_magic.sandbox import Sandbox

pytestmark = pytest.mark.kernel

LONG = " ".join(f"word{i}" for i in range(3000))  # long enough for the sandbox to cache
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28)


def chats(sandbox: Sandbox) -> list[dict]:
    return [r for r in sandbox.requests if r["path"].endswith("/chat/completions")]


def footer_of(r) -> str:
    return r.outputs()[-1]["data"]["text/plain"]


def test_prompt_cache_auto_marks_only_models_that_need_it(kern: Kernel, sandbox: Sandbox) -> None:
    sandbox.clear_requests()
    first = kern.run(f"%%chat -m sandbox/anthropic --chat pc\n{LONG}", cell_id="pc1")
    second = kern.run("%%chat -m sandbox/anthropic --chat pc\nand again", cell_id="pc2")
    kern.run(f"%%chat -m sandbox/openai --chat po\n{LONG}", cell_id="po1")
    sent = chats(sandbox)
    assert [x["body"].get("cache_control") for x in sent] == [{"type": "ephemeral"}] * 2 + [None]
    assert "prompt cache:" in footer_of(first) and "written" in footer_of(first)
    assert "prompt cache:" in footer_of(second) and "read" in footer_of(second), footer_of(second)
    usage = kern.run("%chat usage").text()
    assert "cached in" in usage
    row = next(line for line in usage.splitlines() if line.startswith("sandbox/anthropic"))
    assert int(row.split()[3]) > 0, row


def _price(sandbox: Sandbox, model: str, kind: str) -> float:
    """A price from the sandbox's /models, as the client reads it."""
    with urllib.request.urlopen(f"{sandbox.url}/models", timeout=10) as answer:
        listing = json.load(answer)["data"]
    return float(next(m for m in listing if m["id"] == model)["pricing"][kind])


def _count(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    return int(found.group(1).replace(",", "")) if found else 0


def test_footer_and_usage_show_what_the_prompt_cache_saved(kern: Kernel, sandbox: Sandbox) -> None:
    """Chat usage has the cached token counts, not the money: the saving is priced from /models."""
    sandbox.reset()
    first = kern.run(f"%%chat -m sandbox/anthropic --chat ps\n{LONG}", cell_id="ps1")
    second = kern.run("%%chat -m sandbox/anthropic --chat ps\nand once more", cell_id="ps2")
    assert "writing cost $" in footer_of(first) and "more" in footer_of(first), footer_of(first)
    read = _count(r"([\d,]+) read", footer_of(second))
    written = _count(r"([\d,]+) written", footer_of(second))  # the first answer joins the cached prefix
    saved = re.search(r"saved \$([\d.]+)", footer_of(second))
    assert read > 0 and saved, footer_of(second)
    prompt = _price(sandbox, "sandbox/anthropic", "prompt")
    expected = read * (prompt - _price(sandbox, "sandbox/anthropic", "input_cache_read")) - \
        written * (_price(sandbox, "sandbox/anthropic", "input_cache_write") - prompt)
    assert float(saved.group(1)) == pytest.approx(expected, rel=0.06)  # the footer shows 2 digits
    kept = kern.run("print(_m.session.store.get('ps').turns[-1].usage['cache_saved'])").text()
    assert float(kept.strip().splitlines()[-1]) == pytest.approx(expected)
    usage = kern.run("%chat usage").text()
    assert "the prompt cache saved $" in usage or "writing the prompt cache cost $" in usage, usage


def test_prompt_cache_on_off_and_per_cell(kern: Kernel, sandbox: Sandbox) -> None:
    sandbox.clear_requests()
    kern.run("%%chat -m sandbox/anthropic --once --no-prompt-cache\nhello")
    kern.run("%config ChatMagics.prompt_cache = 'on'")
    kern.run("%%chat -m sandbox/openai --once\nhello")
    kern.run("%config ChatMagics.prompt_cache = 'off'")
    kern.run("%%chat -m sandbox/anthropic --once\nhello")
    kern.run("%config ChatMagics.prompt_cache = 'sometimes'")
    refused = kern.run("print(_m.prompt_cache)").text().strip().splitlines()[-1]
    kern.run("%config ChatMagics.prompt_cache = 'auto'")
    assert [x["body"].get("cache_control") for x in chats(sandbox)] == [None, {"type": "ephemeral"}, None]
    assert refused == "off", "a value outside auto/on/off is refused"


def test_interrupted_stream_gets_its_real_cost_from_generation(kern: Kernel, sandbox: Sandbox) -> None:
    sandbox.generation_lag = 0.4  # the first look-up gets a 404, as on the real server
    try:
        kern.run("_m.session.spent = 0.0; _m.session.reconciled.clear()")
        msg = kern.send("%%chat -m sandbox/paced-2000 --chat ex\ncount slowly", cell_id="ex1")
        time.sleep(0.8)
        kern.interrupt()
        r = kern.collect(msg, timeout=30)
        assert "interrupted" in r.text()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            state = kern.run("import json; print(json.dumps([[x.state, x.cost] for x in "
                             "_m.session.reconciled]))").text().strip().splitlines()[-1]
            if "pending" not in state:
                break
            time.sleep(0.3)
        [[status, cost]] = json.loads(state)
        assert status == "reconciled" and cost > 0
        spent = float(kern.run("print(_m.session.spent)").text().strip().splitlines()[-1])
        assert spent == pytest.approx(cost)
        turn_cost = kern.run("print(_m.session.store.get('ex').turns[-1].usage.get('cost'))").text()
        assert float(turn_cost.strip().splitlines()[-1]) == pytest.approx(cost)
        usage = kern.run("%chat usage").text()
        assert "reconciled gen-" in usage and "added to the turn and spend" in usage
        assert "key credit: limit $10.0000" in usage and FAKE_KEY not in usage
        assert any(r["path"].endswith("/generation") for r in sandbox.requests)
    finally:
        sandbox.generation_lag = 0.0


def test_failed_stream_gets_its_real_cost_without_delaying_the_cell(kern: Kernel, sandbox: Sandbox) -> None:
    """A stream that fails mid-way reports no cost; its generation is looked up in the background."""
    sandbox.generation_lag = 0.8  # the first look-up (after 0.5 s) gets a 404, the retry finds it
    try:
        kern.run("_m.session.spent = 0.0; _m.session.reconciled.clear()")
        sandbox.clear_requests()
        r = kern.run("%%chat -m sandbox/midstream-documented --chat fs\ntell me", cell_id="fs1")
        replied = time.time()
        assert r.status == "ok" and "Provider disconnected unexpectedly" in r.text()
        state = _wait_reconciled(kern)
        [[status, cost]] = json.loads(state)
        assert status == "reconciled" and cost > 0, state
        spent = float(kern.run("print(_m.session.spent)").text().strip().splitlines()[-1])
        assert spent == pytest.approx(cost), "the failed answer's real cost is in the session's spend"
        looks = [x for x in sandbox.requests if x["path"].endswith("/generation")]
        assert len(looks) >= 2, "a 404 first, then the retry"
        assert replied < looks[1]["time"], "the cell answered before the look-up's first retry"
        assert "reconciled gen-" in kern.run("%chat usage").text()
    finally:
        sandbox.generation_lag = 0.0


def _wait_reconciled(kern: Kernel, timeout: float = 10) -> str:
    """The look-ups' [state, cost] as JSON, once none is pending (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        state = kern.run("import json; print(json.dumps([[x.state, x.cost] for x in "
                         "_m.session.reconciled]))").text().strip().splitlines()[-1]
        if "pending" not in state or time.monotonic() > deadline:
            return state
        time.sleep(0.3)


def test_web_sends_the_server_tool_with_function_tools(kern: Kernel, sandbox: Sandbox) -> None:
    kern.run("def add(a: int, b: int) -> int:\n    'Add two numbers.'\n    return a + b")
    sandbox.clear_requests()
    r = kern.run("%%chat -m sandbox/web --web-results 3 --once\nwhat is new?")
    assert r.status == "ok"
    body = chats(sandbox)[-1]["body"]
    assert body["tools"] == [{"type": "openrouter:web_search", "parameters": {"max_results": 3}}]
    assert "plugins" not in body
    html = r.html()
    assert html.count("example.org/search/") >= 3, "the citations are listed"
    kern.run("%%chat -m sandbox/echo --web --tools add --once\nadd 1 and 2")
    tools = chats(sandbox)[-1]["body"]["tools"]
    assert [t["type"] for t in tools] == ["function", "openrouter:web_search"]
    bad = kern.run("%%chat --web-results 0\nhello")
    assert bad.status == "error" and "--web-results must be within" in bad.text()


def test_image_model_gets_modalities_and_param_wins(kern: Kernel, sandbox: Sandbox) -> None:
    sandbox.clear_requests()
    kern.run("%%chat -m sandbox/image --once\ndraw a cat")
    kern.run("%%chat -m sandbox/echo --once\njust text")
    kern.run("%%chat -m sandbox/image --once --param modalities='[\"image\"]'\ndraw a dog")
    assert [x["body"].get("modalities") for x in chats(sandbox)] == [["image", "text"], None, ["image"]]


def test_audio_is_attached_and_refused_where_the_model_takes_none(kern: Kernel, sandbox: Sandbox, tmp_path) -> None:
    clip = tmp_path / "clip.wav"
    clip.write_bytes(WAV)
    kern.run(f"clip_bytes = {WAV!r}")
    sandbox.clear_requests()
    r = kern.run(f"%%chat -m sandbox/audio --once --audio {clip} --audio clip_bytes\nwhat do you hear?")
    assert r.status == "ok" and "2 audio clip(s): wav" in r.text()
    parts = chats(sandbox)[-1]["body"]["messages"][-1]["content"]
    audio = [p for p in parts if p["type"] == "input_audio"]
    assert [p["input_audio"]["format"] for p in audio] == ["wav", "wav"]
    assert base64.b64decode(audio[0]["input_audio"]["data"]) == WAV
    refused = kern.run(f"%%chat -m sandbox/echo --once --audio {clip}\nwhat do you hear?")
    assert refused.status == "error" and "does not take audio input" in refused.text()
    kern.run("clip_text = b'hello, not audio'")
    wrong = kern.run("%%chat -m sandbox/audio --once --audio clip_text\nhm")
    assert wrong.status == "error" and "neither wav nor mp3" in wrong.text()
    assert len(chats(sandbox)) == 1, "nothing sent for a refused clip"


MP3_ID3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + bytes(60)  # a tag, then a frame
MP3_BARE = b"\xff\xfb\x90\x64" + bytes(60)  # a frame sync with no tag


@pytest.fixture
def clip_server(tmp_path) -> Iterator[str]:
    """A local HTTP server for audio files (the API takes audio only as data: the client downloads it)."""
    (tmp_path / "tagged.mp3").write_bytes(MP3_ID3)
    (tmp_path / "named-wrong.wav").write_bytes(MP3_BARE)  # the bytes decide, not the name
    (tmp_path / "note.txt").write_bytes(b"not audio at all")
    handler = functools.partial(QuietFiles, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_audio_from_a_url_is_downloaded_and_mp3_detected(kern: Kernel, sandbox: Sandbox, clip_server: str) -> None:
    sandbox.clear_requests()
    r = kern.run(f"%%chat -m sandbox/audio --once --audio {clip_server}/tagged.mp3 "
                 f"--audio {clip_server}/named-wrong.wav\nwhat is this?")
    assert r.status == "ok", r.text()
    parts = chats(sandbox)[-1]["body"]["messages"][-1]["content"]
    audio = [p["input_audio"] for p in parts if p["type"] == "input_audio"]
    assert [a["format"] for a in audio] == ["mp3", "mp3"]
    assert [base64.b64decode(a["data"]) for a in audio] == [MP3_ID3, MP3_BARE]
    for bad, says in ((f"{clip_server}/note.txt", "neither wav nor mp3"),
                      (f"{clip_server}/missing.mp3", "cannot download")):
        refused = kern.run(f"%%chat -m sandbox/audio --once --audio {bad}\nhm")
        assert refused.status == "error" and says in refused.text() and "Traceback" not in refused.text()
    assert len(chats(sandbox)) == 1, "nothing sent for a refused clip"
