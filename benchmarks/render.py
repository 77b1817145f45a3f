"""Per-chunk render cost of MarkdownStream early and late in a long answer, against a naive re-render.

    .venv/bin/python benchmarks/render.py [--size 200000] [--chunk 16] [--profile NAME]

For each answer profile, a 6 KB probe is streamed in ``--chunk``-character deltas after a 10 KB prefix
and again after a ``--size`` prefix (the same probe text both times), and for each delta the display's
work is timed: ``append`` + ``take_frozen`` + ``tail_html`` (the worst case, as if every chunk were
displayed; the display throttles). Printed: median and p90 in µs at both positions, their ratio (flat ≈ 1),
the largest open tail seen, and the naive alternative per chunk: ``render_markdown`` of the whole text.
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


def _mixed_block(k: int, rnd: random.Random) -> str:
    kind = k % 6
    if kind == 0:
        return f"## Section {k}\n\n{_sentence(rnd)} {_sentence(rnd)} Inline math $x_{k}*y$."
    if kind == 1:
        return "\n\n".join(
            f"{i}. **Point {i}**: {_sentence(rnd)}\n\n   {_sentence(rnd)}" for i in range(1, 5)
        )
    if kind == 2:
        return "\n".join(f"- {_sentence(rnd)}" for _ in range(4))
    if kind == 3:
        return "```python\n" + "\n".join(f"x{i} = {i}  # {_sentence(rnd)}" for i in range(6)) + "\n```"
    if kind == 4:
        return "| a | b |\n|---|---|\n" + "\n".join(f"| {i} | {_sentence(rnd)} |" for i in range(4))
    return f"$$\n\\sum_{{i={k}}}^n i^2\n$$\n\n> {_sentence(rnd)}"


def _fill(size: int, make: Callable[[int], str], sep: str) -> str:
    parts, n, k = [], 0, 0
    while n < size:
        k += 1
        parts.append(make(k))
        n += len(parts[-1]) + len(sep)
    return sep.join(parts)


# Each profile: (prefix of about n characters, probe that continues it). The probe is the same text at
# both positions, so the two timings compare like with like.
def mixed(n: int, rnd: random.Random) -> tuple[str, str]:
    """An LLM-like answer: sections, loose and tight lists, code, tables, math, quotes."""
    return _fill(n, lambda k: _mixed_block(k, rnd), "\n\n") + "\n\n", _fill(
        6_000, lambda k: _mixed_block(k, random.Random(k)), "\n\n"
    ) + "\n"


def loose_list(n: int, rnd: random.Random) -> tuple[str, str]:
    """One long numbered list with blank lines between items (a common answer shape)."""

    def item(k: int, r: random.Random) -> str:
        return f"{k}. **Step {k}.** {_sentence(r)}\n\n   {_sentence(r)} {_sentence(r)}"

    return _fill(n, lambda k: item(k, rnd), "\n\n") + "\n\n", _fill(
        6_000, lambda k: item(k, random.Random(k)), "\n\n"
    ) + "\n"


def long_code(n: int, rnd: random.Random) -> tuple[str, str]:
    """One very long fenced code block, still open."""

    def line(k: int, r: random.Random) -> str:
        return f"value_{k} = compute({k}, name='{r.choice(WORDS)}')  # {_sentence(r)}"

    return "```python\n" + _fill(n, lambda k: line(k, rnd), "\n") + "\n", _fill(
        6_000, lambda k: line(k, random.Random(k)), "\n"
    ) + "\n"


def one_paragraph(n: int, rnd: random.Random) -> tuple[str, str]:
    """A single paragraph: no block boundary to freeze at (documented: the tail grows)."""
    return _fill(n, lambda k: _sentence(rnd), " ") + " ", _fill(
        6_000, lambda k: _sentence(random.Random(k)), " "
    )


PROFILES: dict[str, Callable[[int, random.Random], tuple[str, str]]] = {
    "mixed answer": mixed,
    "one loose list": loose_list,
    "one code block": long_code,
    "one paragraph": one_paragraph,
}


def _stats(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples), samples[int(0.9 * (len(samples) - 1))]


def measure(prefix: str, probe: str, chunk: int) -> tuple[float, float, int]:
    """Median/p90 µs of append+take_frozen+tail_html per chunk of ``probe`` streamed after ``prefix``."""
    s = MarkdownStream()
    for i in range(0, len(prefix), chunk):  # untimed; tail_html skipped to save time (it changes nothing)
        s.append(prefix[i : i + chunk])
        s.take_frozen()
    times, biggest = [], 0
    for i in range(0, len(probe), chunk):
        t0 = time.perf_counter_ns()
        s.append(probe[i : i + chunk])
        s.take_frozen()
        s.tail_html()
        times.append((time.perf_counter_ns() - t0) / 1000)
        biggest = max(biggest, len(s._tail_text()))  # noqa: SLF001 - what the cost depends on
    med, p90 = _stats(times)
    return med, p90, biggest


def naive(text: str) -> float:
    """µs to re-render ``text`` from scratch (what a naive loop does for every chunk)."""
    t0 = time.perf_counter_ns()
    render_markdown(text)
    return (time.perf_counter_ns() - t0) / 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=200_000, help="answer length in characters")
    ap.add_argument("--chunk", type=int, default=16, help="characters per streamed delta")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", choices=sorted(PROFILES), action="append", help="default: all")
    args = ap.parse_args()

    render_markdown("```python\nx = 1\n```\n$x$")  # warm up Pygments and the parser
    small, big = 10_000, args.size
    print(f"MarkdownStream: per-chunk cost (append + take_frozen + tail_html), {args.chunk}-char chunks, µs;")
    print("the same probe text is streamed after a 10 KB and after a", f"{big // 1000} KB prefix")
    print(
        f"{'profile':<16} {'at 10 KB med/p90':>18} {f'at {big // 1000} KB med/p90':>19} {'ratio':>6} "
        f"{'max tail':>9} {'naive 10 KB':>12} {f'naive {big // 1000} KB':>13}"
    )
    for name in args.profile or list(PROFILES):
        early_prefix, probe = PROFILES[name](small, random.Random(args.seed))
        late_prefix, _ = PROFILES[name](big, random.Random(args.seed))
        e_med, e_p90, e_tail = measure(early_prefix, probe, args.chunk)
        l_med, l_p90, l_tail = measure(late_prefix, probe, args.chunk)
        n_small, n_big = naive(early_prefix + probe), naive(late_prefix + probe)
        print(
            f"{name:<16} {e_med:>8.0f} / {e_p90:<7.0f} {l_med:>9.0f} / {l_p90:<7.0f} {l_med / e_med:>5.2f}x "
            f"{max(e_tail, l_tail):>9,} {n_small:>12,.0f} {n_big:>13,.0f}"
        )


if __name__ == "__main__":
    main()
