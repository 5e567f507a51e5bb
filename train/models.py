"""The World Models networks: the VAE (V) and the MDN-RNN (M). Models only, no training.

Sizes follow Ha & Schmidhuber (2018): a 64x64 RGB frame -> z of 32 through four 4x4
stride-2 convolutions (VAE: 4,348,547 parameters); an LSTM of 256 units reads
[z_t, a_{t-1}] and a mixture of 5 Gaussians per z dimension predicts z_{t+1}. Two small
heads that the paper's CarRacing model lacked read the same hidden state: the reward of
the coming step and the probability that the car will be off the track.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class VAEConfig:
    """Shapes of the VAE."""

    z_size: int = 32
    """Latent dimensions."""
    image_size: int = 64
    """Input side, px; the architecture below assumes 64."""


@dataclass(frozen=True)
class MDNRNNConfig:
    """Shapes of the MDN-RNN."""

    z_size: int = 32
    action_size: int = 3
    hidden_size: int = 256
    """LSTM units."""
    gaussians: int = 5
    """Mixture components per z dimension."""


class VAE(nn.Module):
    """Convolutional VAE. x: (B, 3, 64, 64) float in [0, 1]."""

    def __init__(self, cfg: VAEConfig = VAEConfig()):
        super().__init__()
        self.cfg = cfg
        self.enc = nn.Sequential(
            nn.Conv2d(3, 32, 4, stride=2), nn.ReLU(),  # (B, 32, 31, 31)
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),  # (B, 64, 14, 14)
            nn.Conv2d(64, 128, 4, stride=2), nn.ReLU(),  # (B, 128, 6, 6)
            nn.Conv2d(128, 256, 4, stride=2), nn.ReLU(),  # (B, 256, 2, 2)
            nn.Flatten(),  # (B, 1024)
        )  # fmt: skip
        self.fc_mu = nn.Linear(1024, cfg.z_size)
        self.fc_logvar = nn.Linear(1024, cfg.z_size)
        self.fc_dec = nn.Linear(cfg.z_size, 1024)
        self.dec = nn.Sequential(
            nn.ConvTranspose2d(1024, 128, 5, stride=2), nn.ReLU(),  # (B, 128, 5, 5)
            nn.ConvTranspose2d(128, 64, 5, stride=2), nn.ReLU(),  # (B, 64, 13, 13)
            nn.ConvTranspose2d(64, 32, 6, stride=2), nn.ReLU(),  # (B, 32, 30, 30)
            nn.ConvTranspose2d(32, 3, 6, stride=2), nn.Sigmoid(),  # (B, 3, 64, 64)
        )  # fmt: skip

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 3, 64, 64) -> mu, logvar, each (B, z)."""
        h = self.enc(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, z) -> (B, 3, 64, 64) in [0, 1]."""
        return self.dec(self.fc_dec(z)[:, :, None, None])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # reparameterisation
        return self.decode(z), mu, logvar


def vae_loss(
    x: torch.Tensor, recon: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, kl_tolerance: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """World Models' loss: summed squared error + KL held at no less than
    kl_tolerance nats per dimension (free bits). Returns (loss, recon, kl), batch means."""
    r = ((recon - x) ** 2).sum(dim=(1, 2, 3)).mean()
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)  # (B,)
    kl = torch.clamp(kl, min=kl_tolerance * mu.shape[1]).mean()
    return r + kl, r, kl


class MDNRNN(nn.Module):
    """LSTM over [z_t, a_{t-1}] with an MDN on z_{t+1}, a reward head and an off-track head."""

    def __init__(self, cfg: MDNRNNConfig = MDNRNNConfig()):
        super().__init__()
        self.cfg = cfg
        self.lstm = nn.LSTM(cfg.z_size + cfg.action_size, cfg.hidden_size, batch_first=True)
        self.mdn = nn.Linear(cfg.hidden_size, 3 * cfg.gaussians * cfg.z_size)
        self.reward = nn.Linear(cfg.hidden_size, 1)
        self.off_track = nn.Linear(cfg.hidden_size, 1)

    def heads(self, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """h (..., H) -> log_pi, mu, sigma (each (..., z, K)), reward (...), off-track logit (...)."""
        k, z = self.cfg.gaussians, self.cfg.z_size
        out = self.mdn(h).view(*h.shape[:-1], z, 3 * k)
        logit, mu, log_sigma = out.split(k, dim=-1)
        log_pi = F.log_softmax(logit, dim=-1)
        return log_pi, mu, log_sigma.exp(), self.reward(h)[..., 0], self.off_track(h)[..., 0]

    def forward(
        self, z: torch.Tensor, prev_action: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ):
        """z (B, T, z), prev_action (B, T, 3) -> heads over (B, T), and the final (h, c)."""
        out, state = self.lstm(torch.cat([z, prev_action], dim=-1), state)  # (B, T, H)
        return (*self.heads(out), state)


def mdn_nll(log_pi: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood per z dimension of target (..., z) under the mixtures (..., z, K)."""
    t = target.unsqueeze(-1)
    log_n = -0.5 * ((t - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * torch.log(torch.tensor(2 * torch.pi))
    return -torch.logsumexp(log_pi + log_n, dim=-1).mean()
