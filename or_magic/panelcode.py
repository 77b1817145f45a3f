"""The panel's notebook parts: the "Fix last error" message, the copyable code box, the keyboard-usable sliders.

The panel answers in a task on the kernel's loop, outside any cell's execution, so there is no cell to add
a proposal below: the answer's Python code goes into a text box under the transcript, ready to copy.
"""

from __future__ import annotations

import contextlib
from typing import Any

import ipywidgets as W
from IPython.core.error import UsageError

FIX_THREAD = "fix"  # the thread fixes are asked in, as with %chat fix, so the conversation is not polluted


def fix_message(shell: Any, secrets: tuple[str, ...] = ()) -> str:
    """The ``%chat fix`` message for the most recent failed cell; one-line ``UsageError`` if there is none."""
    from .cells import history
    from .fix import NoFailedCell, fix_request
    from .redact import redact_text, secrets_in_use

    cells = history(shell) if shell is not None else None
    if cells is None:
        raise UsageError("Fix last error: executed cells are not being recorded here (load the extension)")
    try:
        request = fix_request(cells, shell.user_ns)
    except NoFailedCell as err:
        raise UsageError(f"{err}; nothing was sent") from None
    return redact_text(request.message, secrets_in_use(*secrets))


class CodeBox(W.VBox):
    """Where the panel proposes code: a label and a text area to copy from, hidden until there is code."""

    def __init__(self) -> None:
        self.label = W.HTML("<small>Proposed code: copy it into a cell (it was not run)</small>")
        self.text = W.Textarea(rows=6, layout=W.Layout(width="100%"))
        self.text.add_class("or-magic-code-box")
        super().__init__([self.label, self.text], layout=W.Layout(display="none", width="100%"))

    @property
    def value(self) -> str:
        return str(self.text.value)

    def show(self, answer: str) -> bool:
        """Put the answer's Python block(s) in the box; False (box hidden) when the answer has none."""
        from .codecells import answer_code

        code = answer_code(answer)
        self.text.value = code or ""
        self.layout.display = None if code else "none"
        return code is not None


def slider_entry(slider: W.FloatSlider | W.IntSlider,
                 width: str = "64px") -> W.BoundedFloatText | W.BoundedIntText:
    """A number box kept equal to ``slider`` in the browser (``jslink``), so the value can be typed.

    A focused slider does not move with the arrow keys in Notebook 7 (the notebook's shortcuts take them
    first); a text box takes typing and its own arrow keys in both front ends. The slider's readout is
    turned off since the box shows the value. The box's top follows the slider's (the max-tokens slider
    reaches the chosen model's cap).
    """
    slider.readout = False
    box = W.BoundedIntText if isinstance(slider, W.IntSlider) else W.BoundedFloatText
    entry = box(value=slider.value, min=slider.min, max=slider.max, step=slider.step,
                continuous_update=True, layout=W.Layout(width=width))
    entry.add_class("or-magic-slider-entry")
    entry.link = W.jslink((slider, "value"), (entry, "value"))  # kept so the pair can be checked and closed
    entry.top = W.dlink((slider, "max"), (entry, "max"))
    return entry


def unlink_entry(entry: W.BoundedFloatText | W.BoundedIntText) -> None:
    """Undo :func:`slider_entry`'s links (before the widgets close); a second call does nothing."""
    entry.link.close()
    with contextlib.suppress(ValueError):  # already unlinked: the panel was closed before
        entry.top.unlink()
