"""The hostile corpus, rendered by the real renderer, loaded in headless Chromium.

For every case, five renders are served from a local 127.0.0.1 page and loaded in Debian's Chromium:
``render_markdown`` (what text/html shows), ``safe_markdown`` through two permissive markdown renderers
with raw HTML enabled (how a front end shows text/markdown: markdown-it-py ``html=True`` with every link
scheme allowed, and mistune ``escape=False``), the streamed HTML (every frozen block and tail snapshot), and
the whole final bundle of a turn whose every field is hostile.

Asserted per page: no payload ran (payloads call ``__pwn``; dialogs are recorded), no request left for any
host but the local server (foreign requests are recorded and aborted, and every other host resolves
nowhere), the local server saw no request but the page itself, and the DOM holds only markdown's tags,
no event-handler or URL-loading attributes and no non-http(s)/mailto href. A canary page with unsafe HTML
proves the harness sees all three kinds of failure. If Chromium is missing the tests fail, they do not skip.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from test_render import HOSTILE, hostile_view, permissive_md

from or_magic import render
from or_magic.markdown import MarkdownStream, render_markdown, safe_markdown

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("OR_MAGIC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    # Every host but the local server resolves nowhere, so even a missed route could not reach it.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>render</title>
<script>window.__hits = []; window.__pwn = function (x) { window.__hits.push(String(x)); };</script>
</head><body><div id="out">{body}</div><div id="end">end</div></body></html>"""

# Fire what a user would: hover, focus, click everything that is not a link, open every <details>.
INTERACT_JS = """() => {
  const out = document.getElementById('out');
  for (const el of out.querySelectorAll('*')) {
    for (const t of ['mouseover', 'mouseenter', 'mousemove', 'mousedown', 'focus', 'focusin'])
      el.dispatchEvent(new Event(t, {bubbles: true}));
    if (!el.closest('a')) { try { el.click(); } catch (e) {} }
    try { el.focus(); } catch (e) {}
  }
  for (const d of out.querySelectorAll('details')) d.open = true;
  return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 30))));
}"""

CHECK_JS = """() => {
  const allowed = new Set(['a', 'p', 'em', 'strong', 'code', 'pre', 'div', 'span', 'ul', 'ol', 'li',
    'blockquote', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'br', 'table', 'thead', 'tbody', 'tr', 'th',
    'td', 's', 'del', 'details', 'summary']);
  const urlAttrs = ['src', 'srcset', 'data', 'action', 'formaction', 'poster', 'background', 'ping',
    'lowsrc', 'xlink:href', 'srcdoc'];
  const out = document.getElementById('out');
  const bad = [];
  for (const el of out.querySelectorAll('*')) {
    const tag = el.tagName.toLowerCase();
    if (!allowed.has(tag)) bad.push('tag ' + tag);
    for (const a of el.attributes) {
      if (a.name.startsWith('on')) bad.push(tag + '[' + a.name + ']');
      if (urlAttrs.includes(a.name)) bad.push(tag + '[' + a.name + '=' + a.value + ']');
      if (a.name === 'style' && /url\\(|expression|@import/i.test(a.value)) bad.push(tag + '[style]');
    }
    if (tag === 'a' && el.hasAttribute('href') && !/^(https?:\\/\\/|mailto:)/i.test(el.getAttribute('href')))
      bad.push('a[href=' + el.getAttribute('href') + ']');
  }
  if (getComputedStyle(out).display === 'none') bad.push('output hidden by injected CSS');
  return {hits: window.__hits, bad: bad, scripts: document.scripts.length,
          sheets: document.styleSheets.length, end: !!document.getElementById('end'),
          elements: out.querySelectorAll('*').length};
}"""


