"""A real IPython kernel for tests: execute code with a JupyterLab-like cellId and capture iopub."""

from __future__ import annotations

import json
import os
import queue
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.manager import KernelManager

FAKE_KEY = "sk-or-v1-FAKE0KEY0FOR0TESTS0a1b2c3d4e5f6"  # recognisable: must never appear in any output


@dataclass
class Execution:
    """Everything the front end would have received for one execute_request."""

    reply: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.reply["content"]["status"]

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["msg_type"] in types]

    @property
    def display_bytes(self) -> int:
        return sum(len(json.dumps(m["content"]).encode()) for m in
                   self.of_type("display_data", "update_display_data", "clear_output", "stream"))

    def outputs(self) -> list[dict[str, Any]]:
        """The cell's final outputs, folding clear_output and update_display_data as a front end does."""
        outs: list[dict[str, Any]] = []
        pending_clear = False
        for m in self.messages:
            kind, content = m["msg_type"], m["content"]
            if kind == "clear_output":
                if content.get("wait"):
                    pending_clear = True
                else:
                    outs = []
                continue
            if kind in ("display_data", "execute_result", "stream", "error"):
                if pending_clear:
                    outs, pending_clear = [], False
                outs.append({"type": kind, **content})
            elif kind == "update_display_data":
                did = content.get("transient", {}).get("display_id")
                for out in outs:
                    if out.get("transient", {}).get("display_id") == did:
                        out["data"] = content["data"]
        return outs

    def text(self) -> str:
        """All text the user would see: html, plain text, stream text, error lines."""
        parts = []
        for out in self.outputs():
            data = out.get("data", {})
            parts += [data.get("text/html", ""), data.get("text/plain", ""), out.get("text", "")]
            parts += out.get("traceback", []) + [out.get("evalue", "")]
        return "\n".join(str(p) for p in parts)

    def html(self) -> str:
        return "\n".join(o.get("data", {}).get("text/html", "") for o in self.outputs())


class Kernel:
    """A started kernel with a blocking client; ``run`` sends execute_request with cell metadata."""

    def __init__(self, env: dict[str, str]) -> None:
        self.tmp = tempfile.mkdtemp(prefix="or_magic_kernel_")
        self.km = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(self.tmp, "kipc"))
        self.km.start_kernel(env={**os.environ, "IPYTHONDIR": os.path.join(self.tmp, "ipython"), **env})
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def send(self, code: str, cell_id: str | None = None) -> str:
        content = dict(code=code, silent=False, store_history=True, user_expressions={}, allow_stdin=False,
                       stop_on_error=True)
        msg = self.kc.session.msg("execute_request", content, metadata={"cellId": cell_id} if cell_id else {})
        self.kc.shell_channel.send(msg)
        return msg["header"]["msg_id"]

    def collect(self, msg_id: str, timeout: float = 60) -> Execution:
        deadline = time.monotonic() + timeout
        messages: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            try:
                m = self.kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            m["t_recv"] = time.monotonic()
            messages.append(m)
            if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                break
        else:
            raise TimeoutError(f"no idle within {timeout} s")
        while True:
            reply = self.kc.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                return Execution(reply, messages)

    def run(self, code: str, cell_id: str | None = None, timeout: float = 60) -> Execution:
        return self.collect(self.send(code, cell_id), timeout)

    def interrupt(self) -> None:
        self.km.interrupt_kernel()

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@contextmanager
def kernel(env: dict[str, str]) -> Iterator[Kernel]:
    k = Kernel(env)
    try:
        yield k
    finally:
        k.shutdown()


def ok(k: Kernel, code: str, **kw: Any) -> Execution:
    """Run ``code`` and fail the test with the cell's output unless it succeeded."""
    r = k.run(code, **kw)
    assert r.status == "ok", r.text()[-3000:]
    return r


def value(k: Kernel, expr: str) -> Any:
    """Evaluate ``expr`` in the kernel and bring it back as JSON (``str`` for what JSON cannot hold)."""
    r = ok(k, f"import json as _json\nprint('@@' + _json.dumps({expr}, default=str))")
    return json.loads(next(x for x in r.text().splitlines() if x.startswith("@@"))[2:])
