"""Execute the demo notebooks headless, like JupyterLab would, and fail on any error output or traceback.

    .venv/bin/python scripts/run_notebooks.py                      # every notebooks/*.ipynb -> out/
    .venv/bin/python scripts/run_notebooks.py notebooks/quickstart.ipynb --out out
    .venv/bin/python scripts/run_notebooks.py --sandbox            # ignore OPENROUTER_API_KEY: offline sandbox

Each notebook runs in a fresh kernel with nbclient. Like JupyterLab and Notebook 7, every execute request
carries the cell's id (``cellId`` metadata), so or_magic's cell-aware conversation behaves as it does in the
browser. The executed copy is written to the output directory even when a cell fails, so it can be opened
in JupyterLab to look at the failure. A notebook fails when any cell has an ``error`` output or prints a
Python traceback, except cells tagged ``raises-exception`` (which are expected to fail).

The API key is never printed or written: if it shows up anywhere in an executed notebook, that copy is not
written and the run fails, naming the cell.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
KEY_VARS = ("OPENROUTER_API_KEY", "OPENROUTER_BASE_URL")
EXPECTED_TAG = "raises-exception"
TRACEBACK_MARK = "Traceback (most recent call last)"


@dataclass
class Problem:
    """One cell that failed: where, and a one-line summary (never the key)."""

    index: int
    cell_id: str
    summary: str

    def describe(self, notebook: str) -> str:
        return f"{notebook}: cell {self.index} (id {self.cell_id!r}): {self.summary}"


@dataclass
class Result:
    """What one notebook run produced."""

    notebook: Path
    output: Path | None
    seconds: float
    cells: int
    mode: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def kernel_env(sandbox: bool = False, base: Mapping[str, str] | None = None,
               extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The kernel's environment: ``base`` (default: ours), without the key and base URL if ``sandbox``."""
    env = dict(os.environ if base is None else base)
    if sandbox:
        for name in KEY_VARS:
            env.pop(name, None)
    env.update(extra or {})
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # silences a debugger warning on kernel start
    return env


def _first_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def find_problems(nb: Any) -> list[Problem]:
    """Error outputs and printed tracebacks in an executed notebook, except in ``raises-exception`` cells."""
    problems: list[Problem] = []
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code" or EXPECTED_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "error":
                summary = f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"
            elif kind == "stream" and TRACEBACK_MARK in out.get("text", ""):
                text = out.get("text", "")
                tail = [line for line in text[text.index(TRACEBACK_MARK):].splitlines() if line.strip()]
                summary = f"traceback printed on {out.get('name', 'a stream')}: {tail[-1] if tail else ''}"
            elif kind in ("display_data", "execute_result") and TRACEBACK_MARK in out.get("data", {}).get(
                    "text/plain", ""):
                summary = "a traceback is displayed in the output"
            else:
                continue
            problems.append(Problem(index, str(cell.get("id", "?")), _first_line(summary)))
    return problems


def _secret_cells(nb: Any, secrets: Sequence[str]) -> list[int]:
    """Indices of cells whose source or outputs contain any of ``secrets``."""
    found = []
    for index, cell in enumerate(nb.cells):
        text = json.dumps(cell, ensure_ascii=False)
        if any(s and s in text for s in secrets):
            found.append(index)
    return found


