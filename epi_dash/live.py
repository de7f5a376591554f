"""Per-run HoloViews streams fed from runner events or a saved run (no panel import).

``LiveRun.apply(events)`` must run where the document may be changed (Panel: inside the session
document's next-tick callback). It sends all iteration rows of the batch in *one* ``Buffer.send``
(so HoloViews streams only the new rows to the browser), and only the newest snapshot/analysis.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd

from core.model import Model
from core.runs import Run

from .runner import RunnerEvent
from .views import RunInfo, empty_progress, empty_snapshot, progress_frame, progress_from_trace

#: rows kept in the browser per training curve; older ones roll over
BUFFER_LENGTH = 20_000
#: points per training curve over a whole run: longer runs plot every k-th iteration, since
#: HoloViews recomputes ranges over the whole buffer on every refresh (server time grows with it)
CURVE_POINTS = 2_000


def run_info(model: Model, means: list[float], stds: list[float]) -> RunInfo:
    lower, upper = (b.cpu().numpy() for b in model.bounds())
    return RunInfo(
        parameter_names=model.parameter_names,
        statistic_names=model.statistic_names,
        means=[float(v) for v in means], stds=[float(v) for v in stds], lower=lower, upper=upper,
        parameter_units=[p.unit for p in model.free_parameters()],
        statistic_units=[s.unit for s in model.statistic_specs()],
        time_unit=model.time_unit,
    )


@dataclass
class Progress:
    """What the progress indicator shows."""

    status: str = "idle"  # idle | starting | running | stopping | analyzing | stopped | converged | finished | failed
    iteration: int = 0
    epoch: int = 0
    iterations_total: int = 0
    num_epochs: int = 0
    wall_time: float = 0.0
    entropy: float = float("nan")
    epochs: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    run_dir: str | None = None
    started_at: float = field(default_factory=time.time)


class LiveRun:
    """The streams behind every view of one run."""

    def __init__(self, info: RunInfo):
        self.info = info
        m, d = len(info.statistic_names), len(info.parameter_names)
        self.progress = hv.streams.Buffer(empty_progress(m), length=BUFFER_LENGTH, index=False)
        self.epochs = hv.streams.Pipe(pd.DataFrame({"iteration": np.zeros(0)}))
        self.snapshots = hv.streams.Pipe(empty_snapshot(d))
        self.predictive = hv.streams.Pipe({"predictive": None})
        self.traces = hv.streams.Pipe({"mode": None, "probe": None})
        self.state = Progress()
        self.analysis: dict[str, Any] | None = None
        self.stride = 1
        self.snapshot: dict[str, Any] = empty_snapshot(d)

    # --- live events ----------------------------------------------------------------------------
    def catch_up(self, last: dict[str, Any] | None) -> bool:
        """Between plot refreshes: the iteration counter and clock from the newest iteration record
        ``last`` (cheap); True when they moved."""
        s = self.state
        if s.status not in ("running", "starting", "stopping") or last is None or last["iteration"] <= s.iteration:
            return False
        s.iteration, s.wall_time = last["iteration"], last["wall_time"]
        return True

    def apply(self, events: list[RunnerEvent]) -> list[tuple[str, str]]:
        """Update streams from a batch of runner events; returns notifications (level, text)."""
        notes: list[tuple[str, str]] = []
        rows: list[dict[str, Any]] = []
        snapshot = analysis = None
        new_epochs = False
        for e in events:  # state in event order; streams once per batch below
            if e.kind == "iteration":
                if e.data["iteration"] % self.stride == 0:
                    rows.append(e.data)
                s = self.state
                s.iteration, s.epoch = int(e.data["iteration"]), int(e.data["epoch"])
                s.wall_time, s.entropy = float(e.data["wall_time"]), float(e.data["entropy"])
                if s.status == "starting":
                    s.status = "running"
            elif e.kind == "epoch":
                self.state.epochs.append(e.data)
                new_epochs = True
            elif e.kind == "snapshot":
                snapshot = e.data
            elif e.kind == "analysis":
                analysis = e.data
            notes.extend(self._status_event(e))
        if rows:
            self.progress.send(progress_frame(rows, len(self.info.statistic_names)))
        if new_epochs:
            self.epochs.send(pd.DataFrame({"iteration": [float(r["iteration"]) for r in self.state.epochs]}))
        if analysis is not None:
            self.analysis = analysis
            self.predictive.send({"predictive": analysis["predictive"]})
        if snapshot is not None or analysis is not None:
            latest = snapshot or self.snapshot
            self.snapshot = {"z": latest["z"], "log_q": latest["log_q"], "analysis": self.analysis}
            self.snapshots.send(self.snapshot)
        return notes

    def _status_event(self, event: RunnerEvent) -> list[tuple[str, str]]:
        s, data = self.state, event.data
        notes = self._health_notes(event)
        return notes + self._state_change(event, s, data)

    def _health_notes(self, event: RunnerEvent) -> list[tuple[str, str]]:
        """The health watch's findings (core.health) on an iteration or epoch: a notice with the first
        piece of advice, and the status line's message until the next finding."""
        notes = []
        findings = event.data.get("health") or [] if event.kind in ("iteration", "epoch") else []
        for h in findings:
            h = h if isinstance(h, dict) else h.to_dict()
            advice = f" Try: {h['advice'][0]}" if h.get("advice") else ""
            self.state.message = f"Health: {h['message']}{advice}"
            notes.append(("error" if h.get("stop", True) else "warning", f"Health: {h['message']}{advice}"))
        return notes

    def _state_change(self, event: RunnerEvent, s, data) -> list[tuple[str, str]]:
        if event.kind == "started":
            s.status, s.run_dir = "running", data["run_dir"]
            s.iterations_total, s.num_epochs = data["iterations_total"], data["num_epochs"]
            self.stride = max(1, s.iterations_total // CURVE_POINTS)
            s.iteration = data["iteration"]
            s.started_at = time.time()
            name = Path(data["run_dir"]).name if data["run_dir"] else "(not saved)"
            return [("info", f"Training {'resumed' if data['resumed'] else 'started'}: run {name}")]
        if event.kind == "epoch":
            return [("info", f"Epoch {data['epoch']}: " + ("converged ✓" if data["converged"]
                                                            else f"not converged (min p = {min(data['p_values']):.3g})"))]
        if event.kind == "finished":
            s.status = data["state"]
            s.iteration, s.wall_time = data["iterations"], data["wall_time_s"]
            if data["state"] == "unhealthy":
                return [("error", "The health watch stopped this training (see the message above); its "
                                  "checkpoint from before the finding is kept. To train on anyway, start again with "
                                  "health = warn under Advanced.")]
            if data["error"]:
                s.message = data["error"]
                return [("error", f"Training failed: {data['error']}")]
            s.message = data.get("message") or ""  # why the server stopped it, who cancelled it
            if data["state"] == "cancelled":
                return [("info", f"Training {s.message}")]
            return [("success" if data["converged"] else "info",
                     f"Training {data['state']} after {data['iterations']} iterations"
                     + (f": {s.message}" if s.message else ""))]
        if event.kind == "failed":
            s.status, s.message = "failed", data["message"]
            return [("error", f"Training could not run: {data['message']}")]
        if event.kind == "message":  # from a training on another executor (its health notices, say)
            return [(data["level"] if data["level"] in ("info", "warning", "error") else "info", data["text"])]
        if event.kind == "analysis_failed":
            return [("warning", f"Mode search failed: {data['message']}")]
        if event.kind == "open_failed":
            return [("warning", f"Could not load q of this run: {data['message']}")]
        return []

    # --- saved runs ----------------------------------------------------------------------------
    def load_saved(self, run: Run) -> None:
        """Fill every stream from a run directory (trace, epochs, samples)."""
        meta = run.meta
        frame = progress_from_trace(run.trace, self.info.statistic_names, self.info.constraint_names)
        total = int(meta["optimizer"]["num_epochs"] * meta["optimizer"]["iters_per_epoch"])
        self.stride = max(1, total // CURVE_POINTS)
        self.progress.clear()
        thinned = int((meta.get("example") or {}).get("trace_every", 1)) > 1  # a shipped example's short trace
        self.progress.send((frame if thinned else frame[frame["iteration"] % self.stride == 0]).tail(BUFFER_LENGTH))
        history = meta.get("history", [])
        self.state = Progress(
            status=run.state or "finished", iteration=int(meta.get("iterations", 0)),
            epoch=int(meta.get("epochs", 0)), wall_time=float(meta.get("wall_time_s", 0.0)),
            iterations_total=int(meta["optimizer"]["num_epochs"] * meta["optimizer"]["iters_per_epoch"]),
            num_epochs=int(meta["optimizer"]["num_epochs"]), epochs=list(history),
            entropy=float(frame["entropy"].iloc[-1]) if len(frame) else float("nan"),
            message=meta.get("error") or "", run_dir=str(run.path))
        self.epochs.send(pd.DataFrame({"iteration": [float(r["iteration"]) for r in history]}))
        try:
            samples = run.samples
        except Exception:  # a stopped run may have no samples.npz yet; the analysis brings some
            return
        self.snapshot = {"z": samples["z"], "log_q": samples["log_q"], "analysis": self.analysis}
        self.snapshots.send(self.snapshot)
