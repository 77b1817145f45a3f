"""JupyterLab 4 and Notebook 7 in headless Chromium for browser tests: a server, a browser, notebook helpers.

Both front ends are the same Lumino application underneath, so one set of helpers drives them: the
``window.jupyterapp`` object (``--expose-app-in-browser`` exists in both), the command registry and the
``.jp-*`` DOM classes. ``FRONT_ENDS`` names them; ``LabServer(app="notebook")`` starts ``jupyter notebook``.

Everything lives under one temp dir (Jupyter config/data/runtime, IPython, settings, workspaces, XDG dirs),
so a test run never writes to ``~``. Every wait is bounded, and ``stop()`` ends exactly the processes it
started (the server, then any of its kernels still alive), by pid.

Usage::

    with LabServer(env={"OPENROUTER_BASE_URL": url}) as lab, browser(lab.base) as b:
        page = b.new_page()
        write_notebook(lab.root / "t.ipynb", ["%load_ext or_magic", "%chat panel"])
        nb = open_notebook(page, lab, "t.ipynb")
        run_all(page)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from playwright.sync_api import Browser, Locator, Page

CHROMIUM = os.environ.get("OR_MAGIC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]
TOKEN = "or-magic-test-token"

# The current notebook's kernel is connected and idle (needs --expose-app-in-browser). The DOM's execution
# indicator says "idle" before any kernel exists, so it cannot be used for this.
KERNEL_IDLE_JS = """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle'; }"""

FRONT_ENDS = ("lab", "notebook")  # JupyterLab 4, Notebook 7

# Page errors a front end raises on its own, whatever the notebook holds: Notebook 7.6 throws this on every
# page load (/tree and /notebooks alike, with or without settings files), JupyterLab raises none.
KNOWN_PAGE_ERRORS = {"notebook": ("Cannot read properties of undefined (reading 'schema')",)}

# Run every cell; resolves when they are done, or with "timeout" (page.evaluate itself has no time limit).
RUN_ALL_JS = """(ms) => Promise.race([
  window.jupyterapp.commands.execute('notebook:run-all-cells').then(() => 'done'),
  new Promise(resolve => setTimeout(() => resolve('timeout'), ms))])"""

# Make cell i the only selected, active cell and run it without moving on (what Ctrl+Enter does).
RUN_CELL_JS = """([i, ms]) => { const app = window.jupyterapp, nb = app.shell.currentWidget.content;
  if (i < 0 || i >= nb.widgets.length) return 'no such cell';
  nb.activeCellIndex = i; nb.deselectAll();
  return Promise.race([app.commands.execute('notebook:run-cell').then(() => 'done'),
    new Promise(resolve => setTimeout(() => resolve('timeout'), ms))]); }"""

# The current notebook's cells as its model holds them (what would be saved), in order.
CELLS_JS = """() => window.jupyterapp.shell.currentWidget.content.widgets.map(c => ({
  cell_type: c.model.type, source: c.model.sharedModel.getSource(),
  execution_count: c.model.type === 'code' ? (c.model.executionCount ?? null) : null}))"""


