"""The workbench's pre-flight check: before Start, simulate draws from the box and from the initial q and
say per statistic whether EPI can train on it (``core.preflight``), with advice; in a background thread so
the page stays live."""

from __future__ import annotations

import threading
from typing import Callable

import panel as pn

from core.errors import InputError
from core.preflight import PreflightReport, preflight

from .state import SetupState

NUM_SAMPLES = 500


class PreflightPanel(pn.viewable.Viewer):
    """A "Pre-flight check" button and its report (collapsed into a card once shown)."""

    def __init__(self, setup: SetupState, num_samples: int = NUM_SAMPLES):
        super().__init__()
        self.setup = setup
        self.num_samples = num_samples
        self.button = pn.widgets.Button(label="Pre-flight check", icon="checklist", width=160,
                                        description="Simulate draws from the box and the initial q: is every "
                                        "statistic finite, smooth, with a gradient, and its target within reach?")
        self.report_pane = pn.pane.Markdown("", sizing_mode="stretch_width", styles={"font-size": "12px"})
        self.card = pn.Card(self.report_pane, title="Pre-flight check", collapsed=False, visible=False,
                            sizing_mode="stretch_width")
        self.report: PreflightReport | None = None
        self._thread: threading.Thread | None = None
        self._doc = pn.state.curdoc
        self.button.on_click(lambda _e: self.run())

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self, wait: bool = False) -> None:
        """Check the current set-up (``wait``: in this thread, for tests and scripts)."""
        if self.running:
            return
        try:
            model, prop, flow, _opt = self.setup.build()
        except InputError as exc:
            self._show(f"⚠ Fix the set-up first: **{exc.field}**: {exc.message}")
            return
        self.button.disabled = True
        self._show(f"⏳ Simulating {self.num_samples} draws from the box and {self.num_samples} from the initial q…")

        def work() -> None:
            try:
                self.report = preflight(model, prop, num_samples=self.num_samples, flow=flow, device="cpu")
                text = self.report.to_markdown()
            except Exception as exc:  # a model whose simulate raises: said, never a traceback
                self.report, text = None, f"⚠ The check could not simulate the model: {type(exc).__name__}: {exc}"
            self._in_session(lambda: (self._show(text), setattr(self.button, "disabled", False)))

        if wait:
            work()
        else:
            self._thread = threading.Thread(target=work, name="epi-preflight", daemon=True)
            self._thread.start()

    def _in_session(self, fn: Callable[[], object]) -> None:
        doc = self._doc
        if doc is not None and doc.session_context is not None:
            doc.add_next_tick_callback(fn)
        else:
            fn()

    def _show(self, text: str) -> None:
        self.report_pane.object = text
        self.card.visible = True

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self.button, self.card, sizing_mode="stretch_width")
