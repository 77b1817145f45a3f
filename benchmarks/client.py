"""CPU per streamed chunk and import time: or_magic's client vs the official ``openrouter`` SDK vs ``openai``.

Run from the repository root::

    .venv/bin/python benchmarks/client.py                 # or_magic alone, plus any SDK already importable
    .venv/bin/python benchmarks/client.py --install       # first fetch the two SDKs into a side directory

The comparison SDKs are not project dependencies. ``--install`` puts them (with whatever they need that the
venv lacks) into ``~/.cache/or_magic-bench/sdks`` with ``pip install --target``; that directory is *appended*
to ``sys.path``, so the venv's own httpx/pydantic are the ones used by every client. Installing them into the
venv instead (``.venv/bin/pip install openrouter openai``) works too. Missing SDKs are reported as skipped.

What is measured: the sandbox (``python -m or_magic.sandbox``, a separate process, so its CPU is not counted)
serves ``sandbox/long`` as 20,000 chunks of 20 characters as fast as it can. Each client makes the streaming
request and iterates over every chunk, reading its text; ``time.process_time()`` around that (request
included, nothing subtracted) divided by the number of chunks is the CPU per chunk. Clients take turns in
each round (rotated order), after one warm-up run each; the medians over the rounds are reported. A floor is
shown for scale: the same stream through httpx and ``json.loads`` of each payload, with no typed objects.

Import time: ``import or_magic.client`` vs ``import openrouter`` (and ``openai``), each timed inside a fresh
interpreter with ``time.perf_counter()``, several runs, medians.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SDK_DIR = Path(os.environ.get("OR_MAGIC_BENCH_SDKS", Path.home() / ".cache" / "or_magic-bench" / "sdks"))
KEY = "sk-or-v1-benchmark-not-a-real-key"
MODEL = "sandbox/long"
CHUNK_CHARS = 20

sys.path.insert(0, str(ROOT))


def _use_side_dir() -> None:
    """Make SDKs fetched with --install importable without shadowing the venv's own packages."""
    if SDK_DIR.is_dir() and str(SDK_DIR) not in sys.path:
        sys.path.append(str(SDK_DIR))


