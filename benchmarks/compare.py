"""Wall time of ``%%chat --compare`` of two streaming models, as a ratio to the slower model alone.

    .venv/bin/python benchmarks/compare.py [--runs 5]

In a real kernel against the sandbox: ``sandbox/paced-2000`` (streams over 2 s) alone, then compared with
``sandbox/paced-1000``. Each cell is timed from the execute request to its reply; the median of ``--runs``
is printed for each, with their ratio (goal: at most 1.15, i.e. the compare costs about the slower model,
not the sum, which would be 1.5).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _kernel import FAKE_KEY, kernel  # noqa: E402

from or_magic.sandbox import start  # noqa: E402

SLOW, FAST = "sandbox/paced-2000", "sandbox/paced-1000"


def timed(k, code: str) -> float:  # noqa: ANN001 - tests/_kernel.Kernel
    t0 = time.perf_counter()
    r = k.run(code, timeout=60)
    elapsed = time.perf_counter() - t0
    if r.status != "ok":
        raise SystemExit(f"cell failed: {r.text()[:500]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with start() as sb, kernel({"OPENROUTER_BASE_URL": sb.url, "OPENROUTER_API_KEY": FAKE_KEY}) as k:
        k.run("%load_ext or_magic")
        timed(k, f"%%chat -m {SLOW} --once\nwarm up")
        alone = [timed(k, f"%%chat -m {SLOW} --once\nhow long?") for _ in range(args.runs)]
        both = [timed(k, f"%%chat --compare {SLOW},{FAST} --once\nhow long?") for _ in range(args.runs)]
    a, b = statistics.median(alone), statistics.median(both)
    print(f"{SLOW} alone:             {a:.3f} s (median of {args.runs})")
    print(f"--compare {SLOW},{FAST}: {b:.3f} s (median of {args.runs})")
    print(f"ratio compare / slower alone: {b / a:.3f} (goal <= 1.15; the sum would be {(a + a / 2) / a:.2f})")


if __name__ == "__main__":
    main()
