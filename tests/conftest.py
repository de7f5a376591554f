from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # small batched ops: one thread is fastest, and CI shares its cores

DATA = Path(__file__).parent / "data"


@pytest.fixture
def user_model_spec() -> str:
    return f"{DATA / 'oscillator_model.py'}:DampedOscillator"
