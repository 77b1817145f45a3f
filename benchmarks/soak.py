"""Soak figures: one kernel, many %%chat turns against the sandbox; memory, per-turn overhead, history time.

    .venv/bin/python benchmarks/soak.py [--turns 500] [--history 100] [--big-chars 0]

Printed:
- the kernel's RSS (psutil, else /proc/<pid>/status VmRSS) every 50 turns, and its growth per turn;
- per-turn time for turns 1-50 and for the last 50, measured twice: wall time from execute_request to the
  reply as the front end sees it, and kernel time (status busy -> idle header dates);
- the size of the last request (the whole thread is sent each turn, so this grows linearly);
- ``%chat history`` of a ``--history``-turn thread: wall time, kernel time, bytes displayed;
- with ``--big-chars N``: one N-character answer (sandbox/long, rate=0): wall time, bytes sent to the front
  end as a multiple of the final output, display messages and the busiest 3-second window, RSS after.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _kernel import FAKE_KEY, Execution, Kernel, kernel  # noqa: E402

from or_magic.sandbox import start  # noqa: E402


def rss_mb(pid: int) -> float:
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss / 2**20
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS") from None


def kernel_pid(k: Kernel) -> int:
    r = k.run("import os; print('@@', os.getpid())")
    return int(next(x for x in r.text().split("\n") if x.startswith("@@")).split()[1])


def kernel_seconds(r: Execution) -> float:
    """Busy -> idle, from the kernel's own header dates."""
    states = {m["content"]["execution_state"]: m["header"]["date"] for m in r.of_type("status")}
    return (states["idle"] - states["busy"]).total_seconds()


def once_probe(k: Kernel, tag: str, n: int = 20) -> list[float]:
    """Kernel time of ``n`` context-free turns: the per-turn overhead without the growing request."""
    out = []
    for i in range(n):
        r = k.run(f"%%chat --once\nprobe {tag} {i}", cell_id=f"probe-{tag}-{i}")
        assert r.status == "ok", r.text()[-500:]
        out.append(kernel_seconds(r))
    return out


def gc_rss(k: Kernel, pid: int) -> float:
    k.run("import gc; gc.collect()")
    return rss_mb(pid)


def summary(values: list[float]) -> str:
    values = sorted(values)
    p90 = values[int(0.9 * (len(values) - 1))]
    return f"median {statistics.median(values) * 1000:7.1f} ms  mean {statistics.mean(values) * 1000:7.1f} ms  " \
           f"p90 {p90 * 1000:7.1f} ms"


