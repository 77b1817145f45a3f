"""The demo notebooks, Binder config and packaging: what a newcomer and a release depend on.

* Every notebook in notebooks/ runs headless top to bottom against the offline sandbox (no key in the
  kernel's environment), with JupyterLab's cellId sent per cell, and produces no error output or traceback
  (cells tagged ``raises-exception`` excepted); a few outputs per notebook are checked for what the
  notebook claims to show.
* The notebooks are committed clean: no outputs, no execution counts, every cell has an id.
* binder/ says what repo2docker needs: Python 3.11, the package installed from the repository root.
* A wheel built from the source tree has the right metadata and files, and installs into an empty target
  where ``%load_ext or_magic`` and a sandbox chat work.
"""

from __future__ import annotations

import email
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import run_notebooks  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
FAKE_KEY = "sk-or-v1-FAKE0KEY0FOR0NOTEBOOK0TESTS0a1b2c3d4"
ERROR_CLASSES = {
    400: "BadRequestResponseError", 404: "NotFoundResponseError", 408: "RequestTimeoutResponseError",
    413: "PayloadTooLargeResponseError", 418: "OpenRouterDefaultError", 422: "UnprocessableEntityResponseError",
    429: "TooManyRequestsResponseError", 500: "InternalServerResponseError", 502: "BadGatewayResponseError",
    503: "ServiceUnavailableResponseError", 524: "EdgeNetworkTimeoutResponseError",
    529: "ProviderOverloadedResponseError",
}

