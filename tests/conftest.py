from pathlib import Path

import pytest
import torch


DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small batched ops: one intra-op thread is fastest, and two threads contending on CI's 2 shared
    cores run up to ~100x slower. Restored after each test in case one changes it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def fresh_training_scheduler():
    """Each test starts with an empty training queue: a training one test leaves running must not make a
    later test's trainings wait for a slot (the scheduler is one per process, like a server's)."""
    import sys

    yield
    if "epi_dash.scheduler" in sys.modules:
        sys.modules["epi_dash.scheduler"].reset_scheduler()


@pytest.fixture
def user_model_spec() -> str:
    return f"{DATA / 'oscillator_model.py'}:DampedOscillator"


def _train_a_few_iterations(model, iterations: int = 3, batch_size: int = 16, **settings):
    """A real EPITrainer run of ``iterations`` steps with tiny CPU settings: (result, iteration records)."""
    from core import EPITrainer, settings_for

    base = dict(batch_size=batch_size, iters_per_epoch=iterations, num_epochs=1, num_test_batches=10,
                init_iters=2, num_units=8, device="cpu", seed=3)
    flow, opt = settings_for(model, **{**base, **settings})
    records = []
    trainer = EPITrainer(model, flow=flow, opt=opt)
    trainer.add_callback(on_iteration=records.append)
    result = trainer.train()
    assert result.error is None, result.error
    assert result.iterations == iterations and len(records) == iterations
    return result, records


@pytest.fixture
def train_a_few_iterations():
    """``train_a_few_iterations(model, iterations=3, **settings) -> (result, records)``."""
    return _train_a_few_iterations
