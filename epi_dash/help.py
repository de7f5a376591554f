"""Short explanations shown next to each view (always as tooltips, as cards in the tutorial)."""

HELP = {
    "setup": """**Set up.** Choose a circuit model, then the *emergent property*: the mean and standard
deviation each statistic should have across the inferred parameter distribution q(z). EPI finds the
maximum-entropy q(z) whose simulated activity has exactly this property.""",
    "entropy": """**Entropy H(q).** EPI maximizes the entropy of q(z) (how spread out the parameters are)
while forcing the constraints. Dashed lines are augmented-Lagrangian epoch ends: there the penalty c may
grow and the multipliers eta are updated. Entropy usually drops while the constraints are being met, then
stabilizes.""",
    "statistics": """**Statistics vs target.** Blue: batch mean of each statistic with a ±1 sd band. Orange:
the target mean (dashed) and target ±1 sd (band). When EPI has converged the blue line sits on the dashed
line and the blue band matches the orange band.""",
    "constraints": """**Constraints R.** R = E_q[T] - mu for each mean and variance constraint; zero means
satisfied. The penalty c (log scale) rises when R does not shrink fast enough; the multipliers eta
accumulate c·R at each epoch end. The convergence test at each epoch end asks whether all R are
statistically zero.""",
    "pairplot": """**Samples of q(z).** Each dot is a parameter set drawn from q, colored by log q (yellow =
more probable). The star is the mode. Arrows are Hessian eigenvectors of log q at the mode, drawn with
length 1/sqrt(|eigenvalue|): short red arrows are *sensitive* directions (the property breaks quickly),
long blue arrows are *degenerate* ones (the property is preserved). Click a dot to simulate it.""",
    "explorer": """**Degeneracy explorer.** Pick a Hessian direction and drag the slider to move z away from
the mode along it. Along a degenerate direction the activity traces barely change; along a sensitive one
they change quickly (paper Fig 1E-F). Every probe simulates with the same noise draw, so the traces differ
by z alone. The table lists the statistics at the probe against the targets.""",
    "predictive": """**Posterior predictive.** Statistics of fresh simulations from parameters drawn from q
(blue histograms) against the target Gaussian N(mean, sd²) (orange). A good fit means q produces the
emergent property.""",
    "runs": """**Runs.** Every training is saved under the runs directory. Tick a run and *Open* it to get all
views back, tick two and *Compare*, or download samples, the whole run, or its figures.""",
    "next": """**What to try next.** Narrow a standard deviation and watch the entropy fall; move a target
mean and see q shift; compare the mode's traces with a point along a degenerate direction.""",
}


def explained(key: str, view, explain: bool, above: bool = False):
    """``view`` with its help note ``HELP[key]`` beside it (``above`` it for a view that needs the whole
    width) when ``explain`` (the tutorial); else ``view`` itself."""
    if not explain:
        return view
    import panel as pn

    note = pn.pane.Markdown(HELP[key], width=None if above else 260, sizing_mode="stretch_width" if above else None,
                            styles={"background": "#f3f7fb", "border-left": "4px solid #1f77b4",
                                    "padding": "4px 10px", "font-size": "13px"})
    return pn.Column(note, view, sizing_mode="stretch_width") if above else pn.Row(view, note, sizing_mode="stretch_width")
