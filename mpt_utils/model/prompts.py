"""Temporal Gaussian tokenization: a magnified clip becomes K motion prompt tokens (eqs. 8-12, section III-B).

::

    M (B, T, 3, H, W) --conv stem + GELU + average pool--> F (B, T, C)
    F flattened (B, T*C) --linear--> means  mu    (B, K) in [0, T-1]
                         --linear--> widths sigma (B, K) > 0
    g_k(t) = exp(-(t - mu_k)^2 / (2 sigma_k^2)), normalised over t  (B, K, T)
    p_k    = W_p( sum_t g_k(t) F_t )                                 (B, K, D)

Each token is a soft, learned temporal window over the clip: the means say *when* (onset, apex
...) and the widths *how long*. With C=128, a 16x16 patch stem, T=16, K=5 and D=768 the generator
has about 0.22 M parameters and costs about 0.31 GMACs per clip at 224 px.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..config import PAPER


class MotionPromptGenerator(nn.Module):
    """Magnified clip ``(B, T, 3, H, W)`` -> motion prompt tokens ``(B, K, D)``.

    Parameters
    ----------
    num_frames: T (fixed: the mean/width layers read all T frame features at once).
    num_prompts: K.
    embed_dim: D, the backbone's token width.
    channels: C, width of the per-frame features.
    patch_size: kernel and stride of the convolutional stem.
    min_width: smallest kernel width sigma, in frames (keeps every kernel a proper window).

    Nothing is stored during ``forward``: :meth:`windows` returns a clip's kernels for plotting.
    """

    def __init__(
        self,
        num_frames: int,
        num_prompts: int,
        embed_dim: int,
        channels: int = PAPER.generator_channels,
        patch_size: int = PAPER.generator_patch,
        min_width: float = 0.5,
    ):
        super().__init__()
        if num_frames < 1 or num_prompts < 1:
            raise ValueError("num_frames and num_prompts must be at least 1")
        self.num_frames, self.num_prompts, self.min_width = num_frames, num_prompts, min_width
        self.stem = nn.Conv2d(3, channels, kernel_size=patch_size, stride=patch_size)
        self.act = nn.GELU()
        self.to_mean = nn.Linear(num_frames * channels, num_prompts)
        self.to_width = nn.Linear(num_frames * channels, num_prompts)
        self.project = nn.Linear(channels, embed_dim)
        self._init_kernels()

    def _init_kernels(self) -> None:
        """Start with K evenly spread windows of width about T / (2K), nearly input-independent."""
        k = self.num_prompts
        for layer in (self.to_mean, self.to_width):
            nn.init.normal_(layer.weight, std=1e-3)
        centres = (torch.arange(k, dtype=torch.float32) + 0.5) / k
        self.to_mean.bias.data.copy_(torch.logit(centres))
        width = max(self.num_frames / (2.0 * k) - self.min_width, 0.1)
        self.to_width.bias.data.fill_(math.log(math.expm1(width)))  # inverse softplus

    def frame_features(self, clip: torch.Tensor) -> torch.Tensor:
        """Per-frame features F: ``(B, T, 3, H, W)`` -> ``(B, T, C)``."""
        b, t = clip.shape[:2]
        if t != self.num_frames:
            raise ValueError(f"clip has {t} frames, the generator was built for T={self.num_frames}")
        maps = self.act(self.stem(clip.flatten(0, 1)))  # (B*T, C, H/p, W/p)
        return maps.mean(dim=(2, 3)).view(b, t, -1)

    def kernels(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Means ``(B, K)``, widths ``(B, K)`` and normalised weights ``(B, K, T)``."""
        flat = features.flatten(1)
        means = torch.sigmoid(self.to_mean(flat)) * (self.num_frames - 1)
        widths = F.softplus(self.to_width(flat)) + self.min_width
        t = torch.arange(self.num_frames, device=features.device, dtype=features.dtype)
        logits = -((t.view(1, 1, -1) - means.unsqueeze(-1)) ** 2) / (2 * widths.unsqueeze(-1) ** 2)
        weights = torch.softmax(logits, dim=-1)  # exp(...) normalised over t, computed stably
        return means, widths, weights

    def windows(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The temporal windows a clip gets: means ``(B, K)``, widths ``(B, K)`` and weights ``(B, K, T)``."""
        return self.kernels(self.frame_features(clip))

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Prompt tokens ``(B, K, D)`` (eq. 12) of a normalised clip ``(B, T, 3, H, W)``."""
        features = self.frame_features(clip)  # (B, T, C), eq. 8
        _, _, weights = self.kernels(features)  # (B, K, T), eqs. 9-11
        return self.project(weights @ features)  # (B, K, C) -> (B, K, D)
