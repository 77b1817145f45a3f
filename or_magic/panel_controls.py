"""The panel's sampling controls and model picker, kept in step with the ``ChatMagics`` defaults.

Moving a control sets the matching default, so later ``%%chat`` cells use it (a cell's own options still
win); ``%config ChatMagics.…`` changes (or another panel) move the controls back. ``_syncing`` keeps the
two directions from echoing each other.
"""

from __future__ import annotations

import contextlib
import html
from typing import TYPE_CHECKING, Any

import ipywidgets as W

from . import defaults as D
from .panel_models import BAD_ID, model_note
from .panelcode import slider_entry

if TYPE_CHECKING:  # pragma: no cover
    from .magics import ChatMagics
    from .session import Session
    from .types import ModelInfo

TEMPERATURE_DEFAULT, TOP_P_DEFAULT = 1.0, 1.0  # what the API uses when the field is absent
SYNCED = ["model", "temperature", "top_p", "max_tokens"]  # the ChatMagics traits the controls follow


class ControlsMixin:
    """The controls part of :class:`~or_magic.panel.ChatPanel`: model, temperature, top_p, max_tokens."""

    magics: ChatMagics
    session: Session
    models: list[ModelInfo]
    _syncing: bool

    def _make_controls(self, m: ChatMagics, label: dict[str, str]) -> None:
        """The model picker, its note and the three sliders, set from the magics' defaults."""
        self.model = W.Combobox(value=m.model, options=[], ensure_option=False, continuous_update=False,
                                description="Model", placeholder="model id, e.g. openai/gpt-4o-mini", style=label,
                                layout=W.Layout(flex="1 1 auto", width="auto"))
        self.model_info = W.HTML(layout=W.Layout(margin="0 0 4px 98px"))
        self.temperature = W.FloatSlider(value=_or(m.temperature, TEMPERATURE_DEFAULT), min=0.0, max=2.0,
                                         step=0.05, description="Temperature", readout_format=".2f",
                                         continuous_update=False, style=label, layout=W.Layout(width="300px"),
                                         tooltip="sampling temperature (the API's default is 1)")
        self.top_p = W.FloatSlider(value=_or(m.top_p, TOP_P_DEFAULT), min=0.0, max=1.0, step=0.01,
                                   description="Top p", readout_format=".2f", continuous_update=False,
                                   style={"description_width": "50px"}, layout=W.Layout(width="230px"),
                                   tooltip="nucleus sampling (the API's default is 1)")
        self.max_tokens = W.IntSlider(value=m.max_tokens or 0, min=0, max=max(m.max_tokens or 0, D.MAX_TOKENS_SLIDER),
                                      description="Max tokens", continuous_update=False, readout=False, style=label,
                                      layout=W.Layout(width="300px"), tooltip="0: the model's default")
        self.max_tokens_readout = W.Label(layout=W.Layout(width="auto"))
        self.temperature_entry, self.top_p_entry = slider_entry(self.temperature), slider_entry(self.top_p)
        self.max_tokens_entry = slider_entry(self.max_tokens, width="88px")  # 0: the model's default

    def _watch_controls(self) -> None:
        self.model.observe(self._on_model, names="value")
        for control in (self.temperature, self.top_p, self.max_tokens):
            control.observe(self._on_control, names="value")
        self.magics.observe(self._on_default, names=SYNCED)
        self._note_model()
        self._show_max_tokens()

    def _unwatch_defaults(self) -> None:
        with contextlib.suppress(ValueError):
            self.magics.unobserve(self._on_default, names=SYNCED)

    async def load_models(self, refresh: bool = False) -> list[ModelInfo]:
        """Fill the model picker from ``/models``; a failure is shown in the note, never raised."""
        try:
            models = await self.session.client().models_async(refresh=refresh)
        except Exception as err:  # no key, offline, a server error: the picker still takes typed ids
            self._models_failed(err)
            return []
        self._set_models(models)
        return models

    def _note_model(self) -> None:
        level, text = model_note(self.model.value, self.models)
        icon = {"warn": "⚠ ", "error": "✖ "}.get(level, "")
        colour = {"error": "var(--jp-error-color1, #d32f2f)", "warn": "var(--jp-warn-color1, #f57c00)"}.get(
            level, "var(--jp-ui-font-color2, #666)")
        self.model_info.value = (f'<small class="or-magic-model-{level}" style="color:{colour}">'
                                 f"{icon}{html.escape(text)}</small>")

    def _set_models(self, models: list[ModelInfo]) -> None:
        self.models = list(models)
        self.model.options = tuple(sorted(m.id for m in self.models if m.id))
        self._note_model()
        self._fit_max_tokens()

    def _fit_max_tokens(self) -> None:
        """The slider reaches the chosen model's cap when ``/models`` knows it (a default top otherwise)."""
        mid = self.model.value.strip()
        info = next((m for m in self.models if m.id in (mid, mid.rpartition(":")[0])), None)
        cap = info.max_completion_tokens if info is not None else None
        top = cap or D.MAX_TOKENS_SLIDER
        if self.max_tokens.value > top:  # the model cannot answer that much: back to its default
            self.max_tokens.value = 0
        self.max_tokens.max = top

    def _show_max_tokens(self) -> None:
        value = self.max_tokens.value
        self.max_tokens_readout.value = f"{value:,}" if value else "model default"

    def _models_failed(self, err: BaseException) -> None:
        self.models = []
        self.model_info.value = (f'<small style="color:var(--jp-warn-color1,#f57c00)">model list unavailable '
                                 f"({html.escape(type(err).__name__)}: {html.escape(str(err)[:200])}); "
                                 "ids are sent as typed</small>")

    def _load_models_sync(self) -> None:
        try:
            self._set_models(self.session.client().models())
        except Exception as err:
            self._models_failed(err)

    # -- keeping in step with the magics and the store -------------------------------------------
    def _on_control(self, change: dict[str, Any]) -> None:
        """A control moved: it becomes the notebook's default for later %%chat cells."""
        if self._syncing:
            return
        owner = change["owner"]
        self._syncing = True
        try:
            if owner is self.max_tokens:
                self._show_max_tokens()
                self.magics.max_tokens = int(change["new"]) or None
            elif owner is self.temperature:
                self.magics.temperature = round(float(change["new"]), 4)
            elif owner is self.top_p:
                self.magics.top_p = round(float(change["new"]), 4)
        finally:
            self._syncing = False

    def _on_model(self, change: dict[str, Any]) -> None:
        self._note_model()
        self._fit_max_tokens()
        value = str(change["new"]).strip()
        if self._syncing or not value or BAD_ID.search(value):
            return
        self._syncing = True
        try:
            self.magics.model = value
        finally:
            self._syncing = False

    def _on_default(self, change: dict[str, Any]) -> None:
        """``%config ChatMagics.…`` (or another panel) changed a default: move the control to match."""
        if self._syncing:
            return
        self._syncing = True
        try:
            name, new = change["name"], change["new"]
            if name == "model":
                self.model.value = new or ""
                self._note_model()
            elif name == "temperature":
                self.temperature.value = _or(new, TEMPERATURE_DEFAULT)
            elif name == "top_p":
                self.top_p.value = _or(new, TOP_P_DEFAULT)
            elif name == "max_tokens":
                self.max_tokens.max = max(self.max_tokens.max, new or 0)
                self.max_tokens.value = new or 0
                self._show_max_tokens()
        finally:
            self._syncing = False



def _or(value: float | None, default: float) -> float:
    return default if value is None else float(value)
