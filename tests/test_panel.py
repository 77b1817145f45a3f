"""The widget panel through a real kernel against the sandbox, driven through its controls' traits.

Each test creates a panel in the kernel (``ChatPanel()``, as a user would from Python), sets widget values,
calls ``send()``/``stop()`` and waits inside the kernel for the panel's task (bounded), then checks what the
panel shows, what the sandbox received, and what the shared conversation store and magic defaults hold.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from _kernel import Kernel, kernel, ok, value

from or_magic.panel import close_models, model_note
from or_magic.sandbox import Sandbox
from or_magic.types import ModelInfo

pytestmark = pytest.mark.kernel

# A bounded wait for the panel's background work, run inside the kernel with top-level await.
WAIT = """
import asyncio as _asyncio
async def _wait(p, timeout=20.0):
    futures = {f for f in (p.models_task, p.task) if f is not None and not f.done()}
    if futures:
        done, pending = await _asyncio.wait(futures, timeout=timeout)
        assert not pending, "panel still busy after %s s" % timeout
    await _asyncio.sleep(0.05)  # let the done-callbacks (busy state, refresh) run
"""


def chat_requests(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests if r["path"].endswith("/chat/completions")]


@pytest.fixture
def panel(kern: Kernel) -> Iterator[Kernel]:
    """A fresh panel ``p`` in the kernel (default thread), its model list loaded; closed afterwards."""
    ok(kern, WAIT + "%config ChatMagics.max_retries = 0\n"
                    "_m = get_ipython().magics_manager.registry['ChatMagics']\n"
                    "_m.temperature = _m.top_p = _m.max_tokens = None\n"
                    "from or_magic import ChatPanel\np = ChatPanel()")
    ok(kern, "await _wait(p)")
    yield kern
    ok(kern, "for _x in [v for v in list(globals().values()) if isinstance(v, ChatPanel)]:\n"
             "    _x.close()\n"
             "await _asyncio.sleep(0.05)")


def test_send_streams_into_transcript_and_sets_magic_defaults(panel: Kernel, sandbox: Sandbox) -> None:
    k = panel
    assert "sandbox/echo" in value(k, "list(p.model.options)")
    assert "context" in value(k, "p.model_info.value")  # the chosen model's context length and price
    sandbox.clear_requests()
    ok(k, "p.temperature.value = 0.35; p.top_p.value = 0.9; p.max_tokens.value = 64\n"
          "p.prompt.value = 'hello from the panel'\nt = p.send(); assert t is not None\n"
          "assert p.send_button.disabled and not p.stop_button.disabled")
    ok(k, "await _wait(p)")
    assert "hello from the panel" in value(k, "p.transcript_html()").split("You", 2)[-1]
    assert value(k, "[p.send_button.disabled, p.stop_button.disabled, p.prompt.value]") == [False, True, ""]
    body = chat_requests(sandbox)[-1]["body"]
    assert (body["model"], body["temperature"], body["top_p"], body["max_tokens"]) == ("sandbox/echo", 0.35, 0.9, 64)
    assert body["stream"] is True
    # the sliders are the notebook's defaults now: a later %%chat cell sends them and continues the thread
    assert value(k, "[_m.temperature, _m.top_p, _m.max_tokens]") == [0.35, 0.9, 64]
    sandbox.clear_requests()
    ok(k, "%%chat\nand from a cell", cell_id="cell-after-panel")
    body = chat_requests(sandbox)[-1]["body"]
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.35, 0.9, 64)
    assert [m["content"] for m in body["messages"]][-3:] == ["hello from the panel", "hello from the panel",
                                                             "and from a cell"]
    # the cell's turn is in the panel's transcript (post_run_cell hook), and after an explicit refresh too
    assert "and from a cell" in value(k, "p.transcript_html()")
    ok(k, "p.refresh()")
    assert value(k, "p.transcript_html()").count("and from a cell") >= 2  # prompt bubble + echoed answer
    # a cell's own option still wins over the panel's default
    ok(k, "%%chat -t 1.5\nown option", cell_id="cell-own")
    assert chat_requests(sandbox)[-1]["body"]["temperature"] == 1.5


def test_panel_turn_continues_a_thread_started_by_cells(panel: Kernel, sandbox: Sandbox) -> None:
    k = panel
    ok(k, "%%chat --chat side\nfirst in a cell", cell_id="side-1")
    ok(k, "p.refresh(); p.thread.value = 'side'")
    assert "first in a cell" in value(k, "p.transcript_html()")
    sandbox.clear_requests()
    ok(k, "p.prompt.value = 'then the panel'; p.send()")
    ok(k, "await _wait(p)")
    sent = [m["content"] for m in chat_requests(sandbox)[-1]["body"]["messages"]]
    assert sent == ["first in a cell", "first in a cell", "then the panel"]
    assert value(k, "[t.user for t in _m.session.store.get('side').turns]") == ["first in a cell", "then the panel"]
    assert value(k, "len(_m.session.store.get('default').turns)") == 0
    # New chat: an empty thread, selected; the other threads keep their turns
    assert value(k, "[p.new_thread(), p.thread.value]")[1].startswith("chat ")
    assert "No turns yet" in value(k, "p.transcript_html()")


def test_system_prompt_is_the_threads(panel: Kernel, sandbox: Sandbox) -> None:
    k = panel
    sandbox.clear_requests()
    ok(k, "p.system.value = 'be brief'; p.prompt.value = 'one'; p.send()\nawait _wait(p)")
    assert chat_requests(sandbox)[-1]["body"]["messages"][0] == {"role": "system", "content": "be brief"}
    ok(k, "%%chat\ntwo", cell_id="sys-2")  # a cell on the same thread keeps the panel's system prompt
    assert chat_requests(sandbox)[-1]["body"]["messages"][0] == {"role": "system", "content": "be brief"}
    ok(k, "%%chat -s 'from a cell'\nthree", cell_id="sys-3")
    assert value(k, "p.system.value") == "from a cell"  # the box follows the thread
    ok(k, "p.system.value = ''; p.prompt.value = 'four'; p.send()\nawait _wait(p)")  # emptied: no system prompt
    assert chat_requests(sandbox)[-1]["body"]["messages"][0]["role"] == "user"
    assert value(k, "_m.session.store.get().system") is None


def test_stop_keeps_partial_answer_marked_interrupted(panel: Kernel, sandbox: Sandbox) -> None:
    k = panel
    words = " ".join(f"w{i}" for i in range(200))
    ok(k, f"p.model.value = 'sandbox/slow'; p.prompt.value = '{words} rate=20'; p.send()")
    ok(k, "await _asyncio.sleep(1.0)")
    r = ok(k, "print('other cell ran while streaming:', p.busy)")  # the kernel is not blocked by the panel
    assert "other cell ran while streaming: True" in r.text()
    ok(k, "p.stop()\nawait _wait(p)")
    turn = value(k, "[(t.status, t.text) for t in _m.session.store.get().turns]")
    assert len(turn) == 1
    status, text = turn[0]
    assert status == "interrupted"
    assert text.startswith("w0 w1") and "w199" not in text
    html = value(k, "p.transcript_html()")
    assert "interrupted" in html and "w1" in html
    assert "stopped" in value(k, "p.status.value")
    assert value(k, "[p.send_button.disabled, p.stop_button.disabled]") == [False, True]


def test_error_model_shows_error_card_and_keeps_thread_clean(panel: Kernel, sandbox: Sandbox) -> None:
    k = panel
    ok(k, "p.model.value = 'sandbox/error-402'; p.prompt.value = 'will fail'; p.send()")
    ok(k, "await _wait(p)")
    html = value(k, "p.transcript_html()")
    assert "PaymentRequiredResponseError" in html and "402" in html
    assert value(k, "len(_m.session.store.get().turns)") == 0
    assert value(k, "p.prompt.value") == "will fail"  # kept, so it can be sent again
    assert "failed" in value(k, "p.status.value")


@pytest.mark.parametrize(("line", "message"), [
    ("--max-tokens 0", "at least 1"), ("--max-tokens -3", "at least 1"), ("--max-tokens lots", "invalid int value"),
    ("--max-tokens 99999999", "more than"), ("-t 7", "--temperature must be within 0..2"),
    ("--tools nowhere", "no such variable"), ("-s 'unclosed", "No closing quotation"), ("stray words", "unexpected"),
    ("--map p", "--map is for %%chat cells"), ("--concurrency 4", "only applies with --map"),
    ("--compare sandbox/echo", "2 to 4 different models"), ("--keep sandbox/echo", "goes with --compare"),
    ("-o get_ipython", "belongs to IPython"), ("-o print", "belongs to"), ("--web-results 99", "--web-results")])
def test_a_refused_option_line_sends_nothing(panel: Kernel, sandbox: Sandbox, line: str, message: str) -> None:
    """The option box is parsed and checked like a %%chat line: one line in the status, nothing sent or changed."""
    k = panel
    sandbox.clear_requests()
    ok(k, f"p.options.value = {line!r}; p.prompt.value = 'never sent'\nassert p.send() is None")
    status = value(k, "p.status.value")
    assert message in status and "Traceback" not in status
    assert chat_requests(sandbox) == []
    assert value(k, "[len(_m.session.store.get().turns), p.prompt.value, _m.max_tokens]") == [0, "never sent", None]


def test_two_requests_on_one_thread_never_interleave(panel: Kernel, sandbox: Sandbox) -> None:
    k = panel
    ok(k, "q = ChatPanel()\nawait _wait(q)")
    sandbox.clear_requests()
    ok(k, "p.model.value = 'sandbox/slow'; p.prompt.value = 'a b c d e f g h i j k l rate=8'\n"
          "assert p.send() is not None")
    ok(k, "await _asyncio.sleep(0.3)")
    # the same panel again, another panel on the same thread, and a %%chat cell: all refused, clearly
    ok(k, "p.prompt.value = 'second'\nassert p.send() is None")
    assert "already answering" in value(k, "p.status.value")
    ok(k, "q.prompt.value = 'from q'\nassert q.send() is None")
    assert "already answering" in value(k, "q.status.value")
    r = ok(k, "%%chat\nfrom a cell", cell_id="busy-cell")
    assert "ThreadBusyError" in r.text()
    ok(k, "await _wait(p)")
    assert len(chat_requests(sandbox)) == 1
    assert value(k, "[(t.user, t.status) for t in _m.session.store.get().turns]") == [
        ["a b c d e f g h i j k l rate=8", "ok"]]


def test_config_and_other_panels_move_the_controls(panel: Kernel) -> None:
    k = panel
    ok(k, "%config ChatMagics.temperature = 0.7\n%config ChatMagics.max_tokens = 300")
    assert value(k, "[p.temperature.value, p.max_tokens.value]") == [0.7, 300]
    ok(k, "q = ChatPanel()\nq.top_p.value = 0.5\nq.model.value = 'sandbox/long'")
    assert value(k, "[p.top_p.value, p.model.value, _m.model]") == [0.5, "sandbox/long", "sandbox/long"]


def test_unknown_model_warns_but_is_sent(panel: Kernel, sandbox: Sandbox) -> None:
    k = panel
    ok(k, "p.model.value = 'sandbox/ecko'")
    note = value(k, "p.model_info.value")
    assert "not in OpenRouter" in note and "sandbox/echo" in note
    sandbox.clear_requests()
    ok(k, "p.prompt.value = 'typo'; assert p.send() is not None\nawait _wait(p)")
    assert chat_requests(sandbox)[-1]["body"]["model"] == "sandbox/ecko"  # a warning, not a refusal


def test_reasoning_and_images_render_like_the_magic(panel: Kernel) -> None:
    k = panel
    ok(k, "p.model.value = 'sandbox/reasoning'; p.prompt.value = 'think'; p.send()\nawait _wait(p)")
    assert "or-magic-reasoning" in value(k, "p.transcript_html()")
    ok(k, "p.model.value = 'sandbox/image'; p.prompt.value = 'draw'; p.send()\nawait _wait(p)")
    ok(k, "from or_magic.panel_transcript import descendants as _descendants")
    images = "[w for w in _descendants(p.transcript) if type(w).__name__ == 'Image']"
    assert value(k, f"[(w.format, w.value[:4] == b'\\x89PNG') for w in {images}]") == [["png", True]]
    ok(k, "p.refresh(); p.thread.value = p.new_thread(); p.thread.value = 'default'")  # rebuilt from the store
    assert value(k, f"len({images})") == 1


def test_cell_reruns_resets_and_undo_show_in_the_panel(panel: Kernel) -> None:
    k = panel
    for cell in ("r1", "r2"):
        ok(k, f"%%chat\nturn {cell}", cell_id=cell)
    ok(k, "%%chat\nturn r1 again", cell_id="r1")  # re-run: replaces its turn, the later one is stale
    html = value(k, "p.transcript_html()")
    assert "turn r1 again" in html and "stale" in html and "turn r1<" not in html
    ok(k, "%chat undo")
    assert "turn r2" not in value(k, "p.transcript_html()")
    ok(k, "%chat reset")
    assert "No turns yet" in value(k, "p.transcript_html()")


def test_chat_panel_from_python_loads_the_extension(kernel_env: dict[str, str]) -> None:
    with kernel(kernel_env) as k:
        ok(k, "from or_magic import ChatPanel\np = ChatPanel()")
        assert value(k, "'ChatMagics' in get_ipython().magics_manager.registry") is True
        assert value(k, "p.magics is get_ipython().magics_manager.registry['ChatMagics']") is True
        ok(k, "%%chat -m sandbox/echo\nfrom a cell")
        assert "from a cell" in value(k, "p.transcript_html()")


def test_chat_panel_command_displays_a_widget(kern: Kernel) -> None:
    r = ok(kern, "%chat panel")
    views = [o for o in r.outputs() if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 1


def test_streaming_bytes_stay_linear(panel: Kernel) -> None:
    """Widget traffic for one answer is a small multiple of its final HTML (frozen blocks are sent once)."""
    k = panel
    r = ok(k, "p.model.value = 'sandbox/long'; p.prompt.value = 'chars=20000 rate=400'\n"
              "_t = p.send()\nawait _wait(p)\nprint('final', len(p.transcript_html()))")
    comm = [m for m in r.messages if m["msg_type"] in ("comm_msg", "comm_open")]
    sent = sum(len(json.dumps(m["content"]).encode()) for m in comm)
    final = int(r.text().split("final", 1)[1].split()[0])
    assert len(comm) > 10, "the answer should stream in many updates"
    assert sent < 6 * final, (sent, final)  # measured: about 3.2x, the final widget itself being 1x


# -- the model picker's note, without a kernel ------------------------------------------------------
MODELS = [ModelInfo(id="openai/gpt-4o-mini", name="OpenAI: GPT-4o-mini", context_length=128000,
                    pricing={"prompt": "0.00000015", "completion": "0.0000006"}),
          ModelInfo(id="anthropic/claude-sonnet-4.5", name="Anthropic: Claude Sonnet 4.5", context_length=200000,
                    pricing={"prompt": "0.000003", "completion": "0.000015"}),
          ModelInfo(id="meta-llama/llama-3.3-70b-instruct", name="Meta: Llama 3.3 70B Instruct",
                    context_length=131072, pricing={"prompt": "0", "completion": "0"})]


@pytest.mark.parametrize("model_id", ["openai/gpt-4o-mini", "openai/gpt-4o-mini:nitro",
                                      "meta-llama/llama-3.3-70b-instruct:free", "openai/gpt-4o-mini:floor",
                                      "openai/gpt-4o-mini:online", "~anthropic/claude-sonnet-latest",
                                      "openrouter/auto"])
def test_known_ids_variants_and_aliases_get_no_warning(model_id: str) -> None:
    level, text = model_note(model_id, MODELS)
    assert level in ("ok", "info"), text


def test_note_shows_context_and_price() -> None:
    assert model_note("openai/gpt-4o-mini", MODELS) == (
        "ok", "OpenAI: GPT-4o-mini · context 128,000 tokens · $0.15/M in · $0.60/M out")
    assert "free" in model_note("meta-llama/llama-3.3-70b-instruct", MODELS)[1]


def test_unknown_id_gets_close_matches_not_refusal() -> None:
    level, text = model_note("openai/gpt-4o-mni", MODELS)
    assert level == "warn" and "openai/gpt-4o-mini" in text
    assert close_models("gpt-4o-mini", MODELS)[0] == "openai/gpt-4o-mini"  # without the provider part
    assert close_models("claude sonnet 4.5", MODELS) == ["anthropic/claude-sonnet-4.5"]
    assert close_models("Anthropic: Claude Sonet 4.5", MODELS) == ["anthropic/claude-sonnet-4.5"]  # by name
    assert close_models("mistral/tiny", MODELS) == []  # nothing close enough: no noise
    assert model_note("has space", MODELS)[0] == "error"
    assert model_note("", MODELS)[0] == "error"
    assert model_note("openai/new-model", None)[0] == "info"  # no list: nothing to check against


TOOLS_AND_SCHEMA = '''
from pydantic import BaseModel
class City(BaseModel):
    name: str
    population: int

def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b
'''


def test_option_box_sends_tools_and_schema_like_a_cell(panel: Kernel, sandbox: Sandbox) -> None:
    """``p.options`` takes a %%chat line; its options win over the controls for that send only."""
    k = panel
    ok(k, TOOLS_AND_SCHEMA)
    sandbox.clear_requests()
    ok(k, "p.options.value = '-m sandbox/tools --tools add --seed 7 -o summed'\n"
          "p.prompt.value = 'Add two numbers'; assert p.send() is not None\nawait _wait(p)")
    sent = chat_requests(sandbox)
    assert len(sent) == 2  # the tool call, then the answer with its result
    first = sent[0]["body"]
    assert (first["model"], first["seed"], first["tools"][0]["function"]["name"]) == ("sandbox/tools", 7, "add")
    assert sent[1]["body"]["messages"][-1]["role"] == "tool"
    assert value(k, "[p.model.value, _m.model]") == ["sandbox/echo", "sandbox/echo"]  # the controls are unchanged
    assert "result:" in value(k, "p.transcript_html()")
    assert value(k, "isinstance(summed, str) and len(summed) > 0") is True
    sandbox.clear_requests()
    ok(k, "p.options.value = '--schema City -o city --param provider={\"sort\": \"price\"}'\n"
          "p.prompt.value = 'Describe a city'; assert p.send() is not None\nawait _wait(p)")
    body = chat_requests(sandbox)[-1]["body"]
    assert body["response_format"]["type"] == "json_schema"
    assert body["provider"] == {"sort": "price", "require_parameters": True}  # bare JSON, no shell quotes
    assert value(k, "[type(city).__name__, isinstance(city.population, int)]") == ["City", True]


def test_max_tokens_is_a_slider_with_a_model_default(panel: Kernel, sandbox: Sandbox) -> None:
    k = panel
    assert value(k, "[type(p.max_tokens).__name__, p.max_tokens.value, p.max_tokens_readout.value]") == [
        "IntSlider", 0, "model default"]
    cap = value(k, "next(m.max_completion_tokens for m in p.models if m.id == 'sandbox/echo')")
    assert value(k, "p.max_tokens.max") == cap  # the range comes from /models
    sandbox.clear_requests()
    ok(k, "p.max_tokens.value = 321; p.prompt.value = 'capped'; p.send()\nawait _wait(p)")
    assert chat_requests(sandbox)[-1]["body"]["max_tokens"] == 321
    assert value(k, "[_m.max_tokens, p.max_tokens_readout.value]") == [321, "321"]
    ok(k, "p.max_tokens.value = 0; p.prompt.value = 'uncapped'; p.send()\nawait _wait(p)")
    assert "max_tokens" not in chat_requests(sandbox)[-1]["body"]
    assert value(k, "_m.max_tokens") is None


def test_cell_turns_show_reasoning_tokens_and_bare_string_images(panel: Kernel) -> None:
    """Turns rebuilt from the store: flat usage["reasoning_tokens"], and an image_url given as a bare string."""
    k = panel
    ok(k, "%%chat -m sandbox/reasoning\nthink it over", cell_id="reason-1")
    tokens = value(k, "_m.session.store.get().turns[-1].usage['reasoning_tokens']")
    assert tokens > 0
    ok(k, "%%chat -m sandbox/image\ndraw", cell_id="image-1")
    ok(k, "_img = _m.session.store.get().turns[-1].assistant['images'][0]\n"
          "_img['image_url'] = _img['image_url']['url'] if isinstance(_img['image_url'], dict) else _img['image_url']\n"
          "q = ChatPanel()\nawait _wait(q)")
    html = value(k, "q.transcript_html()")
    assert f"{tokens:,} reasoning" in html
    ok(k, "from or_magic.panel_transcript import descendants as _descendants")
    images = "[w for w in _descendants(q.transcript) if type(w).__name__ == 'Image']"
    assert value(k, f"[(w.format, w.value[:4] == b'\\x89PNG') for w in {images}]") == [["png", True]]


def test_web_in_the_option_box_sends_the_server_search_tool(panel: Kernel, sandbox: Sandbox) -> None:
    k = panel
    sandbox.clear_requests()
    ok(k, "p.options.value = '-m sandbox/web --web --web-results 2'\n"
          "p.prompt.value = 'what is new?'; assert p.send() is not None\nawait _wait(p)")
    body = chat_requests(sandbox)[-1]["body"]
    assert body["tools"] == [{"type": "openrouter:web_search", "parameters": {"max_results": 2}}]
    assert "plugins" not in body and not body["model"].endswith(":online")  # the deprecated forms
    assert value(k, "p.transcript_html()").count("example.org/search/") >= 2, "the citations are shown"
    ok(k, "p.options.value = ''\np.prompt.value = 'no search'; assert p.send() is not None\nawait _wait(p)")
    assert "tools" not in chat_requests(sandbox)[-1]["body"]  # the box emptied: no search
