"""The sampling measure of Python overhead (benchmarks/python_share.py): how a stack is attributed, and
one real py-spy run over EPI steps."""

from __future__ import annotations

import pytest

from benchmarks.python_share import _py_spy, classify, measure, share_of


def test_frames_are_attributed_to_the_first_non_libc_frame():
    step = "<module> (x.py:1);_measured_steps (benchmarks/python_share.py:80);EPITrainer.step (core/epi.py:280)"
    lines = [
        f"{step};RealNVP.forward (core/flow.py:250) 3",  # Python bytecode
        f"{step};torch::autograd::THPVariable_addcmul (libtorch_python.so) 2",  # the binding layer
        f"{step};THPVariable_addcmul (libtorch_python.so);at::_ops::addcmul::call (libtorch_cpu.so) 4",
        f"{step};at::native::mm (libtorch_cpu.so);0x7f00 (libc.so.6) 1",  # memcpy under a kernel: native
        f"{step};THPVariable_cat (libtorch_python.so);0x7f00 (libc.so.6) 1",  # malloc under the binding
        f"{step};_PyEval_EvalFrameDefault (libpython3.11.so.1.0) 1",
        f"{step};call (/tmp/torchinductor_root/ab/cab.py:40);kernel (/tmp/torchinductor_root/ab/cab.cpp:9) 2",
        f"{step};cpp_fused_0 (cab.so);_mm512_add_ps (avx512fintrin.h:12600) 1",  # compiled kernels: native
        "<module> (x.py:1);EPITrainer.initialize (core/epi.py:240) 50",  # outside the measured steps
    ]
    share = share_of(lines)
    assert share.samples == 15
    assert share.interpreter == pytest.approx(4 / 15) and share.binding == pytest.approx(3 / 15)
    assert share.overhead == pytest.approx(7 / 15)
    assert classify("0x7f00 (libc.so.6)") is None and classify("at::mm (libtorch_cpu.so)") == "native"
    assert classify("<module> (<frozen runpy>:88)") == "interpreter"
    with pytest.raises(RuntimeError, match="no samples"):
        share_of(lines[-1:])


def test_a_sampled_run_of_epi_steps():
    try:
        share, seconds = measure("lds", ["batch_size=200"], iterations=300, warmup=10, rate=100, threads=1,
                                 py_spy=_py_spy())
    except RuntimeError as exc:
        if "ermission" in str(exc):  # py-spy needs ptrace, which some containers forbid
            pytest.skip(f"py-spy may not trace processes here: {str(exc)[-300:]}")
        raise
    assert share.samples >= 20 and 0 < seconds < 1
    # an eager step of small tensors spends real time both in Python and in kernels
    assert 0.0 < share.overhead < 1.0
    assert 0.0 <= share.interpreter <= 1.0 and 0.0 <= share.binding <= 1.0
