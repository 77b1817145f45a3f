"""How fast a map runs, and what it costs the kernel.

Run from the repository root::

    .venv/bin/python benchmarks/map.py            # --rows 2000 --latency 0.1

Printed, in one run:

* rows/s for ``--rows`` rows against a server that answers every request after ``--latency`` seconds, at
  concurrency 16 and 64, as a ratio to the ideal (concurrency / latency). The server is a small asyncio
  HTTP/1.1 server in a separate process (so its CPU is not the client's), keep-alive, one JSON answer.
* the speed-up over the loop a user writes today: sequential ``client.chat.send`` (measured on 50 rows,
  extrapolated to ``--rows``).
* client CPU per row (``time.process_time`` of this process over the concurrency-64 run, divided by rows):
  building prompts, sending, parsing, journaling, assembling the DataFrame.
* memory for 100,000 rows: ``tracemalloc`` peak of a whole map over a fake in-process transport that
  answers at once (prompts, requests, outcomes, the result frame), journal off.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import pandas as pd  # noqa: E402

from or_magic import OpenRouter  # noqa: E402
from or_magic.map_api import build_job  # noqa: E402
from or_magic.mapping import run_map  # noqa: E402

KEY = "sk-or-v1-benchmark-not-a-real-key"

SERVER = r'''
import asyncio, json, sys
LATENCY = float(sys.argv[1])
BODY = json.dumps({"id": "g", "model": "m", "choices": [{"index": 0, "message": {"role": "assistant",
    "content": "ok"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 5, "completion_tokens": 1,
    "cost": 0.000001}}).encode()
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(BODY)

async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            await asyncio.sleep(LATENCY)
            writer.write(HEAD + BODY)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
'''


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(latency)], stdout=subprocess.PIPE, text=True)
    port = proc.stdout.readline().strip()
    return proc, f"http://127.0.0.1:{port}/api/v1"


def frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"review number {i}: it was fine" for i in range(rows)]})


def mapped(url: str, rows: int, concurrency: int, journal_dir: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one map."""
    client = OpenRouter(api_key=KEY, server_url=url)
    job = build_job(frame(rows), "Classify: $text", model="m", concurrency=concurrency, journal_dir=journal_dir,
                    fresh=True)
    wall, cpu = time.perf_counter(), time.process_time()
    result = run_map(client, job)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert result.stats.done == rows, result.stats.summary()
    client.close()
    return wall, cpu


def sequential(url: str, rows: int) -> float:
    """Seconds per row of ``for row in df: client.chat.send(...)``."""
    with OpenRouter(api_key=KEY, server_url=url) as client:
        start = time.perf_counter()
        for text in frame(rows)["text"]:
            client.chat.send(messages=[{"role": "user", "content": f"Classify: {text}"}], model="m")
        return (time.perf_counter() - start) / rows


def memory(rows: int) -> float:
    """tracemalloc peak (MB) of a whole map over a transport that answers at once."""
    answer = json.loads('{"model": "m", "choices": [{"index": 0, "message": {"role": "assistant", '
                        '"content": "positive"}, "finish_reason": "stop"}], "usage": {"cost": 0.000001}}')

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answer)

    data = frame(rows)
    client = OpenRouter(api_key=KEY, server_url="http://fake/api/v1",
                        async_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    tracemalloc.start()
    result = run_map(client, build_job(data, "Classify: $text", model="m", concurrency=64, journal=False))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.stats.done == rows
    return peak / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--memory-rows", type=int, default=100_000)
    args = parser.parse_args()
    proc, url = start_server(args.latency)
    try:
        per_row = sequential(url, 50)
        print(f"sequential client.chat.send: {1 / per_row:.1f} rows/s "
              f"({per_row * args.rows:.0f} s for {args.rows} rows)")
        with tempfile.TemporaryDirectory() as journal_dir:
            for concurrency in (16, 64):
                wall, cpu = mapped(url, args.rows, concurrency, journal_dir)
                rate, ideal = args.rows / wall, concurrency / args.latency
                print(f"map, concurrency {concurrency}: {rate:.0f} rows/s = {rate / ideal:.2f} x ideal "
                      f"({ideal:.0f}/s); {wall:.1f} s; speed-up over the loop {per_row * args.rows / wall:.1f}x; "
                      f"client CPU {cpu / args.rows * 1000:.2f} ms/row")
    finally:
        proc.kill()
        proc.wait(5)
    print(f"memory, {args.memory_rows} rows (tracemalloc peak, fast fake transport): "
          f"{memory(args.memory_rows):.0f} MB")


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
