"""Code out of an answer: its Python code blocks, proposed as a new cell below the one that ran (never run).

A block counts as Python when its fence's info word is ``python``, ``py``, ``python3``, ``ipython``,
``ipython3`` or empty. Several blocks are joined in order, separated by a blank line.

The proposal is the ``set_next_input`` payload with ``replace=False``: JupyterLab and Notebook 7 insert a
new, unexecuted code cell right below the cell that ran (only when its execution ends without an error, and
only the first such payload), and terminal IPython puts the text at the next prompt. So several proposals
in one execution are merged into that one payload rather than the last one silently winning.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

__all__ = ["PYTHON_INFOS", "python_blocks", "answer_code", "propose_cell"]

PYTHON_INFOS = frozenset({"", "python", "py", "python3", "ipython", "ipython3"})


@lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark")


def python_blocks(markdown: str) -> list[str]:
    """The contents of the Python (or unlabelled) fenced code blocks of ``markdown``, in order."""
    blocks = []
    for token in _parser().parse(markdown or ""):
        if token.type != "fence":
            continue
        info = (token.info or "").strip().split(maxsplit=1)
        language = info[0].lower().strip("{}") if info else ""
        if language in PYTHON_INFOS and token.content.strip():
            blocks.append(token.content.rstrip("\n"))
    return blocks


def answer_code(markdown: str) -> str | None:
    """The answer's Python code as one cell's text, or None when it has no Python code block."""
    blocks = python_blocks(markdown)
    return "\n\n".join(blocks) if blocks else None


def propose_cell(shell: Any, code: str) -> str:
    """Propose ``code`` as a new cell below the running one (not executed). Returns the proposed text,
    which includes any code proposed earlier in the same execution."""
    text = code.rstrip("\n")
    earlier = _pending_proposal(shell)
    if earlier and earlier != text:
        text = f"{earlier}\n\n{text}"
    shell.set_next_input(text, replace=False)
    return text


def _pending_proposal(shell: Any) -> str | None:
    """Text already proposed (replace=False) during this execution, if any."""
    manager = getattr(shell, "payload_manager", None)
    if manager is not None and callable(getattr(manager, "read_payload", None)):
        for payload in manager.read_payload():
            if payload.get("source") == "set_next_input" and not payload.get("replace"):
                return str(payload.get("text") or "") or None
    pending = getattr(shell, "rl_next_input", None)  # terminal IPython: the next prompt's text
    return pending if isinstance(pending, str) and pending else None
