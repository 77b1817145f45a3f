"""Streaming display figures: or_magic's %%chat vs a naive re-render-everything loop, in a real kernel.

    .venv/bin/python benchmarks/streaming.py [--chars 200000] [--rate 1000]

The sandbox streams a markdown answer of ``--chars`` characters at ``--rate`` chunks per second. Both cells
run in the same real kernel; every iopub message is captured as the front end would receive it. Printed:
bytes sent to the front end as a multiple of the final output, display messages per second, time from the
request to the first displayed answer text, render cost per chunk early and late in the answer, the
``%load_ext or_magic`` time in a fresh kernel, and the same bytes figure for one fenced python code block of
``--code-chars`` characters echoed back by ``sandbox/echo`` at ``--code-rate`` words per second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _kernel import FAKE_KEY, Execution, kernel  # noqa: E402

from or_magic import render  # noqa: E402
from or_magic.sandbox import start  # noqa: E402

NAIVE_CELL = '''
import httpx, json, markdown_it
from IPython.display import HTML, display
_md = markdown_it.MarkdownIt("commonmark", {{"html": False}}).enable("table")
_h = display(HTML("…"), display_id=True)
_text = ""
_body = {{"model": "sandbox/long", "stream": True,
          "messages": [{{"role": "user", "content": {prompt!r}}}]}}
with httpx.stream("POST", {url!r} + "/chat/completions", json=_body, timeout=60) as _r:
    for _line in _r.iter_lines():
        if _line.startswith("data: {{"):
            _d = json.loads(_line[6:])
            if _d["choices"] and _d["choices"][0]["delta"].get("content"):
                _text += _d["choices"][0]["delta"]["content"]
                _h.update(HTML(_md.render(_text)))
'''


def figures(r: Execution, t_sent: float) -> dict[str, float]:
    shown = r.of_type("display_data", "update_display_data", "clear_output")
    final = [o for o in r.outputs() if "data" in o]
    final_bytes = sum(len(json.dumps(o["data"]).encode()) for o in final)
    sent = sum(len(json.dumps(m["content"]).encode()) for m in shown)
    with_text = [m for m in shown if "or-magic-tail" in json.dumps(m["content"])
                 or "<p>" in json.dumps(m["content"])]
    first = with_text[0]["t_recv"] if with_text else float("nan")
    span = max(shown[-1]["t_recv"] - shown[0]["t_recv"], 1e-9)
    return {"messages": len(shown), "msgs_per_s": len(shown) / span, "bytes_sent": sent,
            "final_bytes": final_bytes, "multiple": sent / max(final_bytes, 1),
            "first_display_s": first - t_sent, "duration_s": span}


def render_cost(chars: int, chunk: int = 20, flush_every: int = 10) -> dict[str, float]:
    """µs per chunk of MarkdownStream work (append, plus frozen/tail rendering every few chunks)."""
    text = render_sample(chars)
    stream = render.MarkdownStream()
    costs: dict[int, list[float]] = {}
    marks = {10_000: "10KB", min(200_000, chars - chunk * 200): "late"}
    for i in range(0, len(text), chunk):
        t0 = time.perf_counter()
        stream.append(text[i:i + chunk])
        if (i // chunk) % flush_every == 0:
            stream.take_frozen()
            stream.tail_html()
        dt = (time.perf_counter() - t0) * 1e6
        for mark in marks:
            if mark <= i < mark + chunk * 200:
                costs.setdefault(mark, []).append(dt)
    return {marks[m]: statistics.mean(v) for m, v in costs.items()}


def render_sample(chars: int) -> str:
    para = ("Streaming *markdown* with `code`, a [link](https://example.org) and math $a^2+b^2=c^2$. " * 3).strip()
    blocks = [para, "- one\n- two\n- three", "```python\nprint('hello')\nfor i in range(3):\n    print(i)\n```",
              "| a | b |\n|---|---|\n| 1 | 2 |", "## A heading"]
    out, i = [], 0
    while sum(map(len, out)) < chars:
        out.append(blocks[i % len(blocks)])
        i += 1
    return "\n\n".join(out)[:chars]


def code_sample(chars: int, rate: int) -> str:
    """A fenced python block of at most ``chars`` characters; its first line sets the echo's pace.

    At 100,000 characters or fewer the final render highlights it whole (``MAX_HIGHLIGHT``).

    No ``name=number`` without spaces (the sandbox reads those as knobs) and no ``$`` (cells expand it).
    """
    lines = ["```python", f"# paced by the sandbox: rate={rate}"]
    size, k = sum(map(len, lines)) + len(lines) + 4, 0
    while True:
        step = [f"def step_{k}(values: list[int], scale: float = 1.5) -> list[float]:",
                f'    """Scale every value of round {k} and keep the positive ones."""',
                "    out = []", "    for v in values:",
                f"        if v * scale > {k % 7}:", "            out.append(v * scale)", "    return out", ""]
        size += sum(map(len, step)) + len(step)
        if size > chars:
            return "\n".join(lines) + "\n```\n"
        lines += step
        k += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=200_000)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--naive-chars", type=int, default=20_000,
                    help="answer size for the naive loop (its bytes grow with the square of the size)")
    ap.add_argument("--code-chars", type=int, default=100_000, help="size of the streamed code block case")
    ap.add_argument("--code-rate", type=int, default=1000, help="words per second for the code block case")
    args = ap.parse_args()
    prompt = f"chars={args.chars} rate={args.rate} chunk=20"
    naive_prompt = f"chars={args.naive_chars} rate={args.rate} chunk=20"
    with start() as sb, kernel({"OPENROUTER_BASE_URL": sb.url, "OPENROUTER_API_KEY": FAKE_KEY}) as k:
        load = k.run("import time as _t; _t0 = _t.perf_counter(); get_ipython().run_line_magic('load_ext', "
                     "'or_magic'); print(f'LOAD {_t.perf_counter() - _t0:.4f}')")
        load_s = float(load.text().split("LOAD")[1].split()[0])
        k.run("%config ChatMagics.model = 'sandbox/long'")
        t0 = time.monotonic()
        cold = figures(k.run("%%chat\nchars=2000 rate=1000 chunk=20", cell_id="warm-up"), t0)
        t0 = time.monotonic()
        echo = figures(k.run("%%chat -m sandbox/echo\nhello there", cell_id="echo"), t0)
        t0 = time.monotonic()
        ours = figures(k.run(f"%%chat\n{prompt}", cell_id="bench", timeout=600), t0)
        t0 = time.monotonic()
        code_cell = f"%%chat -m sandbox/echo\n{code_sample(args.code_chars, args.code_rate)}"
        code = figures(k.run(code_cell, cell_id="code", timeout=600), t0)
        t0 = time.monotonic()
        naive = figures(k.run(NAIVE_CELL.format(prompt=naive_prompt, url=sb.url), timeout=600), t0)
    cost = render_cost(args.chars)
    print(f"answer: {args.chars:,} chars of markdown at {args.rate} chunks/s (20 chars per chunk), real kernel\n")
    print(f"{'':34}{'or_magic':>14}{'naive':>14}")
    print(f"{'answer size (chars)':34}{args.chars:>14,}{args.naive_chars:>14,}")
    rows = [("display messages", "messages", "{:,.0f}"), ("messages per second", "msgs_per_s", "{:,.1f}"),
            ("bytes sent to the front end", "bytes_sent", "{:,.0f}"), ("final output bytes", "final_bytes", "{:,.0f}"),
            ("bytes sent / final output", "multiple", "{:,.2f}x"),
            ("request -> first answer shown (s)", "first_display_s", "{:.3f}"), ("stream duration (s)", "duration_s",
                                                                                  "{:.2f}")]
    for label, key, fmt in rows:
        print(f"{label:34}{fmt.format(ours[key]):>14}{fmt.format(naive[key]):>14}")
    print(f"\nrender cost per chunk (MarkdownStream): {cost.get('10KB', float('nan')):.1f} µs at 10 KB, "
          f"{cost.get('late', float('nan')):.1f} µs near {args.chars // 1000} KB")
    print(f"\n{args.code_chars:,}-char fenced python block (sandbox/echo, {args.code_rate} words/s): "
          f"{code['messages']:,.0f} display messages, {code['bytes_sent']:,.0f} bytes sent, final output "
          f"{code['final_bytes']:,.0f} bytes, bytes sent / final output {code['multiple']:.2f}x, "
          f"{code['msgs_per_s']:.1f} messages/s")
    print(f"sandbox/echo (first byte within ~10 ms): request -> first answer shown {echo['first_display_s']:.3f} s")
    print(f"first %%chat of a fresh kernel (client, pydantic, renderer imported then): request -> first answer "
          f"shown {cold['first_display_s']:.3f} s")
    print(f"%load_ext or_magic in a fresh kernel: {load_s:.3f} s")


if __name__ == "__main__":
    main()
