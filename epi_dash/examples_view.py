""""Open example": a Select of the finished example runs (``core.examples``) and an Open button. A shipped
example is copied into the session's runs directory and opened like any saved run (curves, samples,
modes at once); one that is not shipped is built there in the background by the workbench's training."""

from __future__ import annotations

from typing import Callable

import panel as pn

from core.examples import list_examples


def example_options() -> dict[str, str]:
    """Select options: "name (model, shipped | built on first use)" -> name."""
    return {f"{ex.name} ({ex.meta.get('model')}, {'ready' if ex.shipped else 'built on first use'})": ex.name
            for ex in list_examples()}


class ExamplePicker(pn.viewable.Viewer):
    """Select + Open; ``on_open(name)`` opens or builds the example and returns a line to show."""

    def __init__(self, on_open: Callable[[str], str], **params):
        super().__init__(**params)
        self.on_open = on_open
        options = example_options()
        self.select = pn.widgets.Select(label="Open example", options=options,
                                        value=next(iter(options.values()), None), sizing_mode="stretch_width")
        self.open_button = pn.widgets.Button(label="Open example", color="primary", width=130,
                                             disabled=not options)
        self.description = pn.pane.Markdown("", styles={"font-size": "12px"}, sizing_mode="stretch_width")
        self.message = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.select.param.watch(lambda _e: self._describe(), "value")
        self.open_button.on_click(lambda _e: self.open(self.select.value))
        self._describe()

    def _describe(self) -> None:
        ex = next((e for e in list_examples() if e.name == self.select.value), None)
        if ex is None:
            self.description.object = "No examples installed."
            return
        size = f"{ex.meta.get('size_kb', 0):.0f} KB, opens at once" if ex.shipped else \
            "not shipped: opening trains it here in the background"
        self.description.object = f"{ex.meta.get('description', '')} ({size})"

    def open(self, name: str | None) -> None:
        """Open example ``name`` (the Select's value by default)."""
        if name:
            self.message.object = self.on_open(name)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self.select, self.description, self.open_button, self.message, sizing_mode="stretch_width")