# cell id -> text that cell's outputs must contain (a sample of what each notebook says it shows)
EXPECTED: dict[str, dict[str, list[str]]] = {
    "notebook_context.ipynb": {
        "cells-dry": ["nothing was sent", "cells: In[3], In[4] (", "regions: north, south, east"],
        "cells-ask": ["### Cell In[3]", "Result `Out[4]` (str, 5 characters)"],
        "broken": ["IndexError"],
        "fix": ["if 0 <= i < len(prices):", "sandbox/fixer via Sandbox"],
        "code": ["# fixed\nfor p in prices:"],
        "no-code": ["the answer has no Python code block, so no cell was proposed"],
    },
    "quickstart.ipynb": {
        "load": ["offline SANDBOX"],
        "follow-up": ["sandbox"],
        "rerun-history": ["cold colours"],
        "dry-run": ['"seed": 7', '"max_tokens": 300', "nothing was sent"],
        "use-out": ["Write a haiku"],
        "usage": ["total"],
    },
    "panel.ipynb": {
        "await": ["busy: False"],
        "dry-run": ['"temperature": 0.3', '"max_tokens": 400'],
        "stop": ["status: 'interrupted'"],
        "threads": ["scratch"],
    },
    "images.ipynb": {
        "image-output": ["image/png"],
        "safe": ["image not loaded"],
        "attach-dry-run": ['"type": "image_url"', "attachments: 1"],
        "attach": ["image/png"],
        "vision": ["prompt tokens"],
        "pdf": ["secret word"],
        "attach-pdf": ["secret word"],
    },
    "errors.ipynb": {
        "e401": ["UnauthorizedResponseError", "OPENROUTER_API_KEY"],
        "e402": ["PaymentRequiredResponseError", "credits"],
        "e403": ["ForbiddenResponseError", "moderation"],
        "e400-provider": ["Invalid schema for function"],
        **{f"e{status}": [name] for status, name in ERROR_CLASSES.items()},
        "midstream-documented": ["StreamError", "This partial answer"],
        "disconnect": ["APIConnectionError"],
        "malformed": ["ResponseValidationError"],
        "stall": ["APITimeoutError"],
        "threads": ["default  0"],
        "flaky-log": ["retry 1", "retry 2"],
        "ratelimit-long": ["about 2 min"],
        "raise-on-error": ["TurnFailed"],
        "client": ["UnauthorizedResponseError (401)", "402, handled on its own"],
        "client-stream": ["kept what streamed"],
        "client-transport": ["APIConnectionError", "APITimeoutError"],
        "client-retry": ["after 3 requests"],
    },
    "routing.ipynb": {
        "fallback": ["sandbox/echo via Sandbox"],
        "fallback-dry": ['"models"'],
        "provider-dry": ['"allow_fallbacks": false'],
        "reasoning": ["reasoning"],
        "web": ["example.org/search/", "Result 3 about"],
    },
    "openrouter_native.ipynb": {
        "compare": ["or-magic-compare-column", "sandbox/paced-1000", "sandbox/paced-500",
                    "no answer continues the thread"],
        "keep": ["kept sandbox/paced-500"],
        "compare-fail": ["sandbox/paced-1000's answer continues the thread", "500"],
        "cache-first": ["prompt cache:", "written"],
        "cache-second": ["prompt cache:", "read"],
        "usage": ["cached in", "sandbox/anthropic", "key credit"],
    },
    "data.ipynb": {
        "map-dry": ["nothing was sent", "8 requests to sandbox/echo", "estimated cost at most $", '"json_schema"'],
        "map": ["map: 8 ok, 0 failed of 8 rows"],
        "map-result": ["example label"],
        "resume-partial": ["4 ok, 0 failed of 4 rows"],
        "resume": ["8 ok, 0 failed, 4 from the journal of 8 rows"],
        "batch": ["submitted batch batch_", "8 ok, 0 failed of 8 rows"],
        "batches": ["completed", "8/8"],
        "cleanup": ["scratch directory removed"],
    },
    "beyond_chat.ipynb": {
        "load": ["offline SANDBOX"],
        "cache-on": ["cache on", "or_magic_beyond_"],  # the demo's temporary directory, not ~/.cache
        "cache-replay": ["cached", "$0 "],
        "cache-files": ["1 recorded answer(s)", "'key', 'model', 'result'", "Authorization header in it: False"],
        "cache-status": ["cache on: 1 answers"],
        "cache-clear": ["removed 1 cached answers", "cache off"],
        "restore-save": ["2 outputs carry a turn", "thread: 'trip'", "'assistant'"],
        "restore-export": ["exported 3 turns"],
        "restore": ["restored 2 turns", "trip    2"],
        "restore-history": ["Suggest a city for a weekend trip.", "What should I eat there?"],
        "restore-continue": ["nothing was sent", "6 messages", '"content": "What should I eat there?"'],
        "restore-load": ["loaded threads: replay, trip"],
        "schema-dry": ['"type": "json_schema"', '"strict": true', '"additionalProperties": false',
                       '"require_parameters": true'],
        "schema-use": ["City True name="],
        "schema-dict-use": ["dict {'city': "],
        "schema-fail": ["StructuredOutputError", "unexpected_field"],  # the card, and the raw answer kept
        "schema-fail-after": ["City name='example name'"],  # -o left alone on failure
        "context-dry": ["context: sales (", "characters)", "nothing was sent", "Which region sold the most units?"],
        "context": ["Notebook variable `sales`", "| south | 340 |"],
        "interp-dry": ["How did the south region do? Keep {braces} and $region as typed.", "$x^2$", "`$region`"],
        "attach-image": ["sandbox/image via Sandbox", "image/png"],
        "attach-file": ["team meeting", "sandbox/echo via Sandbox"],
        "attach-refused": ["does not take image input"],
        "tools-def": ["'description': 'Add two integers.'", "'description': 'the first number'"],
        "tools": ["tool call add", "result:", "(scripted) answer"],
        "tools-error": ["error: ConnectionError: the weather service is unreachable", "the tool `weather` raised"],
        "tools-steps": ["--max-steps limit"],
        "budget-refused": ["BudgetExceededError", "would be exceeded"],
        "budget-ok": ["One sentence about budgets."],
        "usage": ["of the $0.005 budget", "total"],
    },
}

# cell id -> text that cell's outputs must NOT contain
ABSENT: dict[str, dict[str, list[str]]] = {
    "beyond_chat.ipynb": {
        "cache-first": ["cached"],  # recorded, not replayed
        "no-cache": ["cached"],
        "budget-ok": ["BudgetExceededError"],
        "tools-error": ["Traceback"],
    },
}


