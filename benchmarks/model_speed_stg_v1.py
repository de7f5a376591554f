"""Iterations/s of the STG and V1 statistics (forward + backward), before and after optimization.

    .venv/bin/python benchmarks/model_speed_stg_v1.py [--repeats 5] [--device cpu] [--profile]

"Straightforward" = a per-step transcription of the equations, one tensor op per term, as the
reference code is written (kept only here, as the baseline). "Optimized" = the models in core/models.
One iteration = simulate a batch (STG 400, V1 100 x 100 trials), compute the statistic, backpropagate.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F

from core.model import load_model
from core.models import stg as stg_module


# --- straightforward STG: the reference's structure, in torch -------------------------------------
def straightforward_stg_hub_freq(z: torch.Tensor, model) -> torch.Tensor:
    """(batch,) hub frequency; one op per current term, per-step noise draws, conv1d + complex DFT."""
    MV, US, NS = 1e-3, 1e-6, 1e-9
    dt, T = model.dt, model.num_steps
    g_el, g_synA = z[:, 0] * NS, z[:, 1] * NS
    g_ca = torch.tensor(model.g_Ca) * US
    g_k = torch.tensor(model.g_K) * US
    g_h = torch.tensor(model.g_hyp) * US
    g_leak, g_synB, C_m = model.g_leak * US, model.g_synB * NS, model.C_m * NS
    v = {k: getattr(model, k) * MV for k in ("v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v_th",
                                               "V_leak", "V_Ca", "V_K", "V_hyp", "V_syn")}
    zeros = torch.zeros_like(g_el)

    def f(x):
        V, N, H = x[:, :5], x[:, 5:10], x[:, 10:]
        M_inf = 0.5 * (1.0 + torch.tanh((V - v["v1"]) / v["v2"]))
        N_inf = 0.5 * (1.0 + torch.tanh((V - v["v3"]) / v["v4"]))
        H_inf = 1.0 / (1.0 + torch.exp((V + v["v5"]) / v["v6"]))
        S_inf = 1.0 / (1.0 + torch.exp((v["v_th"] - V) / v["v9"]))
        I_leak = g_leak * (V - v["V_leak"])
        I_Ca = g_ca * M_inf * (V - v["V_Ca"])
        I_k = g_k * N * (V - v["V_K"])
        I_h = g_h * H * (V - v["V_hyp"])
        I_elec = torch.stack([
            zeros,
            g_el * (V[:, 1] - V[:, 2]),
            g_el * (V[:, 2] - V[:, 1] + V[:, 2] - V[:, 4]),
            zeros,
            g_el * (V[:, 4] - V[:, 2]),
        ], dim=1)
        I_syn = torch.stack([
            g_synB * S_inf[:, 1] * (V[:, 0] - v["V_syn"]),
            g_synB * S_inf[:, 0] * (V[:, 1] - v["V_syn"]),
            g_synA * S_inf[:, 0] * (V[:, 2] - v["V_syn"]) + g_synA * S_inf[:, 3] * (V[:, 2] - v["V_syn"]),
            g_synB * S_inf[:, 4] * (V[:, 3] - v["V_syn"]),
            g_synB * S_inf[:, 3] * (V[:, 4] - v["V_syn"]),
        ], dim=1)
        I_total = I_leak + I_Ca + I_k + I_h + I_elec + I_syn
        lambda_N = model.phi_N * torch.cosh((V - v["v3"]) / (2 * v["v4"]))
        tau_h = (272.0 - (-1499.0 / (1.0 + torch.exp((-V + v["v7"]) / v["v8"])))) / 1000.0
        dV = (1.0 / C_m) * (-I_total + model.sigma_I * model.randn(*I_total.shape, like=I_total))
        dN = lambda_N * (N_inf - N)
        dH = (H_inf - H) / tau_h
        return torch.cat((dV, dN, dH), dim=1)

    x = torch.tensor(model.x0).expand(z.shape[0], 15)
    hub = [x[:, 2]]
    for _ in range(T):
        x = x + f(x) * dt
        hub.append(x[:, 2])
    v_hub = torch.stack(hub, dim=1)[:, model.drop_samples:, None].transpose(1, 2)
    w = model.average_window
    lpf = F.conv1d(F.relu(v_hub), torch.full((1, 1, w), 1.0 / w))[:, 0]
    lpf = lpf - lpf.mean(dim=1, keepdim=True)
    n = torch.arange(lpf.shape[1])
    freqs = torch.tensor(model.frequencies, dtype=torch.float32)
    phi = torch.exp(-2j * math.pi * freqs[None, :] * n[:, None] * dt)
    X = lpf.to(torch.complex64) @ phi
    weights = torch.softmax(model.softmax_beta * X.abs(), dim=1)
    return model.freq_resolution * (weights @ torch.arange(len(freqs), dtype=torch.float32))
