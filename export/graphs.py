"""The torch modules that become the engine's ONNX graphs. Graphs only, no file handling.

- `WorldModelStep`: raw observations (B, 96, 96, 3) uint8 + previous actions + LSTM state
  -> z, next state, the MDN's mixture, predicted reward, off-track probability. Cropping,
  area resizing (the same matrices the collector used), rounding to the training frames'
  uint8 levels and scaling all happen inside.
- `DreamStep`: one imagined step from (z, action, h, c): the same LSTM cell and heads.
- `Decoder`: z -> (B, 64, 64, 3) uint8, what the model sees.

The LSTM is written out as one cell step (PyTorch's gate order i, f, g, o) so that the
exported graph is a handful of MatMuls, not a Loop.
"""

from __future__ import annotations

import torch
from torch import nn

from train.models import MDNRNN, VAE
from train.preprocess import COLS, CROP_ROWS, ROWS


def lstm_cell(rnn: MDNRNN, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of rnn.lstm: x (B, z+3), h, c (B, H) -> h', c' (B, H)."""
    lstm = rnn.lstm
    gates = x @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + h @ lstm.weight_hh_l0.T + lstm.bias_hh_l0  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=1)
    c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_next), c_next


class Preprocess(nn.Module):
    """(B, 96, 96, 3) uint8 -> (B, 3, 64, 64) float in [0, 1], as train.preprocess does."""

    def __init__(self):
        super().__init__()
        self.register_buffer("rows", torch.from_numpy(ROWS))  # (64, 84)
        self.register_buffer("cols_t", torch.from_numpy(COLS.T.copy()))  # (96, 64)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs[:, :CROP_ROWS].permute(0, 3, 1, 2).float()  # (B, 3, 84, 96)
        x = self.rows @ x @ self.cols_t  # (B, 3, 64, 64)
        return torch.clamp(torch.floor(x + 0.5), 0.0, 255.0) / 255.0  # the stored uint8 levels


class WorldModelStep(nn.Module):
    """With `half`, the VAE and MDN-RNN compute in float16 (for CUDA) between float32 edges."""

    def __init__(self, vae: VAE, rnn: MDNRNN, half: bool = False):
        super().__init__()
        self.pre, self.vae, self.rnn = Preprocess(), vae, rnn
        self.dtype = torch.float16 if half else torch.float32

    def forward(self, obs, prev_action, h, c):
        d = self.dtype
        z, _ = self.vae.encode(self.pre(obs).to(d))  # (B, 32): the mean, no sampling at inference
        h_next, c_next = lstm_cell(self.rnn, torch.cat([z, prev_action.to(d)], dim=1), h.to(d), c.to(d))
        log_pi, mu, sigma, reward, off_logit = self.rnn.heads(h_next)
        outs = (z, h_next, c_next, log_pi, mu, sigma, reward, torch.sigmoid(off_logit))
        return tuple(t.float() for t in outs)


class DreamStep(nn.Module):
    def __init__(self, rnn: MDNRNN):
        super().__init__()
        self.rnn = rnn

    def forward(self, z, action, h, c):
        h_next, c_next = lstm_cell(self.rnn, torch.cat([z, action], dim=1), h, c)
        log_pi, mu, sigma, reward, off_logit = self.rnn.heads(h_next)
        return h_next, c_next, log_pi, mu, sigma, reward, torch.sigmoid(off_logit)


class Decoder(nn.Module):
    def __init__(self, vae: VAE):
        super().__init__()
        self.vae = vae

    def forward(self, z):
        x = self.vae.decode(z).permute(0, 2, 3, 1)  # (B, 64, 64, 3) in [0, 1]
        return torch.floor(x * 255.0 + 0.5).to(torch.uint8)


WORLD_MODEL_IO = (
    ["obs", "prev_action", "h", "c"],
    ["z", "h_next", "c_next", "mdn_log_pi", "mdn_mu", "mdn_sigma", "reward", "off_track_prob"],
)
DREAM_IO = (
    ["z", "action", "h", "c"],
    ["h_next", "c_next", "mdn_log_pi", "mdn_mu", "mdn_sigma", "reward", "off_track_prob"],
)
DECODER_IO = (["z"], ["frame"])