def output_text(cell: Any) -> str:
    """Everything a cell showed, as one string (all mime types, stream text, error names and values)."""
    parts: list[str] = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts += [out.get("ename", ""), out.get("evalue", "")]
        for mime, value in out.get("data", {}).items():
            parts.append(mime)
            parts.append(value if isinstance(value, str) else json.dumps(value))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def isolated_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A kernel environment with no key and no base URL, and private IPython/Jupyter dirs."""
    base = tmp_path_factory.mktemp("nbhome")
    env = run_notebooks.kernel_env(sandbox=True, extra={"IPYTHONDIR": str(base / "ipython")})
    runtime = str(base / "runtime")  # the connection files the kernel manager (this process) writes
    saved = os.environ.get("JUPYTER_RUNTIME_DIR")
    os.environ["JUPYTER_RUNTIME_DIR"] = runtime
    env["JUPYTER_RUNTIME_DIR"] = runtime
    yield env
    if saved is None:
        os.environ.pop("JUPYTER_RUNTIME_DIR", None)
    else:
        os.environ["JUPYTER_RUNTIME_DIR"] = saved


# ------------------------------------------------------------------------------------- executing them


def test_there_are_notebooks() -> None:
    names = {p.name for p in NOTEBOOKS}
    assert {"quickstart.ipynb", "panel.ipynb", "images.ipynb", "errors.ipynb", "routing.ipynb",
            "beyond_chat.ipynb", "notebook_context.ipynb", "data.ipynb",
            "openrouter_native.ipynb"} <= names


@pytest.mark.kernel
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_on_the_sandbox(path: Path, tmp_path: Path, isolated_env: dict[str, str]) -> None:
    assert "OPENROUTER_API_KEY" not in isolated_env and "OPENROUTER_BASE_URL" not in isolated_env
    result = run_notebooks.execute_notebook(path, tmp_path, env=isolated_env, timeout=90)
    assert result.ok, "\n".join(p.describe(path.name) for p in result.problems)
    assert result.mode == "sandbox" and result.output == tmp_path / path.name
    nb = nbformat.read(result.output, as_version=4)
    cells = {c.id: c for c in nb.cells}
    for cell_id, needles in EXPECTED.get(path.name, {}).items():
        assert cell_id in cells, f"{path.name}: no cell with id {cell_id!r}"
        text = output_text(cells[cell_id])
        for needle in needles:
            assert needle in text, f"{path.name}, cell {cell_id!r}: {needle!r} not in its output:\n{text[:2000]}"
    for cell_id, needles in ABSENT.get(path.name, {}).items():
        text = output_text(cells[cell_id])
        for needle in needles:
            assert needle not in text, f"{path.name}, cell {cell_id!r}: {needle!r} in its output:\n{text[:2000]}"
    if path.name == "beyond_chat.ipynb":
        plain = "".join(o.get("data", {}).get("text/plain", "") for o in cells["tools-steps"].outputs)
        assert plain.count("tool call add") == 3 and plain.count("→ 6") == 2  # --max-steps 2: the third not run
        scratch = re.search(r"from (\S*or_magic_beyond_\w+)/cache", output_text(cells["cache-on"]))
        assert scratch and not Path(scratch.group(1)).exists(), "the demo removes its scratch directory"


@pytest.mark.kernel
def test_with_a_key_set_no_output_contains_it(tmp_path: Path, isolated_env: dict[str, str]) -> None:
    """The "real" branch, pointed at a local sandbox with a fake key: errors and all, the key never shows."""
    from or_magic.sandbox import start

    with start() as sb:
        env = {**isolated_env, "OPENROUTER_API_KEY": FAKE_KEY, "OPENROUTER_BASE_URL": sb.url}
        result = run_notebooks.execute_notebook(ROOT / "notebooks" / "errors.ipynb", tmp_path, env=env, timeout=90)
        assert any(r["has_auth"] for r in sb.requests)  # the key was really sent
    assert result.mode == "real OpenRouter"
    assert result.ok, "\n".join(p.describe("errors.ipynb") for p in result.problems)
    text = (tmp_path / "errors.ipynb").read_text()
    assert FAKE_KEY not in text and FAKE_KEY[:20] not in text
    real = next(c for c in nbformat.reads(text, as_version=4).cells if c.id == "real-error")
    assert "not a valid model" in output_text(real)  # the real-mode cell ran (against the sandbox)


@pytest.mark.kernel
def test_beyond_chat_real_branch_runs_and_keeps_the_key_out(tmp_path: Path, isolated_env: dict[str, str]) -> None:
    """beyond_chat with a (fake) key against a sandbox: real model ids, so every request fails, and still no error
    output, no key in any output, and the scratch directory (cache, saved notebook) removed at the end."""
    from or_magic.sandbox import start

    with start() as sb:
        env = {**isolated_env, "OPENROUTER_API_KEY": FAKE_KEY, "OPENROUTER_BASE_URL": sb.url}
        result = run_notebooks.execute_notebook(ROOT / "notebooks" / "beyond_chat.ipynb", tmp_path, env=env,
                                                timeout=90)
    assert result.mode == "real OpenRouter"
    assert result.ok, "\n".join(p.describe("beyond_chat.ipynb") for p in result.problems)
    text = (tmp_path / "beyond_chat.ipynb").read_text()
    assert FAKE_KEY not in text and FAKE_KEY[:20] not in text
    cells = {c.id: c for c in nbformat.reads(text, as_version=4).cells}
    assert "mode: real" in output_text(cells["choose-mode"])
    assert "0 recorded answer(s)" in output_text(cells["cache-files"])  # failed answers are not recorded
    assert "not a valid model" in output_text(cells["schema"])
    assert "NoneType" in output_text(cells["schema-use"])  # nothing bound
    scratch = re.search(r"from (\S*or_magic_beyond_\w+)/cache", output_text(cells["cache-on"]))
    assert scratch and not Path(scratch.group(1)).exists(), "the demo removes its scratch directory"


def test_runner_reports_errors_and_tracebacks() -> None:
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("ok", id="fine"),
        nbformat.v4.new_code_cell("1/0", id="boom"),
        nbformat.v4.new_code_cell("x", id="printed"),
        nbformat.v4.new_code_cell("raise", id="expected", metadata={"tags": ["raises-exception"]}),
    ])
    nb.cells[1].outputs = [nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                                                  traceback=[])]
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stderr", text=(
        "Exception in thread t:\nTraceback (most recent call last):\n  File \"x\", line 1\nValueError: bad\n"))]
    nb.cells[3].outputs = [nbformat.v4.new_output("error", ename="TurnFailed", evalue="x", traceback=[])]
    problems = run_notebooks.find_problems(nb)
    assert [(p.index, p.cell_id) for p in problems] == [(1, "boom"), (2, "printed")]
    assert problems[0].summary == "ZeroDivisionError: division by zero"
    assert "ValueError: bad" in problems[1].summary
    assert "demo.ipynb: cell 1 (id 'boom')" in problems[0].describe("demo.ipynb")
    assert run_notebooks._secret_cells(nb, ["division by"]) == [1]


@pytest.mark.kernel
def test_runner_cli_fails_naming_notebook_and_cell(tmp_path: Path, isolated_env: dict[str, str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("print(get_ipython().kernel.get_parent()['metadata'].get('cellId'))", id="who"),
        nbformat.v4.new_code_cell("raise ValueError('expected')", id="tagged", metadata={"tags": ["raises-exception"]}),
        nbformat.v4.new_code_cell("1/0", id="boom"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    rc = run_notebooks.main([str(path), "--out", str(tmp_path / "out"), "--sandbox", "--timeout", "60"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "broken.ipynb: cell 2 (id 'boom'): ZeroDivisionError" in err and "tagged" not in err
    executed = nbformat.read(tmp_path / "out" / "broken.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == "who"  # cellId sent like JupyterLab does


# ------------------------------------------------------------------------------------ committed clean


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    ids = [c.get("id") for c in nb.cells]
    assert all(ids) and len(set(ids)) == len(ids), "every cell needs a unique id"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: cell {cell.id!r} has outputs: strip them"
            assert cell.execution_count is None, f"{path.name}: cell {cell.id!r} has an execution count"
            assert "execution" not in cell.metadata, f"{path.name}: cell {cell.id!r} has execution timings"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert 'os.environ.get("OPENROUTER_API_KEY")' in code, "the notebook must detect the key itself"
    assert "%chat sandbox" in code and "scripted" in prose, "the sandbox must be started explicitly and labelled"
    assert "sk-or-" not in path.read_text(), "no key-like text in a committed notebook"


# ------------------------------------------------------------------------------------------- binder


def test_binder_config() -> None:
    binder = ROOT / "binder"
    assert not (ROOT / ".binder").exists(), "repo2docker refuses both binder/ and .binder/"
    assert (binder / "runtime.txt").read_text().strip() == "python-3.11"
    reqs = [line.split("#")[0].strip() for line in (binder / "requirements.txt").read_text().splitlines()]
    reqs = [r for r in reqs if r]
    # binder/ hides the root pyproject.toml from repo2docker: the package must be installed from here
    assert any(re.fullmatch(r"(-e\s+)?\.(\[[\w,-]+\])?", r) for r in reqs), reqs
    for conflicting in ("environment.yml", "Pipfile", "Dockerfile", "setup.py", "pyproject.toml"):
        assert not (binder / conflicting).exists(), f"binder/{conflicting} would change how repo2docker builds"
    post = binder / "postBuild"
    if post.exists():
        assert os.access(post, os.X_OK), "postBuild must be executable"
        text = post.read_text()
        assert text.startswith("#!") and "set -e" in text, "postBuild errors must stop the build"
        subprocess.run(["bash", "-n", str(post)], check=True)
    readme = (ROOT / "README.md").read_text()
    assert "mybinder.org/v2/" in readme and "urlpath=lab/tree/notebooks/quickstart.ipynb" in readme


# ---------------------------------------------------------------------------------------- packaging


def _source_tree(dest: Path) -> Path:
    """A copy of the files git would ship (tracked plus new, ignored files excluded), or the tree itself."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=ROOT, capture_output=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(".venv", ".git", "out", "build", "*.egg-info"))
        return dest
    for name in filter(None, listed.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip wheel --no-deps`` of a clean copy of the source tree (pip fetches the build backend)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = _source_tree(tmp / "src")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"),
                           str(src)], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = (tmp / "dist").glob("or_magic-*.whl")
    return built


