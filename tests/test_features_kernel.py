"""Record/replay, budget and restore-after-restart, through real kernels and the sandbox."""

from __future__ import annotations

import json

import nbformat
import pytest
from _kernel import FAKE_KEY, Kernel, kernel

from or_magic.sandbox import Sandbox

pytestmark = pytest.mark.kernel


def chats(sandbox: Sandbox) -> list[dict]:
    return [r for r in sandbox.requests if r["path"].endswith("/chat/completions")]


def bundle(r) -> dict:
    return next(o["data"] for o in r.outputs() if "text/markdown" in o.get("data", {}))


def test_cache_replays_identical_request_without_network_or_key(kern: Kernel, sandbox: Sandbox, tmp_path) -> None:
    cache_dir = tmp_path / "cache"
    kern.run(f"%config ChatMagics.cache_dir = {str(cache_dir)!r}\n%chat cache on")
    sandbox.clear_requests()
    first = kern.run("%%chat --chat c\nremember this answer", cell_id="c1")
    assert first.status == "ok" and len(chats(sandbox)) == 1
    kern.run("%chat reset c")
    again = kern.run("%%chat --chat c\nremember this answer", cell_id="c1")
    assert len(chats(sandbox)) == 1, "answered from the cache"
    assert "cached" in bundle(again)["text/html"]
    assert bundle(again)["text/plain"].startswith("remember this answer")
    no_cache = kern.run("%%chat --chat c --new --no-cache\nremember this answer", cell_id="c1")
    assert no_cache.status == "ok" and len(chats(sandbox)) == 2
    assert FAKE_KEY not in "".join(p.read_text() for p in cache_dir.rglob("*.json"))
    # "Restart & Run All": a new kernel with no key and an unreachable server still gets the answer
    env = {"OPENROUTER_BASE_URL": sandbox.url, "OPENROUTER_API_KEY": ""}
    with kernel(env) as fresh:
        fresh.run(f"%load_ext or_magic\n%config ChatMagics.cache_dir = {str(cache_dir)!r}\n"
                  "%config ChatMagics.cache = True\n%config ChatMagics.model = 'sandbox/echo'")
        before = len(chats(sandbox))
        r = fresh.run("%%chat --chat c\nremember this answer", cell_id="c1")
        assert r.status == "ok" and len(chats(sandbox)) == before
        assert "cached" in bundle(r)["text/html"]
    cleared = kern.run("%chat cache clear")
    assert "removed" in cleared.text()
    kern.run("%chat cache off")


def test_budget_refuses_before_sending(kern: Kernel, sandbox: Sandbox) -> None:
    kern.run("%config ChatMagics.budget = 1e-9")
    sandbox.clear_requests()
    r = kern.run("%%chat --max-tokens 100\nthis would cost something", cell_id="b1")
    assert r.status == "ok"
    html = bundle(r)["text/html"]
    assert "BudgetExceededError" in html and "budget" in html.lower()
    assert chats(sandbox) == []
    assert "budget" in kern.run("%chat usage").text()
    kern.run("%config ChatMagics.budget = 100.0")
    assert kern.run("%%chat\nnow fine", cell_id="b2").status == "ok" and len(chats(sandbox)) == 1
    usage = kern.run("%chat usage").text()
    assert "of the $100 budget" in usage
    kern.run("%config ChatMagics.budget = None")