def install_sdks() -> None:
    SDK_DIR.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--target", str(SDK_DIR), "openrouter", "openai"]
    print("installing the comparison SDKs:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# ---------------------------------------------------------------- the sandbox, out of process


class SandboxProcess:
    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "or_magic.sandbox", "--port", "0"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.stop()
            raise RuntimeError("the sandbox did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ---------------------------------------------------------------- one streaming run per client

Runner = Callable[[], tuple[int, int]]  # returns (chunks seen, characters of text)


def or_magic_runner(url: str, prompt: str) -> Runner:
    from or_magic.client import OpenRouter

    client = OpenRouter(api_key=KEY, server_url=url)
    messages = [{"role": "user", "content": prompt}]

    def run() -> tuple[int, int]:
        n = chars = 0
        with client.chat.send(messages=messages, model=MODEL, stream=True) as stream:
            for chunk in stream:
                n += 1
                if chunk.choices:
                    chars += len(chunk.choices[0].delta.content or "")
        return n, chars

    return run


def openrouter_runner(url: str, prompt: str) -> Runner:
    from openrouter import OpenRouter

    client = OpenRouter(api_key=KEY, server_url=url, timeout_ms=300_000)
    messages = [{"role": "user", "content": prompt}]

    def run() -> tuple[int, int]:
        n = chars = 0
        with client.chat.send(messages=messages, model=MODEL, stream=True) as stream:
            for chunk in stream:
                n += 1
                if chunk.choices:
                    chars += len(chunk.choices[0].delta.content or "")
        return n, chars

    return run


def openai_runner(url: str, prompt: str) -> Runner:
    from openai import OpenAI

    client = OpenAI(api_key=KEY, base_url=url, max_retries=0)
    messages = [{"role": "user", "content": prompt}]

    def run() -> tuple[int, int]:
        n = chars = 0
        stream = client.chat.completions.create(model=MODEL, messages=messages, stream=True)  # type: ignore[arg-type]
        with stream:
            for chunk in stream:
                n += 1
                if chunk.choices:
                    chars += len(chunk.choices[0].delta.content or "")
        return n, chars

    return run


def floor_runner(url: str, prompt: str) -> Runner:
    """httpx + or_magic's SSE decoder + json.loads: what decoding alone costs, no typed objects."""
    import httpx

    from or_magic.sse import iter_sse_data

    http = httpx.Client(timeout=httpx.Timeout(10, read=300))
    body = {"model": MODEL, "messages": [{"role": "user", "content": prompt}], "stream": True}

    def run() -> tuple[int, int]:
        n = chars = 0
        with http.stream("POST", f"{url}/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}) as r:
            for data in iter_sse_data(r.iter_bytes()):
                event = json.loads(data)
                n += 1
                choices = event.get("choices")
                if choices:
                    chars += len(choices[0]["delta"].get("content") or "")
        return n, chars

    return run


def measure(run: Runner) -> tuple[float, float, int, int]:
    """(CPU seconds, wall seconds, chunks, characters) for one run."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    n, chars = run()
    return time.process_time() - cpu0, time.perf_counter() - wall0, n, chars


# ---------------------------------------------------------------- import time


FIRST_CALL = {
    "or_magic.client": "from or_magic.client import OpenRouter\n"
    "OpenRouter(api_key=KEY, server_url=URL).chat.send(messages=MSGS, model='sandbox/echo')",
    "openrouter": "from openrouter import OpenRouter\n"
    "OpenRouter(api_key=KEY, server_url=URL).chat.send(messages=MSGS, model='sandbox/echo', stream=False)",
    "openai": "from openai import OpenAI\n"
    "OpenAI(api_key=KEY, base_url=URL).chat.completions.create(messages=MSGS, model='sandbox/echo')",
}


def fresh_run(module: str, url: str | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of ``import module`` in a fresh interpreter; with ``url``, plus one first request."""
    body = FIRST_CALL[module] if url else f"import {module}"
    code = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        f"sys.path.append({str(SDK_DIR)!r})\n"
        f"KEY, URL, MSGS = {KEY!r}, {url!r}, [{{'role': 'user', 'content': 'hi'}}]\n"
        "t, c = time.perf_counter(), time.process_time()\n"
        f"{body}\n"
        "print(time.perf_counter() - t, time.process_time() - c)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    wall, cpu = res.stdout.split()
    return float(wall), float(cpu)


def report_imports(modules: list[str], runs: int, url: str) -> None:
    """Fresh interpreters, modules alternating run by run (so load drift hits all alike), medians."""
    for module in modules:  # warm the bytecode caches
        fresh_run(module)
    kinds = {"import": None, "import + first chat.send": url}
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {(m, k): [] for m in modules for k in kinds}
    for _ in range(runs):
        for module in modules:
            for kind, target in kinds.items():
                samples[(module, kind)].append(fresh_run(module, target))
    print(f"fresh interpreter, median of {runs} alternating runs: wall s / CPU s")
    for module in modules:
        cells = []
        for kind in kinds:
            walls, cpus = zip(*samples[(module, kind)], strict=True)
            cells.append(f"{kind} {statistics.median(walls):.3f} / {statistics.median(cpus):.3f}")
        print(f"  {module:16} " + "    ".join(cells))


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=20_000, help="chunks per stream (default 20000)")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per client (default 5)")
    parser.add_argument("--import-runs", type=int, default=7, help="fresh interpreters per import timing")
    parser.add_argument("--install", action="store_true", help="fetch openrouter + openai into the side directory")
    args = parser.parse_args()

    if args.install:
        install_sdks()
    _use_side_dir()

    prompt = f"chars={args.chunks * CHUNK_CHARS} rate=0 chunk={CHUNK_CHARS}"
    candidates: list[tuple[str, str | None, Callable[[str, str], Runner]]] = [
        ("or_magic (typed chunks + accumulator)", None, or_magic_runner),
        ("openrouter SDK", "openrouter", openrouter_runner),
        ("openai SDK", "openai", openai_runner),
        ("floor: httpx + SSE + json.loads", None, floor_runner),
    ]
    skipped = [name for name, module, _ in candidates if module and not available(module)]
    active = [(name, factory) for name, module, factory in candidates if not module or available(module)]

    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpu(s); stream: {args.chunks} chunks of "
        f"{CHUNK_CHARS} chars from {MODEL}; {args.rounds} rounds after 1 warm-up, order rotated; "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    sandbox = SandboxProcess()
    results: dict[str, list[tuple[float, float, int, int]]] = {name: [] for name, _ in active}
    try:
        runners = {name: factory(sandbox.url, prompt) for name, factory in active}
        for run in runners.values():  # warm-up: lazy imports, model building, connection set-up
            measure(run)
        for r in range(args.rounds):
            order = list(runners.items())
            order = order[r % len(order) :] + order[: r % len(order)]
            for name, run in order:
                results[name].append(measure(run))
            print(f"  round {r + 1}/{args.rounds} done", flush=True)
        print()
        report_stream(results, active[0][0], args.chunks, skipped)
        print()
        modules = ["or_magic.client"] + [m for m in ("openrouter", "openai") if available(m)]
        report_imports(modules, args.import_runs, sandbox.url)
        if not available("openrouter"):
            print("  openrouter: skipped (not installed)")
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    finally:
        sandbox.stop()
    return 0


def report_stream(
    results: dict[str, list[tuple[float, float, int, int]]], ours_name: str, chunks: int, skipped: list[str]
) -> None:
    print(f"{'client':40} {'CPU µs/chunk':>13} {'min':>8} {'max':>8} {'wall s':>8} {'chunks':>7}")
    medians: dict[str, float] = {}
    for name, runs in results.items():
        per_chunk = [cpu / max(n, 1) * 1e6 for cpu, _, n, _ in runs]
        medians[name] = statistics.median(per_chunk)
        wall = statistics.median(w for _, w, _, _ in runs)
        counts = {n for _, _, n, _ in runs}
        chars = {c for _, _, _, c in runs}
        note = "" if chars == {chunks * CHUNK_CHARS} else f"  (text chars {sorted(chars)}!)"
        print(
            f"{name:40} {medians[name]:13.1f} {min(per_chunk):8.1f} {max(per_chunk):8.1f} {wall:8.2f} "
            f"{'/'.join(map(str, sorted(counts))):>7}{note}"
        )
    ours = medians[ours_name]
    for name in medians:
        if name != ours_name and not name.startswith("floor"):
            print(f"  {name}: {medians[name] / ours:.1f}x the CPU per chunk of or_magic")
    if skipped:
        print(f"skipped (not installed): {', '.join(skipped)}; run with --install to compare")


if __name__ == "__main__":
    sys.exit(main())