def test_wheel_metadata_and_files(wheel: Path) -> None:
    import tomllib

    import or_magic

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(zf.read(meta_name))
    assert meta["Name"] == "or_magic" and meta["Version"] == or_magic.__version__ == project["version"]
    assert meta["Requires-Python"] == ">=3.10"
    assert meta["Summary"] and len(meta.get_payload()) > 1000, "the README is the long description"
    requires = meta.get_all("Requires-Dist")
    unconditional = {re.split(r"[<>=!~ ;\[]", r)[0].lower() for r in requires if "extra ==" not in r}
    assert unconditional == {re.split(r"[<>=!~ ;\[]", d)[0].lower() for d in project["dependencies"]}
    assert {"ipython", "ipywidgets", "httpx", "pydantic", "markdown-it-py"} <= unconditional
    assert not unconditional & {"pytest", "jupyterlab", "playwright", "nbclient"}, "test tools are extras only"
    package = {n for n in names if not n.startswith("or_magic-")}
    assert package == {f"or_magic/{p.name}" for p in (ROOT / "or_magic").glob("*.py")}, "exactly the package"


@pytest.mark.kernel
def test_installed_wheel_loads_and_chats(wheel: Path, tmp_path: Path) -> None:
    """Install the wheel alone into an empty target and use it from there (dependencies from this venv)."""
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    code = (
        "import or_magic, sys\n"
        "assert or_magic.__file__.startswith(sys.argv[1]), or_magic.__file__\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'or_magic')\n"
        "ip.run_line_magic('chat', 'sandbox')\n"
        "ip.run_cell_magic('chat', '--once', 'hello from the installed wheel')\n"
        "ip.run_line_magic('unload_ext', 'or_magic')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER_")}
    env.update(PYTHONPATH=str(target), IPYTHONDIR=str(tmp_path / "ipython"))
    run = subprocess.run([sys.executable, "-c", code, str(target)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "offline SANDBOX" in run.stdout and "hello from the installed wheel" in run.stdout
    cli = subprocess.run([sys.executable, "-m", "or_magic.sandbox", "--help"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=30)
    assert cli.returncode == 0 and "--port" in cli.stdout
