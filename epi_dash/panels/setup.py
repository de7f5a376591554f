"""Setup panel: a ``param.Parameterized`` object as a form, with validation messages that name the field.

    form = SetupPanel(MySettings(), validate=lambda s: {"n": "must be > 0"} if s.n <= 0 else {})
    form.errors()            # {"n": "must be > 0"}: field -> message, empty when valid
    form.valid               # False; re-checked on every edit of the object
    form.settings()          # {"n": 10, ...}: the object's values as plain JSON (a job's settings)

``validate(obj) -> dict[field, message]`` may also raise ``core.errors.InputError(field, message)``.
Without ``validate``, the object's own ``errors()`` (if it has one) is used. Numbers get plain inputs
(sliders mislabel small values: "Lr: 0").
"""

from __future__ import annotations

from typing import Any, Callable

import panel as pn
import param

from core.errors import InputError

ERROR_STYLE = {"color": "#b00020", "font-size": "12px"}

Validator = Callable[[param.Parameterized], dict[str, str]]


def input_widgets(obj: param.Parameterized, names: list[str] | None = None) -> dict[str, Any]:
    """``pn.Param`` widget overrides: plain inputs for numeric params (no sliders)."""
    widgets: dict[str, Any] = {}
    for name, p in obj.param.objects("existing").items():
        if names is not None and name not in names:
            continue
        if isinstance(p, param.Integer):
            widgets[name] = pn.widgets.IntInput
        elif isinstance(p, param.Number):
            widgets[name] = {"type": pn.widgets.FloatInput, "format": "0.[00000]"}
    return widgets


def param_form(obj: param.Parameterized, names: list[str] | None = None) -> pn.Param:
    """The widgets of ``obj``'s parameters ``names`` (default: all but ``name``), two-way linked."""
    names = [n for n in (names or list(obj.param)) if n in obj.param and n != "name"]
    return pn.Param(obj, parameters=names, widgets=input_widgets(obj, names), show_name=False,
                    sizing_mode="stretch_width")


def check(validate: Callable[[], dict[str, str]]) -> dict[str, str]:
    """``validate()``'s problems, with an ``InputError`` it raises turned into ``{field: message}``."""
    try:
        return dict(validate() or {})
    except InputError as exc:
        return {exc.field: exc.message}


class ValidationMessages:
    """Messages for fields: ``inline(fields)`` is a pane beside the widgets of those fields, ``summary``
    lists every problem ("Fix before starting"), ``update(errors)`` shows a new ``{field: message}``."""

    def __init__(self, title: str = "Fix before starting:"):
        self.title = title
        self.summary = pn.pane.Alert("", alert_type="danger", visible=False)
        self._inline: list[tuple[list[str], pn.pane.Markdown]] = []
        self.errors: dict[str, str] = {}

    def inline(self, fields: list[str]) -> pn.pane.Markdown:
        """A (new) pane showing the messages of ``fields``; place it next to their widgets."""
        pane = pn.pane.Markdown("", styles=ERROR_STYLE, margin=(0, 10))
        self._inline.append((list(fields), pane))
        self._show(pane, fields)
        return pane

    def forget(self, panes: list[pn.pane.Markdown]) -> None:
        """Stop updating ``panes`` (their widgets were rebuilt)."""
        gone = {id(p) for p in panes}
        self._inline = [(f, p) for f, p in self._inline if id(p) not in gone]

    def update(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        for fields, pane in self._inline:
            self._show(pane, fields)
        self.summary.object = f"**{self.title}**\n" + "\n".join(f"- `{k}`: {v}" for k, v in self.errors.items())
        self.summary.visible = bool(self.errors)

    def _show(self, pane: pn.pane.Markdown, fields: list[str]) -> None:
        msgs = [self.errors[f] for f in fields if f in self.errors]
        pane.object = "⚠ " + "; ".join(msgs) if msgs else ""


class SetupPanel(pn.viewable.Viewer):
    """A form for ``obj`` with a message beside each invalid field and a summary above the Start button."""

    valid = param.Boolean(default=True, doc="whether the last validation found no problem")

    def __init__(self, obj: param.Parameterized, validate: Validator | None = None,
                 parameters: list[str] | None = None, **params):
        super().__init__(**params)
        self.obj = obj
        self._validate = validate or (lambda o: o.errors() if hasattr(o, "errors") else {})
        self.parameters = [n for n in (parameters or list(obj.param)) if n != "name"]
        self.messages = ValidationMessages()
        self.form = param_form(obj, self.parameters)
        self._rows = [pn.Column(self.form._widgets[n], self.messages.inline([n]), sizing_mode="stretch_width",
                                margin=0) for n in self.parameters if n in self.form._widgets]
        obj.param.watch(lambda *_events: self.refresh(), self.parameters)
        self.refresh()

    def errors(self) -> dict[str, str]:
        """``{field: message}`` for every problem; empty when the settings are usable."""
        return check(lambda: self._validate(self.obj))

    def refresh(self) -> None:
        """Re-validate and show the messages (runs on every edit)."""
        errs = self.errors()
        self.messages.update(errs)
        self.valid = not errs

    def settings(self) -> dict[str, Any]:
        """The object's values as plain JSON (what a job stores in run.json)."""
        return {n: getattr(self.obj, n) for n in self.parameters}

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(*self._rows, self.messages.summary, sizing_mode="stretch_width")
