"""Group adapters (eqs. 14-16, section III-C) and the block wrapper that places them after the feed-forward layer.

A bottleneck branch is ``x -> Up(GELU(Down(x)))`` with ``Down: D -> D/r`` and ``Up: D/r -> D``;
``Up`` starts at zero, so an adapted model starts exactly at the frozen backbone. The group
adapter gives each kind of token its own branch::

    tokens: [CLS | p_1 .. p_K | v_1 .. v_N]
    branch:  class   motion       visual

``shared=True`` gives the "primitive" adapter of Table VIII: one branch for every token.

The paper also mentions "the average of the class, vision and motion tokens" per layer, with its
formula lost. ``token_average=True`` is our reading of it, parameter-free so that the paper's
5.5 M holds: each token enters its branch mixed with its group's mean, ``(x_i + mean_g) / 2``
(notebook 05 teaches it; ``--ablation group_average`` compares it with the plain branch under LOSO).
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import PAPER


class Bottleneck(nn.Module):
    """``x -> Up(GELU(Down(x)))``, ``(..., D) -> (..., D)``, with a zero-initialised ``Up``."""

    def __init__(self, dim: int, reduction: int = PAPER.reduction):
        super().__init__()
        if dim % reduction:
            raise ValueError(f"width {dim} is not divisible by the reduction r={reduction}")
        self.down = nn.Linear(dim, dim // reduction)
        self.act = nn.GELU()
        self.up = nn.Linear(dim // reduction, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.act(self.down(x)))


class GroupAdapter(nn.Module):
    """Type-aware adapter: class, motion and visual tokens each pass their own branch.

    Parameters
    ----------
    dim: token width D.
    reduction: r (paper: 8).
    num_prefix_tokens: CLS (and register) tokens at the start of the sequence.
    num_prompts: K prompt tokens right after them (0: no motion branch is built).
    shared: one branch for all tokens (the primitive adapter).
    token_average: feed each token mixed with its group's mean (see the module docstring).

    Input and output: ``(B, P + K + N, D)``; the output is the adapter's *update*, to be added.
    """

    def __init__(
        self,
        dim: int,
        reduction: int = PAPER.reduction,
        num_prefix_tokens: int = 1,
        num_prompts: int = PAPER.num_prompts,
        shared: bool = False,
        token_average: bool = False,
    ):
        super().__init__()
        self.num_prefix_tokens, self.num_prompts = num_prefix_tokens, num_prompts
        self.shared, self.token_average = shared, token_average
        if shared:
            self.branches = nn.ModuleDict({"all": Bottleneck(dim, reduction)})
        else:
            names = ["class"] + (["motion"] if num_prompts > 0 else []) + ["visual"]
            self.branches = nn.ModuleDict({n: Bottleneck(dim, reduction) for n in names})

    def groups(self, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """Split ``(B, L, D)`` into its named token groups, in sequence order."""
        if self.shared:
            return [("all", x)]
        p, k = self.num_prefix_tokens, self.num_prompts
        parts = [("class", x[:, :p])]
        if k > 0:
            parts.append(("motion", x[:, p : p + k]))
        parts.append(("visual", x[:, p + k :]))
        return parts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for name, part in self.groups(x):
            if self.token_average:
                part = 0.5 * (part + part.mean(dim=1, keepdim=True))
            outputs.append(self.branches[name](part))
        return torch.cat(outputs, dim=1)


class AdaptedBlock(nn.Module):
    """A timm ViT block with an adapter after its feed-forward layer.

    ::

        x = x + attn(norm1(x))
        h = mlp(norm2(x));  h = h + adapter(h)      # the adapter sits here
        x = x + h

    (timm's layer-scale and drop-path wrappers are kept as the block defines them.) With no
    adapter, or a zero-initialised one, the block computes exactly what the original does.
    """

    _NEEDED = ("norm1", "attn", "ls1", "drop_path1", "norm2", "mlp", "ls2", "drop_path2")

    def __init__(self, block: nn.Module, adapter: nn.Module | None = None):
        super().__init__()
        missing = [a for a in self._NEEDED if not hasattr(block, a)]
        if missing:
            raise TypeError(f"{type(block).__name__} lacks {missing}; only pre-norm timm ViT blocks are supported")
        self.block, self.adapter = block, adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.block
        x = x + b.drop_path1(b.ls1(b.attn(b.norm1(x))))
        h = b.mlp(b.norm2(x))
        if self.adapter is not None:
            h = h + self.adapter(h)
        return x + b.drop_path2(b.ls2(h))