def soak_turns(k: Kernel, sb: Any, pid: int, args: argparse.Namespace) -> None:
    """Many threaded turns: RSS, per-turn time early vs late, same-size probes, history render time."""
    window = min(50, args.turns // 2) or 1
    once_before = once_probe(k, "before")
    rss = [(0, gc_rss(k, pid))]
    wall: list[float] = []
    inside: list[float] = []
    t_all = time.monotonic()
    for i in range(1, args.turns + 1):
        t0 = time.monotonic()
        r = k.run(f"%%chat\nturn {i}", cell_id=f"soak-{i}")
        wall.append(time.monotonic() - t0)
        assert r.status == "ok" and not r.of_type("error"), r.text()[-500:]
        inside.append(kernel_seconds(r))
        if i % 50 == 0 or i == args.turns:
            rss.append((i, gc_rss(k, pid)))
    total = time.monotonic() - t_all
    last = [q for q in sb.requests if q["path"].endswith("/chat/completions")][-1]
    last_bytes = len(json.dumps(last["body"]).encode())
    once_after = once_probe(k, "after")

    print(f"kernel pid {pid}; {args.turns} turns against sandbox/echo in {total:.1f} s "
          f"({total / args.turns * 1000:.1f} ms per turn)")
    print("\nRSS of the kernel (after gc.collect()):")
    for turn, mb in rss:
        print(f"  after turn {turn:4d}: {mb:7.1f} MB")
    growth = rss[-1][1] - rss[0][1]
    print(f"  growth over {args.turns} turns: {growth:+.1f} MB ({growth * 1024 / args.turns:+.1f} KB per turn); "
          f"from turn {rss[1][0]}: {rss[-1][1] - rss[1][1]:+.1f} MB")
    print(f"\nper-turn time, turns 1-{window}:")
    print(f"  wall   {summary(wall[:window])}")
    print(f"  kernel {summary(inside[:window])}")
    print(f"per-turn time, turns {args.turns - window + 1}-{args.turns}:")
    print(f"  wall   {summary(wall[-window:])}")
    print(f"  kernel {summary(inside[-window:])}")
    ratio = statistics.median(inside[-window:]) / statistics.median(inside[:window])
    print(f"  late/early kernel median: {ratio:.2f}x")
    print(f"last request: {len(last['body']['messages'])} messages, {last_bytes / 1024:.1f} KB of JSON "
          "(each turn sends the whole thread, so part of the late cost is the bigger request)")
    print(f"same-size turns (--once, no context), 20 before turn 1 and 20 after turn {args.turns}:")
    print(f"  before kernel {summary(once_before)}")
    print(f"  after  kernel {summary(once_after)}")
    print(f"  after/before kernel median: {statistics.median(once_after) / statistics.median(once_before):.2f}x")

    n = min(args.history, args.turns)
    k.run(f"_s = get_ipython().magics_manager.registry['ChatMagics'].session.store\n"
          f"_s.get('h{n}').turns = list(_s.get().turns[:{n}])")
    times = []
    for _ in range(3):
        t0 = time.monotonic()
        r = k.run(f"%chat history h{n}")
        times.append((time.monotonic() - t0, kernel_seconds(r), r.display_bytes))
    best = min(times)
    print(f"\n%chat history of {n} turns (best of 3): wall {best[0] * 1000:.0f} ms, "
          f"kernel {best[1] * 1000:.0f} ms, {best[2] / 1024:.0f} KB displayed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--history", type=int, default=100)
    parser.add_argument("--big-chars", type=int, default=0, help="also measure one answer of this many characters")
    args = parser.parse_args()

    with start() as sb, kernel({"OPENROUTER_BASE_URL": sb.url, "OPENROUTER_API_KEY": FAKE_KEY}) as k:
        r = k.run("%load_ext or_magic\n%config ChatMagics.model = 'sandbox/echo'\n%config ChatMagics.max_retries = 0")
        assert r.status == "ok", r.text()
        pid = kernel_pid(k)
        k.run("%%chat --once\nwarm-up", cell_id="warm")  # imports the client, renderer and pydantic models
        if args.turns > 0:
            soak_turns(k, sb, pid, args)

        if args.big_chars:
            before = gc_rss(k, pid)
            t0 = time.monotonic()
            r = k.run(f"%%chat --once -m sandbox/long\nchars={args.big_chars} rate=0", cell_id="big", timeout=3600)
            took = time.monotonic() - t0
            final = [o for o in r.outputs() if "text/markdown" in o.get("data", {})]
            final_bytes = sum(len(json.dumps(o["data"]).encode()) for o in final)
            shown = r.of_type("display_data", "update_display_data", "clear_output")
            times_ = [m["t_recv"] for m in shown]
            busiest = max(sum(1 for t in times_ if s <= t < s + 3.0) for s in times_)
            footer = final[0]["data"]["text/plain"].rsplit("\n", 1)[-1] if final else "?"
            print(f"\n{args.big_chars:,}-character answer: cell {took:.1f} s ({footer})")
            print(f"  bytes to the front end {r.display_bytes / 2**20:.1f} MB = "
                  f"{r.display_bytes / max(final_bytes, 1):.2f}x the final output ({final_bytes / 2**20:.1f} MB), "
                  f"{r.display_bytes / args.big_chars:.2f}x the answer")
            print(f"  {len(shown)} display messages, busiest 3 s window {busiest} ({busiest / 3:.0f}/s)")
            print(f"  RSS {before:.0f} MB before, {gc_rss(k, pid):.0f} MB after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