def require_chromium() -> str:
    """The browser binary, or a clear failure: browser tests must fail, not skip, when it is missing."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        raise RuntimeError(f"Chromium not found at {CHROMIUM}: install Debian's chromium "
                           "(apt-get install chromium) or set OR_MAGIC_CHROMIUM; do not run `playwright install`")
    return CHROMIUM


class LabServer:
    """``jupyter lab`` on 127.0.0.1 (port chosen by the OS), isolated under a temp dir, token-protected.

    ``env`` is added to the server's environment, so kernels it starts inherit it (e.g. OPENROUTER_BASE_URL).
    ``root`` is the notebook directory (``base/root`` by default).
    """

    def __init__(self, env: dict[str, str] | None = None, *, app: str = "lab", startup_timeout: float = 60,
                 token: str = TOKEN, extra_args: Sequence[str] = ()) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="or_magic_lab_"))
        self.root = self.base / "root"
        self.root.mkdir()
        self.token = token
        self.app = app
        self.extra_env = dict(env or {})
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.base / "server.log"
        self._log: Any = None

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> LabServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _environment(self) -> dict[str, str]:
        """The server's environment: every Jupyter/IPython/XDG dir under ``base``, news toast pre-answered."""
        base = self.base
        settings = base / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True, exist_ok=True)
        # pre-answer the "get notified about Jupyter news?" toast, which covers the bottom right of the page
        (settings / "notification.jupyterlab-settings").write_text(
            '{"fetchNews": "false", "checkForUpdates": false}')
        dirs = {"JUPYTERLAB_SETTINGS_DIR": "settings", "JUPYTERLAB_WORKSPACES_DIR": "workspaces",
                "JUPYTER_CONFIG_DIR": "jupyter_config", "JUPYTER_DATA_DIR": "jupyter_data",
                "JUPYTER_RUNTIME_DIR": "jupyter_runtime", "IPYTHONDIR": "ipython",
                "XDG_CONFIG_HOME": "xdg_config", "XDG_CACHE_HOME": "xdg_cache", "XDG_DATA_HOME": "xdg_data"}
        env = dict(os.environ)
        env.pop("JUPYTER_PATH", None)
        env.update({k: str(base / v) for k, v in dirs.items()})
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        env = self._environment()
        cmd = [sys.executable, "-m", "jupyterlab" if self.app == "lab" else "notebook",
               "--no-browser", "--ip=127.0.0.1", "--port=0", f"--ServerApp.root_dir={self.root}",
               f"--IdentityProvider.token={self.token}", "--ServerApp.allow_root=True",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--expose-app-in-browser", *self.extra_args]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, env=env, cwd=self.root, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        info = Path(env["JUPYTER_RUNTIME_DIR"]) / f"jpserver-{self.proc.pid}.json"
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter {self.app} exited with {self.proc.returncode}:\n{self.log_tail()}")
            if info.exists():
                with suppress(ValueError):
                    self.url = json.loads(info.read_text())["url"].rstrip("/")
                if self.url and self._status_ok():
                    return
            time.sleep(0.1)
        raise TimeoutError(f"jupyter {self.app} not ready in {self.startup_timeout} s:\n{self.log_tail()}")

    def _status_ok(self) -> bool:
        try:
            with urllib.request.urlopen(self.api_request("/api/status"), timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def api_request(self, path: str) -> urllib.request.Request:
        return urllib.request.Request(self.url + path, headers={"Authorization": f"token {self.token}"})

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the server (it shuts its kernels down), then kill whatever it left, by pid; bounded."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            children = _descendants(proc.pid)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            _kill_leftovers(children, timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None
        if os.environ.get("OR_MAGIC_KEEP_LAB"):
            print(f"lab dir kept: {self.base}")
        else:
            shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, chars: int = 4000) -> str:
        with suppress(OSError):
            return self.log_path.read_bytes()[-chars:].decode(errors="replace")
        return ""

    # -- URLs ------------------------------------------------------------------------------------
    def notebook_url(self, path: str) -> str:
        """Open only this notebook: ``?reset`` stops the saved workspace from reopening earlier ones."""
        if self.app == "lab":
            return f"{self.url}/lab/tree/{path}?reset&token={self.token}"
        return f"{self.url}/notebooks/{path}?token={self.token}"


def _descendants(pid: int) -> list[Any]:
    """The server's child processes (kernels), remembered before it stops so none can be orphaned."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with ipykernel
        return []
    with suppress(psutil.Error):
        return psutil.Process(pid).children(recursive=True)
    return []


def _kill_leftovers(procs: list[Any], timeout: float) -> None:
    if not procs:
        return
    import psutil

    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for p in alive:
        with suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=timeout)


@contextmanager
def browser(tmp: Path, *, timeout: float = 30) -> Iterator[Browser]:
    """Headless Debian Chromium through Playwright, its profile dirs kept under ``tmp``."""
    exe = require_chromium()
    from playwright.sync_api import sync_playwright

    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "chromium_config"), XDG_CACHE_HOME=str(tmp / "chromium_cache"),
               HOME=str(tmp / "chromium_home"))
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, env=env, timeout=timeout * 1000)
        try:
            yield b
        finally:
            b.close()


def write_notebook(path: Path, cells: Sequence[str]) -> Path:
    """A python3 notebook with one code cell per string (ids ``cell-0``, ``cell-1``…)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell(src, id=f"cell-{i}") for i, src in enumerate(cells)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.validate(nb)
    nbformat.write(nb, str(path))
    return path


def open_notebook(page: Page, server: LabServer, path: str, *, timeout: float = 60) -> Locator:
    """Open ``path`` (relative to the server root), wait until its kernel is idle; return the notebook."""
    page.goto(server.notebook_url(path), timeout=timeout * 1000)
    wait_kernel_idle(page, timeout=timeout)
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")


def wait_kernel_idle(page: Page, *, timeout: float = 60) -> None:
    page.wait_for_function(KERNEL_IDLE_JS, timeout=timeout * 1000)


def run_cell(page: Page, index: int, *, timeout: float = 60) -> None:
    """Run only cell ``index`` (0-based), as Ctrl+Enter does, and wait until it and the kernel are done."""
    result = page.evaluate(RUN_CELL_JS, [index, timeout * 1000])
    if result != "done":
        raise TimeoutError(f"running cell {index}: {result}")
    wait_kernel_idle(page, timeout=timeout)


@dataclass(frozen=True)
class CellState:
    """One cell as the notebook model holds it; ``execution_count`` is None for a cell never run."""

    cell_type: str
    source: str
    execution_count: int | None


def notebook_cells(page: Page) -> list[CellState]:
    """Every cell of the current notebook, from its model (rendering-independent, same in both front ends)."""
    return [CellState(**c) for c in page.evaluate(CELLS_JS)]


def wait_cell_count(page: Page, count: int, *, timeout: float = 20) -> list[CellState]:
    """Wait until the notebook has exactly ``count`` cells (e.g. one proposed by ``set_next_input``)."""
    page.wait_for_function(f"() => window.jupyterapp.shell.currentWidget.content.widgets.length === {count}",
                           timeout=timeout * 1000)
    return notebook_cells(page)


def cell_output(page: Page, index: int) -> Locator:
    """Cell ``index``'s output area, as rendered."""
    return cells(page).nth(index).locator(".jp-Cell-outputArea")


def unexpected_page_errors(app: str, errors: Sequence[str]) -> list[str]:
    """``errors`` less those the front end raises by itself (``KNOWN_PAGE_ERRORS``)."""
    known = KNOWN_PAGE_ERRORS.get(app, ())
    return [e for e in errors if not any(k in e for k in known)]


def run_all(page: Page, *, timeout: float = 60) -> None:
    """Run every cell (without appending a cell, unlike Shift+Enter on the last one); wait until done."""
    result = page.evaluate(RUN_ALL_JS, timeout * 1000)
    if result != "done":
        raise TimeoutError(f"run-all did not finish in {timeout} s")
    wait_kernel_idle(page, timeout=timeout)


def cells(page: Page) -> Locator:
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")


def screenshot_path(name: str, tmp: Path) -> Path:
    """Where a test saves a screenshot: docs/NAME when OR_MAGIC_UPDATE_SCREENSHOTS=1 (to refresh the README's
    pictures), else the test's temp dir, so ordinary runs leave the work tree clean."""
    if os.environ.get("OR_MAGIC_UPDATE_SCREENSHOTS") == "1":
        docs = Path(__file__).resolve().parents[1] / "docs"
        docs.mkdir(exist_ok=True)
        return docs / name
    return tmp / name
