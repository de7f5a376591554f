"""The EPI set-up form: model, its hyperparameters, the emergent property (target mean and sd of each
statistic), device and the advanced flow/optimizer settings, with a message beside each bad field.
Built from the generic ``panels.setup`` pieces over ``state.SetupState``."""

from __future__ import annotations

import math
from functools import partial
from typing import Callable

import panel as pn

from .help import HELP
from .panels.setup import ValidationMessages, param_form
from .state import SetupState, device_choices

ADVANCED_FLOW = ["num_stages", "num_layers", "num_units", "post_affine", "batch_norm", "init", "init_iters",
                 "abc_samples", "abc_keep"]
ADVANCED_OPT = ["batch_size", "lr", "c0", "gamma", "beta", "num_epochs", "iters_per_epoch", "alpha", "nu",
                "num_test_batches", "reset_optimizer", "stop_early", "seed", "health"]


class EPISetupForm(pn.viewable.Viewer):
    """Widgets for a ``SetupState``. ``busy()``: a training runs (the model may not change then);
    ``on_refused(text)``: tell the user why; ``on_validated()``: after every re-validation."""

    def __init__(self, setup: SetupState, catalog, busy: Callable[[], bool], on_refused: Callable[[str], None],
                 on_validated: Callable[[], None], explain: bool = False, **params):
        super().__init__(**params)
        self.setup, self.catalog, self.explain = setup, catalog, explain
        self._busy, self._on_refused, self._on_validated = busy, on_refused, on_validated
        self.messages = ValidationMessages()
        self.errors_pane = self.messages.summary
        self.model_select = pn.widgets.Select(label="Model", options=catalog.specs, value=setup.model_spec)
        self.model_select.param.watch(self._on_model_select, "value")
        self.model_problems = pn.pane.Alert("\n".join(f"- {p}" for p in catalog.problems),
                                            alert_type="warning", visible=bool(catalog.problems))
        self.model_doc = pn.pane.Markdown("", styles={"font-size": "12px", "color": "#555"})
        self.hyper_area = pn.Column(sizing_mode="stretch_width")
        self.property_area = pn.Column(sizing_mode="stretch_width")
        self.device_select = pn.widgets.Select(label="Device", options=device_choices(), value=setup.device)
        self.device_select.link(setup, value="device")
        self.device_error = self.messages.inline(["device"])
        self.advanced = pn.Card(title="Advanced: flow and optimizer (paper defaults per model)",
                                collapsed=True, sizing_mode="stretch_width")
        # its ~25 widgets are built when it is first opened (a third of an arriving session's page otherwise)
        self.advanced.param.watch(lambda _e: None if self.advanced.objects else self.render_advanced(), "collapsed")
        #: "mean[stat]" / "std[stat]" -> the message pane beside that statistic's inputs
        self._target_errors: dict[str, pn.pane.Markdown] = {}
        #: ("mean" | "std", statistic) -> its input widget
        self.target_inputs: dict[tuple[str, str], pn.widgets.FloatInput] = {}
        setup.param.watch(lambda _e: self.validate(), "revision")
        setup.param.watch(lambda _e: self.render_model(), "model")
        self.render_model()

    def _on_model_select(self, event) -> None:
        if self._busy():
            self._on_refused("Stop the running training before switching models.")
            return
        self.setup.model_spec = event.new

    def render_model(self) -> None:
        """(Re)build the hyperparameter, property and advanced widgets for the current model."""
        model = self.setup.model
        if model is None:
            self.model_doc.object = ""
            self.hyper_area.objects, self.property_area.objects = [], []
            return
        self.model_doc.object = (type(model).__doc__ or "").strip().split("\n")[0]
        hyper = [k for k in model.param if k != "name"]
        self.hyper_area.objects = [pn.pane.Markdown("**Fixed hyperparameters**", margin=(5, 10, 0, 10)),
                                   param_form(model, hyper)] if hyper else []
        rows = [pn.pane.Markdown("**Emergent property** (target mean and sd of each statistic)", margin=(5, 10, 0, 10))]
        self.messages.forget(list(self._target_errors.values()))
        self._target_errors, self.target_inputs = {}, {}
        for spec in model.statistic_specs():
            unit = f" ({spec.unit})" if spec.unit else ""
            inputs = []
            for kind, label in (("mean", "mean"), ("std", "sd")):
                box = pn.widgets.FloatInput(label=f"{label}{unit}", value=getattr(self.setup, f"{kind}s")[spec.name],
                                            format="0.[0000]", width=150)
                box.param.watch(partial(self._on_target, kind, spec.name), "value")
                self.target_inputs[(kind, spec.name)] = box
                inputs.append(box)
            fields = [f"mean[{spec.name}]", f"std[{spec.name}]"]
            err = self.messages.inline(fields)
            self._target_errors.update(dict.fromkeys(fields, err))
            title = pn.pane.Markdown(f"`{spec.name}`" + (f": {spec.doc}" if spec.doc else ""),
                                     margin=(0, 10), styles={"font-size": "12px"})
            rows += [title, pn.Row(*inputs), err]
        self.property_area.objects = rows
        self.render_advanced()

    def render_advanced(self) -> None:
        """The flow and optimizer widgets in the Advanced card, once it has been opened (built later, they
        show the set-up's current values: the settings live in ``setup.flow`` and ``setup.opt``)."""
        if self.advanced.collapsed and not self.advanced.objects:
            return
        self.advanced.objects = [
            pn.pane.Markdown("**Normalizing flow**"), param_form(self.setup.flow, ADVANCED_FLOW),
            pn.pane.Markdown("**Augmented Lagrangian optimizer**"), param_form(self.setup.opt, ADVANCED_OPT)]

    def _on_target(self, kind: str, stat: str, event) -> None:
        value = event.new
        self.setup.set_target(kind, stat, None if isinstance(value, float) and math.isnan(value) else value)

    def validate(self) -> None:
        """Show the set-up's problems beside their fields and in the summary."""
        self.messages.update(self.setup.errors())
        self._on_validated()

    def widgets(self) -> list[pn.viewable.Viewable]:
        """The sidebar's set-up part (with the tutorial's help first)."""
        setup = [self.model_select, self.model_problems, self.model_doc, self.hyper_area, self.property_area,
                 self.device_select, self.device_error, self.advanced]
        if self.explain:
            setup.insert(0, pn.pane.Markdown(HELP["setup"], styles={"font-size": "13px"}))
        return [*setup, self.errors_pane]

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(*self.widgets(), sizing_mode="stretch_width")
