"""The torch modules that become the engine's ONNX graphs. Graphs only, no file handling.

- `WorldModelStep`: the VAE's input frames (B, 3, 64, 64) float32 in [0, 1] (observations
  cropped, area-resized and rounded by engine.world_model.frames, in numba: as MatMuls in
  the graph they were a quarter of its time) + previous actions + LSTM state -> z, next
  state, the MDN's mixture, predicted reward, off-track probability.
- `DreamStep`: one imagined step from (z, action, h, c): the same LSTM cell and heads.
- `Decoder`: z -> (B, 64, 64, 3) uint8, what the model sees.

The LSTM is written out as one cell step (PyTorch's gate order i, f, g, o) so that the
exported graph is a handful of MatMuls, not a Loop.
"""

from __future__ import annotations

import torch
from torch import nn

from train.models import MDNRNN, VAE


def lstm_cell(rnn: MDNRNN, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of rnn.lstm: x (B, z+3), h, c (B, H) -> h', c' (B, H)."""
    lstm = rnn.lstm
    gates = x @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + h @ lstm.weight_hh_l0.T + lstm.bias_hh_l0  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=1)
    c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_next), c_next


class WorldModelStep(nn.Module):
    """With `half`, the VAE and MDN-RNN compute in float16 (for CUDA) between float32 edges."""

    def __init__(self, vae: VAE, rnn: MDNRNN, half: bool = False):
        super().__init__()
        self.vae, self.rnn = vae, rnn
        self.dtype = torch.float16 if half else torch.float32

    def forward(self, frame, prev_action, h, c):
        d = self.dtype
        z, _ = self.vae.encode(frame.to(d))  # (B, 32): the mean, no sampling at inference
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
    ["frame", "prev_action", "h", "c"],
    ["z", "h_next", "c_next", "mdn_log_pi", "mdn_mu", "mdn_sigma", "reward", "off_track_prob"],
)
DREAM_IO = (
    ["z", "action", "h", "c"],
    ["h_next", "c_next", "mdn_log_pi", "mdn_mu", "mdn_sigma", "reward", "off_track_prob"],
)
DECODER_IO = (["z"], ["frame"])
