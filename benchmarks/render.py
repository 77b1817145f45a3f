"""Per-chunk render cost of MarkdownStream early and late in a long answer, against a naive re-render.

    .venv/bin/python benchmarks/render.py [--size 200000] [--chunk 16] [--window 2000]

For each answer profile, the answer is streamed in ``--chunk``-character deltas; for each delta the
display's work is timed: ``append`` + ``take_frozen`` + ``tail_html`` (the worst case, as if every chunk
were displayed; the display throttles). Printed: median and p90 of that cost in µs over a window of
``--window`` characters at 10 KB and at the end of the answer (~200 KB), the ratio late/early (flat ≈ 1),
the largest open tail seen, and the naive alternative: ``render_markdown`` of the whole text so far.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from or_magic.markdown import MarkdownStream, render_markdown  # noqa: E402

WORDS = ["the", "of", "model", "token", "stream", "render", "block", "list", "code", "math", "table"]
WORDS += ["answer", "user", "cell", "output"]


def _sentence(rnd: random.Random) -> str:
    return " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(6, 16))).capitalize() + "."


def mixed(size: int, rnd: random.Random) -> str:
    """An LLM-like answer: sections, loose and tight lists, code, tables, math, quotes."""
    parts, n, k = [], 0, 0
    while n < size:
        k += 1
        kind = k % 6
        if kind == 0:
            block = f"## Section {k}\n\n{_sentence(rnd)} {_sentence(rnd)} Inline math $x_{k}*y$."
        elif kind == 1:
            block = "\n\n".join(
                f"{i}. **Point {i}**: {_sentence(rnd)}\n\n   {_sentence(rnd)}" for i in range(1, 5)
            )
        elif kind == 2:
            block = "\n".join(f"- {_sentence(rnd)}" for _ in range(4))
        elif kind == 3:
            block = "```python\n" + "\n".join(f"x{i} = {i}  # {_sentence(rnd)}" for i in range(6)) + "\n```"
        elif kind == 4:
            block = "| a | b |\n|---|---|\n" + "\n".join(f"| {i} | {_sentence(rnd)} |" for i in range(4))
        else:
            block = f"$$\n\\sum_{{i={k}}}^n i^2\n$$\n\n> {_sentence(rnd)}"
        parts.append(block)
        n += len(block) + 2
    return "\n\n".join(parts) + "\n"


def loose_list(size: int, rnd: random.Random) -> str:
    """One long numbered list with blank lines between items (a common answer shape)."""
    items, n, i = [], 0, 0
    while n < size:
        i += 1
        item = f"{i}. **Step {i}.** {_sentence(rnd)}\n\n   {_sentence(rnd)} {_sentence(rnd)}"
        items.append(item)
        n += len(item) + 2
    return "\n\n".join(items) + "\n"


def long_code(size: int, rnd: random.Random) -> str:
    """One very long fenced code block."""
    lines, n, i = [], 0, 0
    while n < size:
        i += 1
        line = f"value_{i} = compute({i}, name='{rnd.choice(WORDS)}')  # {_sentence(rnd)}"
        lines.append(line)
        n += len(line) + 1
    return "```python\n" + "\n".join(lines) + "\n```\n"


def one_paragraph(size: int, rnd: random.Random) -> str:
    """A single paragraph: no block boundary to freeze at (documented: the tail grows)."""
    out, n = [], 0
    while n < size:
        s = _sentence(rnd)
        out.append(s)
        n += len(s) + 1
    return " ".join(out) + "\n"


PROFILES: dict[str, Callable[[int, random.Random], str]] = {
    "mixed answer": mixed,
    "one loose list": loose_list,
    "one code block": long_code,
    "one paragraph": one_paragraph,
}


def _stats(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples), samples[int(0.9 * (len(samples) - 1))]


def measure(text: str, chunk: int, early: int, window: int) -> dict[str, float]:
    """Per-chunk µs of append+take_frozen+tail_html near ``early`` and at the end; largest tail."""
    late = len(text) - window
    s = MarkdownStream()
    early_t: list[float] = []
    late_t: list[float] = []
    biggest_tail = 0
    for i in range(0, len(text), chunk):
        delta = text[i : i + chunk]
        t0 = time.perf_counter_ns()
        s.append(delta)
        s.take_frozen()
        s.tail_html()
        dt = (time.perf_counter_ns() - t0) / 1000
        if early <= i < early + window:
            early_t.append(dt)
        elif i >= late:
            late_t.append(dt)
        biggest_tail = max(biggest_tail, len(s._tail_text()))  # noqa: SLF001 - what the cost depends on
    s.finish()
    e_med, e_p90 = _stats(early_t)
    l_med, l_p90 = _stats(late_t)
    return {
        "early_med": e_med,
        "early_p90": e_p90,
        "late_med": l_med,
        "late_p90": l_p90,
        "tail": biggest_tail,
    }


def naive(text: str, n: int, reps: int = 3) -> float:
    """µs to re-render the first ``n`` characters from scratch (what a naive loop does per chunk)."""
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        render_markdown(text[:n])
        best = min(best, (time.perf_counter_ns() - t0) / 1000)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=200_000, help="answer length in characters")
    ap.add_argument("--chunk", type=int, default=16, help="characters per streamed delta")
    ap.add_argument("--window", type=int, default=2000, help="characters measured at each point")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", choices=sorted(PROFILES), action="append", help="default: all")
    args = ap.parse_args()

    render_markdown("```python\nx = 1\n```\n$x$")  # warm up Pygments and the parser
    early = 10_000
    print(f"MarkdownStream: per-chunk cost (append + take_frozen + tail_html), {args.chunk}-char chunks, µs")
    print(
        f"{'profile':<16} {'at 10 KB med/p90':>18} {f'at {args.size // 1000} KB med/p90':>19} "
        f"{'late/early':>10} {'max tail':>9} {'naive 10 KB':>12} {f'naive {args.size // 1000} KB':>13}"
    )
    for name in args.profile or list(PROFILES):
        text = PROFILES[name](args.size, random.Random(args.seed))
        m = measure(text, args.chunk, early, args.window)
        n_early, n_late = naive(text, early), naive(text, len(text), reps=1)
        print(
            f"{name:<16} {m['early_med']:>8.0f} / {m['early_p90']:<7.0f} "
            f"{m['late_med']:>9.0f} / {m['late_p90']:<7.0f} {m['late_med'] / m['early_med']:>9.2f}x "
            f"{m['tail']:>8,} {n_early:>12,.0f} {n_late:>13,.0f}"
        )


if __name__ == "__main__":
    main()
