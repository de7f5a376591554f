import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

DATA = Path(__file__).parent / "data"


@pytest.fixture
def user_model_spec() -> str:
    return f"{DATA / 'oscillator_model.py'}:DampedOscillator"