def execute_notebook(path: str | Path, out_dir: str | Path | None = "out", *, env: Mapping[str, str] | None = None,
                     timeout: float = 120, kernel_name: str = "python3", cwd: str | Path | None = None) -> Result:
    """Run ``path`` in a fresh kernel (cellId sent with each cell) and write the executed copy to ``out_dir``.

    ``env`` is the kernel's environment (see :func:`kernel_env`); ``cwd`` its working directory (default:
    ``out_dir``, so files a notebook writes land next to the executed copy, not in the repository).
    ``timeout`` bounds each cell. Returns the problems found instead of raising on cell errors.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from traitlets.config import Config

    path = Path(path)
    env = dict(os.environ if env is None else env)
    out_path = Path(out_dir) / path.name if out_dir is not None else None
    workdir = Path(cwd) if cwd is not None else (out_path.parent if out_path is not None else path.parent)
    workdir.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(path, as_version=4)
    ipc_dir = tempfile.mkdtemp(prefix="or_magic_nb_")  # IPC sockets: no "running over TCP" warning, no ports
    config = Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(ipc_dir, "kernel")}})
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, allow_errors=True, config=config,
                            resources={"metadata": {"path": str(workdir)}})

    def send_cell_id(cell: Any, cell_index: int) -> None:
        client.kc.session.metadata = {"cellId": cell.get("id")}  # what JupyterLab sends with each cell

    client.on_cell_execute = send_cell_id
    mode = "real OpenRouter" if env.get("OPENROUTER_API_KEY") else "sandbox"
    t0 = time.monotonic()
    crash: Problem | None = None
    try:
        client.execute(env=env)
    except CellTimeoutError as err:
        crash = Problem(_running_cell(nb), _cell_id(nb, _running_cell(nb)),
                        f"timed out after {timeout:g} s: {_first_line(str(err).splitlines()[0] if str(err) else '')}")
    except DeadKernelError as err:
        crash = Problem(_running_cell(nb), _cell_id(nb, _running_cell(nb)), f"the kernel died: {_first_line(err)}")
    finally:
        shutil.rmtree(ipc_dir, ignore_errors=True)
    seconds = time.monotonic() - t0
    problems = find_problems(nb)
    if crash is not None:
        problems.append(crash)
    secrets = [env.get("OPENROUTER_API_KEY", "")]
    leaked = _secret_cells(nb, secrets)
    written: Path | None = None
    if leaked:
        problems += [Problem(i, _cell_id(nb, i), "the API key appears in this cell: executed copy NOT written")
                     for i in leaked]
    elif out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out_path)
        written = out_path
    return Result(path, written, seconds, len(nb.cells), mode, problems)


def _running_cell(nb: Any) -> int:
    """The last code cell that started executing (the one a timeout or crash interrupted)."""
    started = [i for i, c in enumerate(nb.cells) if c.get("cell_type") == "code"
               and c.get("metadata", {}).get("execution", {}).get("iopub.status.busy")]
    return started[-1] if started else 0


def _cell_id(nb: Any, index: int) -> str:
    return str(nb.cells[index].get("id", "?")) if 0 <= index < len(nb.cells) else "?"


def default_notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: notebooks/*.ipynb)")
    parser.add_argument("-o", "--out", type=Path, default=Path("out"), help="where executed copies go (default: out/)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds allowed per cell (default: 120)")
    parser.add_argument("--sandbox", action="store_true",
                        help="hide OPENROUTER_API_KEY and OPENROUTER_BASE_URL from the kernel: offline sandbox")
    parser.add_argument("--kernel", default="python3", help="kernel name (default: python3)")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or default_notebooks()
    if not notebooks:
        print(f"no notebooks found in {NOTEBOOKS}", file=sys.stderr)
        return 2
    env = kernel_env(sandbox=args.sandbox)
    failed = 0
    for nb_path in notebooks:
        if not nb_path.is_file():
            print(f"FAIL {nb_path}: no such notebook", file=sys.stderr)
            failed += 1
            continue
        result = execute_notebook(nb_path, args.out, env=env, timeout=args.timeout, kernel_name=args.kernel)
        where = f" -> {result.output}" if result.output else ""
        status = "ok  " if result.ok else "FAIL"
        print(f"{status} {nb_path}{where} ({result.cells} cells, {result.seconds:.1f} s, {result.mode})",
              flush=True)
        for problem in result.problems:
            print(f"     {problem.describe(str(nb_path))}", file=sys.stderr, flush=True)
        failed += not result.ok
    if failed:
        print(f"{failed} of {len(notebooks)} notebook(s) failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
