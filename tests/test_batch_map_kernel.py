"""``%%chat --map … --batch`` in a real kernel against the sandbox's Batch API: a failing row, an interrupt
while polling, a kernel restart, and a re-run that resumes the same batch (one submission in all)."""

from __future__ import annotations

import time
import uuid

from _kernel import FAKE_KEY, kernel

from or_magic.sandbox.more_models import limited_first_try


def _rows(n: int) -> list[str]:
    """Row texts of which some (not all) fail on ``sandbox/ratelimit-30``'s first and only try."""
    while True:
        tag = uuid.uuid4().hex[:6]
        texts = [f"bt{tag}-{i}" for i in range(n)]
        if 0 < sum(limited_first_try(t, 30) for t in texts) < n:
            return texts


def _wait(predicate, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_batch_failing_row_interrupt_restart_resume(kernel_env, sandbox, tmp_path):
    texts = _rows(6)
    setup = (f"%load_ext or_magic\n%config ChatMagics.cache_dir = {str(tmp_path)!r}\nimport pandas as pd\n"
             f"df = pd.DataFrame({{'text': {texts!r}}})")
    cell = "%%chat --map df -o out --batch -m sandbox/ratelimit-30\n$text"
    submitted, delay = sandbox.batch_submissions, sandbox.batch_delay
    sandbox.batch_delay = 3.0
    try:
        with kernel(kernel_env) as k:
            assert k.run(setup).status == "ok"
            msg_id = k.send(cell)
            _wait(lambda: sandbox.batch_submissions > submitted, 20)
            time.sleep(0.8)
            k.interrupt()
            first = k.collect(msg_id, timeout=30)
            assert first.status == "ok", first.text()
            assert "polling stopped, the batch keeps running" in first.text() and "submitted batch" in first.text()
            ids = [m["content"]["metadata"]["or_magic"]["batch"]["id"] for m in first.of_type("display_data")
                   if "or_magic" in m["content"].get("metadata", {})]
            assert len(ids) == 1 and ids[0] in first.text()
            k.km.restart_kernel(now=True)
            k.kc.wait_for_ready(timeout=60)
            assert k.run(setup).status == "ok"
            r = k.run(cell, timeout=60)
            assert r.status == "ok", r.text()
            assert f"resumed batch {ids[0]}" in r.text() and sandbox.batch_submissions == submitted + 1
            r = k.run("print(*[bool(e) for e in out.error]); print(out.error[out.error != ''].iloc[0])")
            flags, message = r.text().strip().split("\n")
            assert flags.split() == [str(limited_first_try(t, 30)) for t in texts]  # the failing rows, in place
            assert message == "BatchRowError: Provider returned error"
            listing = k.run("%chat batches")
            assert ids[0] in listing.text() and "completed" in listing.text() and FAKE_KEY not in listing.text()
            again = k.run(cell, timeout=60)  # the answered rows come from the journal: only failed rows resubmit
            assert again.status == "ok" and "from the journal" in again.html()
            assert sandbox.batch_submissions == submitted + 2
    finally:
        sandbox.batch_delay = delay