def test_turns_saved_in_outputs_rebuild_threads_after_restart(kern: Kernel, sandbox: Sandbox, tmp_path) -> None:
    cells = [("r1", "%%chat\nfirst question"), ("r2", "%%chat --chat side -s 'be brief'\nside question"),
             ("r3", "%%chat\nsecond question")]
    nb = nbformat.v4.new_notebook()
    for cell_id, code in cells:
        r = kern.run(code, cell_id=cell_id)
        cell = nbformat.v4.new_code_cell(code, id=cell_id)
        cell.outputs = [nbformat.v4.new_output(o["type"], data=o["data"], metadata=o.get("metadata", {}))
                        for o in r.outputs() if o["type"] == "display_data"]
        nb.cells.append(cell)
    saved = [o for c in nb.cells for o in c.outputs if "or_magic" in o.get("metadata", {})]
    assert len(saved) == 3
    assert FAKE_KEY not in json.dumps(nb)
    path = tmp_path / "saved.ipynb"
    nbformat.write(nb, path)
    env = {"OPENROUTER_BASE_URL": sandbox.url, "OPENROUTER_API_KEY": FAKE_KEY, "JPY_SESSION_NAME": str(path)}
    sandbox.clear_requests()
    with kernel(env) as fresh:
        loaded = fresh.run("%load_ext or_magic\n%config ChatMagics.model = 'sandbox/echo'")
        assert "restored 3 turns" in loaded.text()
        history = fresh.run("%chat history").text()
        assert "first question" in history and "second question" in history
        assert "side question" in fresh.run("%chat history side").text()
        # the restored thread continues: the next request carries the restored turns
        fresh.run("%%chat\nthird", cell_id="r4")
        sent = chats(sandbox)[-1]["body"]["messages"]
        assert [m["content"] for m in sent] == ["first question", "first question", "second question",
                                                "second question", "third"]
        fresh.run("%chat reset")
        assert "restored 3 turns" in fresh.run(f"%chat restore {path}").text()


SCHEMA_SETUP = '''
from pydantic import BaseModel
class City(BaseModel):
    name: str
    population: int
'''


def test_schema_binds_validated_instance(kern: Kernel, sandbox: Sandbox) -> None:
    kern.run(SCHEMA_SETUP)
    sandbox.clear_requests()
    r = kern.run("%%chat --schema City -o city\nDescribe a city", cell_id="s1")
    assert r.status == "ok", r.text()
    fmt = chats(sandbox)[-1]["body"]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["additionalProperties"] is False
    out = kern.run("print(type(city).__name__, isinstance(city.population, int))").text()
    assert "City True" in out


def test_schema_failure_is_a_card_keeping_raw_text(kern: Kernel) -> None:
    kern.run(SCHEMA_SETUP + "city = 'untouched'")
    r = kern.run("%%chat --schema City -o city\nDescribe a city invalid_json=1", cell_id="s2")
    assert r.status == "ok" and not r.of_type("error")
    b = bundle(r)
    assert "StructuredOutputError" in b["text/html"]
    assert b["text/plain"].strip(), "the raw answer is kept"
    assert "'untouched'" in kern.run("city").text(), "nothing bound on failure"


def test_invalid_structured_answer_is_not_cached(kern: Kernel, sandbox: Sandbox, tmp_path) -> None:
    kern.run(SCHEMA_SETUP + f"%config ChatMagics.cache_dir = {str(tmp_path / 'c')!r}\n%chat cache on")
    sandbox.clear_requests()
    for _ in range(2):
        r = kern.run("%%chat --schema City --once\nA city invalid_json=1", cell_id="s3")
        assert "StructuredOutputError" in bundle(r)["text/html"]
        assert "does not match the requested schema" in bundle(r)["text/html"]
        assert "partial —" not in bundle(r)["text/html"]
    assert len(chats(sandbox)) == 2, "a failed answer is asked again, not replayed"
    kern.run("%chat cache off")
    r = kern.run("bad = {'foo': 1}")
    r = kern.run("%%chat --schema bad\nx", cell_id="s4")
    assert r.status == "error" and "UsageError" in r.text() and "Traceback" not in r.text()


def test_subcommands_expand_variables(kern: Kernel, tmp_path) -> None:
    kern.run("%%chat\nsaved", cell_id="v1")
    target = tmp_path / "via var.json"
    kern.run(f"P = {str(target)!r}")
    assert kern.run("%chat export $P").status == "ok"
    assert target.exists()


def test_context_and_dollar_interpolation(kern: Kernel, sandbox: Sandbox) -> None:
    kern.run("data = {'alpha': 1, 'beta': [1, 2, 3]}\nwho = 'Ada'\nx = 5")
    sandbox.clear_requests()
    r = kern.run("%%chat --context data --dry-run\nHello $who, what about {braces}?", cell_id="x1")
    assert "context: data" in r.text() and chats(sandbox) == []
    kern.run("%%chat --context data\nHello $who, what about {braces}?", cell_id="x1")
    sent = chats(sandbox)[-1]["body"]["messages"][-1]["content"]
    assert "Hello Ada, what about {braces}?" in sent
    assert "`data`" in sent and "alpha" in sent
    kern.run("%%chat\nMath stays math: $x^2$ costs \\$who", cell_id="x3")
    assert chats(sandbox)[-1]["body"]["messages"][-1]["content"] == "Math stays math: $x^2$ costs $who"
    r = kern.run("%%chat --context nosuchvar\nhi", cell_id="x2")
    assert r.status == "error" and "nosuchvar" in r.text()