# ------------------------------------------------------------------------------------ local server
class _Server:
    """A stdlib HTTP server on 127.0.0.1 serving registered pages and logging every request path."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self.log: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                server.log.append(self.path)
                body = server.pages.get(self.path)
                data = (body or "not found").encode()
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Harness:
    server: _Server
    page: Any
    foreign: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    popups: list[str] = field(default_factory=list)

    def load(self, path: str, body: str) -> dict[str, Any]:
        """Serve ``body`` at ``path``, load it, interact, and report what happened."""
        self.server.pages[path] = PAGE.replace("{body}", body)
        before = (len(self.foreign), len(self.dialogs), len(self.popups), len(self.server.log))
        self.page.goto(self.server.base + path, wait_until="load")
        self.page.evaluate(INTERACT_JS)
        result = self.page.evaluate(CHECK_JS)
        result["foreign"] = self.foreign[before[0] :]
        result["dialogs"] = self.dialogs[before[1] :]
        result["popups"] = self.popups[before[2] :]
        result["local"] = [p for p in self.server.log[before[3] :] if p not in (path, "/favicon.ico")]
        return result


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the browser tests need Debian's chromium "
            "(apt-get install chromium; CI installs it) or OR_MAGIC_CHROMIUM; do not run `playwright install`"
        )
    from playwright.sync_api import sync_playwright

    with _Server() as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(java_script_enabled=True)
            h = Harness(server, None)

            def route(r: Any) -> None:
                if r.request.url.startswith(server.base + "/"):
                    r.continue_()
                else:
                    h.foreign.append(r.request.url)
                    r.abort()

            context.route("**/*", route)
            page = context.new_page()
            context.on("page", lambda pg: h.popups.append(pg.url))  # any page after ours is a popup
            page.on("dialog", lambda d: (h.dialogs.append(f"{d.type}: {d.message}"), d.dismiss()))
            h.page = page
            yield h
        finally:
            browser.close()


# --------------------------------------------------------------------------------------- renders
def streamed_html(text: str) -> str:
    """Everything the stream would put on screen: frozen blocks and a tail snapshot every few chunks."""
    s = MarkdownStream()
    out = []
    for i in range(0, len(text), 3):
        s.append(text[i : i + 3])
        out.append(s.take_frozen())
        if i % 9 == 0:
            out.append(f"<div>{s.tail_html()}</div>")
    out.append(s.finish())
    return "".join(out)


def _mistune(md: str) -> str:
    import mistune

    return mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])(md)


RENDERS: dict[str, Callable[[str], str]] = {
    "text-html": render_markdown,
    "text-markdown-markdown-it": lambda t: permissive_md(math=False).render(safe_markdown(t)),
    "text-markdown-mistune": lambda t: _mistune(safe_markdown(t)),
    "stream": streamed_html,
    "final-bundle": lambda t: render.final_bundle(hostile_view(t))["text/html"],
}


def _problems(result: dict[str, Any]) -> dict[str, Any]:
    found = {k: result[k] for k in ("hits", "dialogs", "foreign", "popups", "local", "bad") if result[k]}
    if result["scripts"] != 1:
        found["scripts"] = result["scripts"]
    if result["sheets"]:
        found["stylesheets"] = result["sheets"]
    if not result["end"]:
        found["page swallowed"] = True
    return found


@pytest.mark.parametrize(("name", "text"), HOSTILE, ids=[n for n, _ in HOSTILE])
def test_hostile_case_in_chromium(harness: Harness, name: str, text: str) -> None:
    index = [n for n, _ in HOSTILE].index(name)
    failures = {}
    for kind, fn in RENDERS.items():
        result = harness.load(f"/case{index}/{kind}", fn(text))
        problems = _problems(result)
        if problems:
            failures[kind] = problems
    assert failures == {}


def test_code_stays_visible_in_chromium(harness: Harness) -> None:
    text = dict(HOSTILE)["code block containing html (must stay visible as code)"]
    for kind in ("text-html", "text-markdown-markdown-it", "text-markdown-mistune"):
        harness.load(f"/code/{kind}", RENDERS[kind](text))
        shown = harness.page.evaluate(
            "() => [...document.querySelectorAll('#out code, #out pre')].map(c => c.innerText)"
        )
        joined = "\n".join(shown)
        assert "<script>__pwn('code-fence')</script>" in joined, kind
        assert "<img src=x onerror=\"__pwn('code-inline')\">" in joined, kind


def test_harness_detects_unsafe_html(harness: Harness) -> None:
    """The canary: raw unsafe HTML must trip every detector, or the checks above prove nothing."""
    canary = (
        "<img src=x onerror=\"__pwn('canary-onerror')\">"
        "<script>__pwn('canary-script')</script>"
        '<img src="https://evil.example/canary.png">'
        "<a href=\"javascript:__pwn('canary-href')\">x</a>"
        "<button onclick=\"alert('canary-dialog')\">b</button>"
    )
    result = harness.load("/canary", canary)
    assert "canary-script" in result["hits"] and "canary-onerror" in result["hits"]
    assert any("evil.example/canary.png" in url for url in result["foreign"])
    assert any("canary-dialog" in d for d in result["dialogs"])
    assert "tag img" in result["bad"] and any(b.startswith("a[href=javascript:") for b in result["bad"])
    assert "/x" in result["local"]  # the relative src reached the local server, and was seen
