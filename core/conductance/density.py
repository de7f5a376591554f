"""Spike train -> conditional density over (g_s, g_u) (notes sec. 5, CPU-sized).

Preprocessing: spike times shifted to start at 0, the first ``max_spikes`` (250) kept; one token per ISI:
``[log1p(ISI ms), its first difference (0 for the first)]``, standardised with the training set's mean and
std (buffers). Trains with < 3 spikes are silent and are not fed to the network.

Network: Linear 2 -> d + sinusoidal position code; ``layers`` post-norm transformer blocks (``heads``-head
self-attention with the padding mask, GELU feed-forward); one learned query attends over the tokens
(masked softmax) -> LayerNorm -> Linear -> GELU -> an embedding z. Unlike the authors' heteroscedastic
Gaussian head, the density over (g_s, g_u) given z is a conditional neural spline flow (zuko NSF) trained
by maximum likelihood on w = atanh((g_s, g_u) rescaled to (-1, 1) over the model's DIC box): a real,
possibly multimodal density with all its mass inside the box, whose samples are the compensation's targets.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import zuko
from torch import nn

from core.errors import InputError

from .models import ConductanceModel, get_model
from .spikes import MIN_SPIKES, SpikeTrains

Tensor = torch.Tensor


def isi_tokens(trains: SpikeTrains, max_spikes: int = 250) -> tuple[Tensor, Tensor]:
    """Tokens (N, L, 2) = [log1p(ISI), first difference] and mask (N, L) True where a token is real."""
    t = trains.times[:, :max_spikes].double()
    isi = t[:, 1:] - t[:, :-1]
    mask = ~torch.isnan(isi)
    x = torch.log1p(torch.nan_to_num(isi, nan=0.0).clamp_min(0))
    dx = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], 1)
    dx = torch.where(mask & torch.cat([torch.zeros_like(mask[:, :1]), mask[:, :-1]], 1), dx, torch.zeros_like(dx))
    tok = torch.stack([x, dx], -1).float()
    if tok.shape[1] == 0:
        tok = torch.zeros(t.shape[0], 1, 2)
        mask = torch.zeros(t.shape[0], 1, dtype=torch.bool)
    return tok, mask


def _positions(L: int, d: int) -> Tensor:
    pos = torch.arange(L, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(1000.0) / d))
    pe = torch.zeros(L, d)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe


class SpikeEncoder(nn.Module):
    """ISI tokens (N, L, 2) + mask (N, L) -> embedding z (N, latent)."""

    def __init__(self, d: int = 32, heads: int = 4, layers: int = 2, latent: int = 16, dropout: float = 0.03):
        super().__init__()
        self.inp = nn.Linear(2, d)
        block = nn.TransformerEncoderLayer(d, heads, dim_feedforward=2 * d, dropout=dropout,
                                           activation="gelu", batch_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.query = nn.Parameter(torch.randn(d) / math.sqrt(d))
        self.key = nn.Linear(d, d)
        self.out = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, latent), nn.GELU())
        self.register_buffer("pe", _positions(1000, d), persistent=False)

    def forward(self, tok: Tensor, mask: Tensor) -> Tensor:
        h = self.inp(tok) + self.pe[: tok.shape[1]]
        h = self.blocks(h, src_key_padding_mask=~mask)
        score = (self.key(h) @ self.query) / math.sqrt(h.shape[-1])
        score = score.masked_fill(~mask, -1e9)
        w = torch.softmax(score, 1)
        return self.out((w[..., None] * h).sum(1))


class DICDensity(nn.Module):
    """q(g_s, g_u | spike train): encoder + conditional NSF over the box-rescaled (g_s, g_u)."""

    def __init__(self, model: str = "stg", d: int = 32, heads: int = 4, layers: int = 2, latent: int = 16,
                 transforms: int = 3, hidden: int = 64, max_spikes: int = 250):
        super().__init__()
        self.config = dict(model=model, d=d, heads=heads, layers=layers, latent=latent,
                           transforms=transforms, hidden=hidden, max_spikes=max_spikes)
        box = get_model(model).dic_box
        lo = torch.tensor([box["g_s"][0], box["g_u"][0]])
        hi = torch.tensor([box["g_s"][1], box["g_u"][1]])
        self.register_buffer("center", (lo + hi) / 2)
        self.register_buffer("halfwidth", (hi - lo) / 2)
        self.register_buffer("tok_mean", torch.zeros(2))
        self.register_buffer("tok_std", torch.ones(2))
        self.encoder = SpikeEncoder(d, heads, layers, latent)
        self.flow = zuko.flows.NSF(features=2, context=latent, transforms=transforms,
                                   hidden_features=(hidden, hidden))

    @property
    def model(self) -> ConductanceModel:
        return get_model(self.config["model"])

    def fit_normalisation(self, tok: Tensor, mask: Tensor) -> None:
        x = tok[mask]
        self.tok_mean.copy_(x.mean(0))
        self.tok_std.copy_(x.std(0).clamp_min(1e-3))

    def embed(self, tok: Tensor, mask: Tensor) -> Tensor:
        return self.encoder((tok - self.tok_mean) / self.tok_std * mask[..., None], mask)

    def to_free(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """y in the DIC box -> w = atanh((y - center) / halfwidth) in R^2, and log |dw/dy| (...,)."""
        u = ((y - self.center) / self.halfwidth).clamp(-1 + 1e-6, 1 - 1e-6)
        logdet = -torch.log1p(-u**2).sum(-1) - torch.log(self.halfwidth).sum()
        return torch.atanh(u), logdet

    def from_free(self, w: Tensor) -> Tensor:
        return torch.tanh(w) * self.halfwidth + self.center

    def log_prob(self, y: Tensor, tok: Tensor, mask: Tensor) -> Tensor:
        """log q(y | train) (N,) for y (N, 2) in DIC units: all the mass lies inside the DIC box."""
        z = self.embed(tok, mask)
        w, logdet = self.to_free(y.double())
        return self.flow(z).log_prob(w.float()) + logdet.float()

    @torch.no_grad()
    def sample(self, trains: SpikeTrains, m: int, generator_seed: int = 0) -> Tensor:
        """(N, m, 2) samples of (g_s, g_u) per train (inside the model's DIC box by construction)."""
        self.eval()
        tok, mask = isi_tokens(check_trains(trains), self.config["max_spikes"])
        z = self.embed(tok, mask)
        torch.manual_seed(generator_seed)
        w = self.flow(z).sample((m,)).transpose(0, 1)  # (N, m, 2)
        return self.from_free(w.double())

    @torch.no_grad()
    def grid_log_prob(self, trains: SpikeTrains, gs: Tensor, gu: Tensor) -> Tensor:
        """(N, len(gu), len(gs)) log density over a (g_s, g_u) grid, for plots."""
        self.eval()
        tok, mask = isi_tokens(check_trains(trains), self.config["max_spikes"])
        z = self.embed(tok, mask)
        G_s, G_u = torch.meshgrid(gs, gu, indexing="xy")
        y = torch.stack([G_s.reshape(-1), G_u.reshape(-1)], -1).double()
        w, logdet = self.to_free(y)
        lp = self.flow(z[:, None, :].expand(-1, len(w), -1)).log_prob(w.float()[None].expand(len(z), -1, -1))
        return (lp + logdet.float()).reshape(len(z), len(gu), len(gs))

    def save(self, path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"config": self.config, "state": self.state_dict()}, p)
        return p


def check_trains(trains: SpikeTrains, field: str = "spikes") -> SpikeTrains:
    """The trains, or an InputError naming the first unit with fewer than 3 spikes."""
    few = trains.counts < MIN_SPIKES
    if len(trains) == 0:
        raise InputError(field, "no spike trains")
    if few.any():
        i = int(few.nonzero()[0, 0])
        label = trains.units[i] if trains.units is not None else i
        raise InputError(f"{field}[{label}]", f"{int(trains.counts[i])} spikes: at least {MIN_SPIKES} are "
                                              f"needed; the neuron is silent")
    return trains


def load_density(path) -> DICDensity:
    """A trained :class:`DICDensity` from ``density.pt`` (or a directory holding it)."""
    p = Path(path)
    if p.is_dir():
        p = p / "density.pt"
    if not p.is_file():
        raise InputError("network", f"no trained network at {p}; train one with `epi-dash dic train`")
    blob = torch.load(p, map_location="cpu", weights_only=False)
    net = DICDensity(**blob["config"])
    net.load_state_dict(blob["state"])
    net.eval()
    return net