def test_image_attachment_and_modality_check(kern: Kernel, sandbox: Sandbox, tmp_path) -> None:
    import base64

    png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
                           "AAAABJRU5ErkJggg==")
    path = tmp_path / "dot.png"
    path.write_bytes(png)
    sandbox.clear_requests()
    r = kern.run(f"%%chat -m sandbox/image --image {path}\nWhat is in this picture?", cell_id="a1")
    assert r.status == "ok", r.text()
    content = chats(sandbox)[-1]["body"]["messages"][-1]["content"]
    assert content[0] == {"type": "text", "text": "What is in this picture?"}
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")
    sandbox.clear_requests()
    r = kern.run(f"%%chat -m sandbox/echo --image {path}\nAnd this?", cell_id="a2")
    assert r.status == "error" and "image" in r.text() and chats(sandbox) == []


TOOLS_SETUP = '''
calls = []
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: first number
        b: second number
    """
    calls.append((a, b))
    return a + b

def broken(x: str) -> str:
    """Always fails."""
    raise RuntimeError("tool exploded")
'''


def test_tools_loop_executes_and_answers(kern: Kernel, sandbox: Sandbox) -> None:
    kern.run(TOOLS_SETUP)
    sandbox.clear_requests()
    r = kern.run("%%chat -m sandbox/tools --tools add\nAdd two numbers", cell_id="t1")
    assert r.status == "ok", r.text()
    sent = chats(sandbox)
    assert len(sent) == 2
    assert sent[0]["body"]["tools"][0]["function"]["name"] == "add"
    second = sent[1]["body"]["messages"]
    assert second[-2]["role"] == "assistant" and second[-2]["tool_calls"]
    assert second[-1]["role"] == "tool" and second[-1]["tool_call_id"] == second[-2]["tool_calls"][0]["id"]
    html = bundle(r)["text/html"]
    assert "add" in html and "result:" in html
    result = second[-1]["content"]
    assert "<pre" in html and result in html  # the card shows what the tool returned
    assert kern.run("print(len(calls))").text().strip().endswith("1")
    # the tool exchange stays in the thread's context
    kern.run("%%chat\nand then?", cell_id="t2")
    roles = [m["role"] for m in chats(sandbox)[-1]["body"]["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant", "user"]


def test_tool_exception_is_reported_to_the_model(kern: Kernel, sandbox: Sandbox) -> None:
    kern.run(TOOLS_SETUP)
    sandbox.clear_requests()
    r = kern.run("%%chat -m sandbox/tools --tools broken\nTry it", cell_id="t3")
    assert r.status == "ok" and not r.of_type("error")
    tool_msg = chats(sandbox)[-1]["body"]["messages"][-1]
    assert tool_msg["role"] == "tool" and "tool exploded" in tool_msg["content"]
    assert "tool exploded" in bundle(r)["text/html"]


def test_max_steps_bounds_the_loop(kern: Kernel, sandbox: Sandbox) -> None:
    kern.run(TOOLS_SETUP)
    sandbox.clear_requests()
    r = kern.run("%%chat -m sandbox/tools --tools add\nkeep calling calls=3", cell_id="t4")
    assert r.status == "ok" and len(chats(sandbox)) == 4  # three tool rounds, then the answer
    sandbox.clear_requests()
    r = kern.run("%%chat -m sandbox/tools --tools add --max-steps 2\nkeep calling calls=5", cell_id="t5")
    assert r.status == "ok" and len(chats(sandbox)) == 3  # the first request and 2 tool round trips
    assert "--max-steps limit" in bundle(r)["text/html"]
    # the unanswered last tool call is not kept: the follow-up request is one a provider accepts
    kern.run("%%chat -m sandbox/echo\nfollow-up", cell_id="t6")
    messages = chats(sandbox)[-1]["body"]["messages"]
    for i, m in enumerate(messages):
        for call in m.get("tool_calls") or []:
            assert any(n.get("tool_call_id") == call["id"] for n in messages[i + 1:]), "dangling tool call"
