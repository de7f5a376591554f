"""The run format (core.runs) and the job mechanism (core.jobs) stand without the trainer: q of a saved
EPI run is loaded on the EPI side (core.epi.load_distribution)."""

from __future__ import annotations

import ast
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_run_format_and_jobs_do_not_import_the_trainer():
    for name in ("runs.py", "jobs.py"):
        imported = _imported_modules(ROOT / "core" / name)
        assert not {m for m in imported if m in (".epi", "core.epi", ".epi_job", "core.epi_job")}, (name, imported)


def test_load_distribution_reads_q_of_a_saved_run(tmp_path):
    from core import EPITrainer, load_distribution, load_model, load_run, settings_for
    from core.property import EmergentProperty

    torch.set_num_threads(1)
    model = load_model("lds")
    flow, opt = settings_for(model, batch_size=50, iters_per_epoch=10, num_epochs=1, num_test_batches=10,
                             init_iters=5, device="cpu", seed=2)
    trained = EPITrainer(model, EmergentProperty.default_for(model), flow, opt, run_dir=tmp_path / "r").train()
    run = load_run(tmp_path / "r")
    assert not hasattr(run, "distribution")
    z = torch.as_tensor(run.samples["z"][:20])
    for source in (run, tmp_path / "r", str(tmp_path / "r")):
        q = load_distribution(source)
        assert torch.allclose(q.log_prob(z), trained.distribution.log_prob(z), atol=1e-5)
