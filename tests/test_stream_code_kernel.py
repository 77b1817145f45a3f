"""A 100 KB fenced code block streamed through %%chat in a real kernel: the front end receives each finished
line once, not the open block again on every update."""

from __future__ import annotations

import json
import re

import pytest
from _kernel import Kernel
from test_render_stream_code import code_block

pytestmark = pytest.mark.kernel


@pytest.mark.timeout(180)
def test_streamed_code_block_costs_at_most_three_times_its_final_output(kern: Kernel) -> None:
    code = code_block(100_000).replace("```python\n", "```python\n# paced by the sandbox: rate=1000\n", 1)
    assert not re.search(r"[$]|\b[a-z_]+=\d(?<!rate=1)", code)  # no other sandbox knob, nothing to expand
    r = kern.run(f"%%chat -m sandbox/echo\n{code}", cell_id="code-bytes", timeout=150)
    assert r.status == "ok", r.text()[-2000:]
    updates = r.of_type("update_display_data", "display_data")
    assert len(updates) > 20, "the block should stream in many updates"
    bundles = [o["data"] for o in r.outputs() if "text/markdown" in o.get("data", {})]
    assert len(bundles) == 1
    final = bundles[0]
    assert final["text/plain"].startswith(code.rstrip("\n"))  # nothing lost
    assert final["text/html"].count('<div class="highlight">') == 1  # one block, highlighted whole
    final_bytes = len(json.dumps(final).encode())
    print(f"code block: {r.display_bytes / final_bytes:.2f}x the final output, {len(updates)} display messages")
    assert r.display_bytes <= 3 * final_bytes, r.display_bytes / final_bytes
