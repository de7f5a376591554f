"""Guided tutorial: the workbench with explanations next to every view and two lessons,
the 2D linear system (fast, every concept visible) and then the stomatogastric ganglion (STG)."""

from __future__ import annotations

from pathlib import Path

import panel as pn

from .panels import app_template
from .workbench import Workbench, attached_at_once, ensure_extensions

#: fewer, cheaper iterations than the paper's settings (batch 200, not 500). The penalty c has to grow over
#: several epochs before the variance constraints pass (LDS seeds 1-2: epochs 7-8), and with epochs of
#: only 300 iterations c outgrew the flow: q collapsed (entropy 4.8 -> -7 nats) just before it converged
QUICK_SETTINGS = dict(iters_per_epoch=1000, num_epochs=15, num_test_batches=50, batch_size=200)
QUICK_FLOW = dict(init_iters=100)

#: the finished example (``epi-dash examples``) each lesson's model offers, to look at before (or instead of) training
LESSON_EXAMPLES = {"lds": "lds", "stg": "stg-hub"}

LESSONS = [
    ("1 · A 2D linear system", "lds", """
**Goal:** find all 2×2 dynamics matrices A whose eigenvalue λ₁ oscillates at 1 Hz
(imag λ₁ = 2π rad/s) without growing or decaying (real λ₁ = 0).

1. Keep the default property, press **Quick settings**, then **Start**. (No time to wait? **Open finished
   example** shows a converged run at once.)
2. Watch the *Training* tab: entropy, statistics converging onto their targets, the constraints R → 0.
3. When it stops, open *Samples & modes*: the star is the mode; pick a **degenerate** direction and drag
   the slider. The oscillation stays at 1 Hz. Then pick a **sensitive** direction: it breaks at once.
4. Try next: halve the sd of imag λ₁ and train again; compare the two runs in the *Runs* tab.
"""),
    ("2 · The STG circuit", "stg", """
**Goal:** conductance parameters of the stomatogastric ganglion model for which the hub neuron bursts at
an intermediate frequency (paper Fig 1).

1. Press **Load this model**, then **Quick settings** and **Start** (the simulator is slower: be patient),
   or **Open finished example** to look at a converged run first.
2. In *Samples & modes* the arrows at the mode show which conductance combinations keep the hub
   frequency and which change it: compare the traces along the two kinds of direction.
"""),
]


class Tutorial:
    """Lesson selector plus an explaining workbench."""

    def __init__(self, runs_dir: str | Path | None = None, model_path: list[str | Path] | None = None):
        self.workbench = Workbench(runs_dir=runs_dir, model_path=model_path, model="lds", explain=True,
                                   title="EPI tutorial")
        available = set(self.workbench.catalog.specs.values())
        self.lesson = pn.widgets.RadioButtonGroup(options=[title for title, *_ in LESSONS], value=LESSONS[0][0],
                                                  color="primary", variant="outline")
        self.text = pn.pane.Markdown(LESSONS[0][2], styles={"font-size": "13px"})
        self.load_button = pn.widgets.Button(label="Load this model", width=150)
        self.quick_button = pn.widgets.Button(label="Quick settings", width=150,
                                              color="light")
        self.example_button = pn.widgets.Button(label="Open finished example", width=180, color="success")
        self.missing = pn.pane.Markdown("", styles={"color": "#b00020"})
        self._available = available
        self.lesson.param.watch(self._on_lesson, "value")
        self.load_button.on_click(self._load_model)
        self.quick_button.on_click(lambda _e: self.quick_settings())
        self.example_button.on_click(lambda _e: self.open_example())

    def _current(self) -> tuple[str, str, str]:
        return next(lesson for lesson in LESSONS if lesson[0] == self.lesson.value)

    def _on_lesson(self, _event=None) -> None:
        _title, model, text = self._current()
        self.text.object = text
        self.missing.object = "" if model in self._available else f"Model `{model}` is not installed here."

    def _load_model(self, _event=None) -> None:
        _title, model, _text = self._current()
        if model not in self._available:
            self.missing.object = f"Model `{model}` is not installed here."
            return
        self.workbench.model_select.value = model

    def open_example(self) -> None:
        """Open this lesson's finished example: a converged result at once, no waiting for training
        (one that is not shipped is built in the background, and the page says so)."""
        _title, model, _text = self._current()
        name = LESSON_EXAMPLES.get(model)
        if name is not None:
            self.workbench.examples.open(name)
            self.missing.object = self.workbench.examples.message.object

    def quick_settings(self) -> None:
        """Short epochs for a workshop (the paper's settings stay one click away: reload the model)."""
        self.workbench.setup.opt.param.update(**QUICK_SETTINGS)
        self.workbench.setup.flow.param.update(**QUICK_FLOW)

    def template(self) -> pn.template.FastListTemplate:
        lessons = pn.Card(self.lesson, self.text, pn.Row(self.load_button, self.quick_button),
                          self.example_button, self.missing,
                          title="Lessons", sizing_mode="stretch_width")
        wb = self.workbench
        return attached_at_once(app_template(
            title="EPI tutorial", sidebar=[lessons, *wb.sidebar()], main=[wb.tabs], sidebar_width=400,
            accent_base_color="#2ca02c", header_background="#1e5631", theme_toggle=False))


def create_tutorial(runs_dir: str | Path | None = None, model_path: list[str | Path] | None = None
                    ) -> pn.template.FastListTemplate:
    ensure_extensions()
    return Tutorial(runs_dir=runs_dir, model_path=model_path).template()
