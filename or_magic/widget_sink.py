"""The panel's sink: the shared streaming view (:class:`~or_magic.display.StreamView`) over ipywidgets.

Each slot is an ``HTMLMath`` widget whose value is re-sent while it is open and never touched once its
blocks froze. Widgets sit in pages of :data:`PAGE` so no children list grows with the answer, and they
share one Layout and one style (a widget's comm_open would otherwise bring two more models each).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import ipywidgets as W
from ipywidgets.widgets.widget_string import HTMLMathStyle

from . import render
from .display import StreamView

PAGE = 8  # frozen-block widgets per page box: keeps each children-list update short while streaming


def image_widget(data_url: str) -> W.Widget | None:
    """An Image widget for a data URL the API returned; the renderer refuses remote URLs and SVG."""
    bundle = render.image_bundle(data_url)
    for mime, data in (bundle or {}).items():
        if mime.startswith("image/") and isinstance(data, str):
            return W.Image(value=base64.b64decode(data), format=mime.split("/", 1)[1],
                           layout=W.Layout(max_width="100%", height="auto"))
    return None


def answer_widget(answer_html: str, images: Sequence[str] = ()) -> W.Widget:
    """The final answer (typeset like the magic's text/html output) with its images below."""
    main = W.HTMLMath(answer_html)
    pictures = [w for w in (image_widget(url) for url in images) if w is not None]
    return W.VBox([main, *pictures]) if pictures else main


class WidgetSink(StreamView):
    """Streams one answer into ``box`` (a VBox): reasoning on top, text pages, images below."""

    def __init__(self, box: W.Box, *, show_reasoning: bool = True) -> None:
        super().__init__(show_reasoning=show_reasoning)
        self.box = box
        self._layout = W.Layout(margin="0", overflow="visible")
        self._style = HTMLMathStyle()
        self._head: W.HTMLMath | None = None
        self._pages: list[W.VBox] = []
        self._images: W.VBox | None = None
        self.final_widget: W.Widget | None = None

    def _new_html(self, value: str) -> W.HTMLMath:
        return W.HTMLMath(value, layout=self._layout, style=self._style)

    def _show(self) -> None:
        head = (self._head,) if self._head is not None else ()
        tail = (self._images,) if self._images is not None else ()
        self.box.children = (*head, *self._pages, *tail)

    def _add(self, html: str, *, live: bool = True) -> W.HTMLMath:
        widget = self._new_html(html)
        if not self._pages or len(self._pages[-1].children) >= PAGE:
            self._pages.append(W.VBox([widget], layout=self._layout))
            self._show()
        else:
            page = self._pages[-1]
            page.children = (*page.children, widget)
        return widget

    def _set(self, slot: W.HTMLMath, html: str) -> None:
        slot.value = html

    def _add_reasoning(self, html: str) -> W.HTMLMath:
        self._head = self._new_html(html)
        self._show()
        return self._head

    def _add_image(self, data_url: str) -> bool:
        image = image_widget(data_url)
        if image is None:
            return False
        if self._images is None:
            self._images = W.VBox([image], layout=self._layout)
            self._show()
        else:
            self._images.children = (*self._images.children, image)
        return True

    def final(self, view: render.TurnView, images: list[str], metadata: dict[str, Any] | None = None) -> None:
        """One widget with the magic's final HTML (answer, reasoning, footer or error card) + images.

        ``metadata`` (the turn, for ``%chat restore`` from saved cell outputs) has no place in widget state.
        """
        if not self.show_reasoning:
            view.reasoning = ""
        with self._lock:
            self.final_widget = answer_widget(render.final_bundle(view)["text/html"], images)
            self.box.children = (self.final_widget,)
            self._pages, self._head, self._images = [], None, None
            self._finished()
