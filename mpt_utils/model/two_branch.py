"""MA2MI's competing network: two branches that separate *where the face is* from *what moves*.

After MMNet (Li, Niu and Zhao, IJCAI 2022, whose code is public) and the summary of MIACNet (the same authors'
MA2MI paper, arXiv 2405.16451, whose code is not); details ours. For a clip with onset frame ``x_on`` and apex frame
``x_ap`` (both ``(B, 3, S, S)``, uint8 or in [0, 1], normalised inside with ImageNet's mean and standard deviation
as timm's backbones are)::

    position branch   P = T(Resize_g(x_on))          a small transformer over the onset frame shrunk to g x g
                                                     cells, one token per cell: (B, C, g, g)
    action branch     A = CNN(x_ap - x_on)            a ResNet-like CNN over the difference: (B, C, g, g)
    fusion            F = A + P                       the position map enters as position embeddings (MMNet)
    attention         a = softmax_cells(w . F + b)    one weight per cell, summing to 1: (B, g, g)
    head              logits = W (sum_cells a F) + c

The position branch sees only the onset frame and the action branch only the difference, so a change that is the
same in both frames (lighting, a face's identity) cannot reach the action branch, and the action map is placed by a
branch that knows the face's layout. Choices that the sources leave open, ours: a 1 x 1 convolution embeds each
cell's colour (MMNet: the same, with batch norm), timm's transformer blocks with a learned position embedding
(MMNet: depth 2, 4 heads, width 512); the action CNN's stem (a 3 x 3 convolution of stride 2, as MMNet's, then a
max-pool), timm's basic residual blocks without MMNet's coordinate attention; the softmax spatial attention that
pools the fused map (MMNet pools it with an average), which gives a map to score against the action-unit masks.

Two sizes (:data:`TWO_BRANCH_SIZES`): ``paper`` (224 px; the action branch is ResNet-18's four stages with the last
one at stride 1, so that its map is 14 x 14 as MMNet's; 512 channels) and ``quick`` (112 px, three narrow stages,
a 14 x 14 map of 64 channels; sized for the main job's budget on the 2-core CPU: widths of 32-128 trained as
slowly as MPT, 0.40 s against 0.45 s per step of 16 clips on one thread; ``benchmarks/bench_model.py`` times both).
:func:`build_two_branch` makes either. Parameters for 5 classes:
``paper`` 17.58 M (action 11.17 M, ResNet-18's convolutional trunk; position 6.41 M), ``quick`` 0.19 M (action
0.08 M, position 0.11 M), all of them trained.

Two rows of the tutorial's comparison train it (:data:`TWO_BRANCH_VARIANTS`, ``TrainConfig.variant``): from
scratch, and with its action branch pre-trained first by macro-to-micro future prediction on the synthetic macro
corpus (:mod:`mpt_utils.train.objectives`, reading no label), the way MA2MI prepares MIACNet.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models.resnet import BasicBlock, downsample_conv
from timm.models.vision_transformer import Block
from torch import nn
from torch.nn import functional as F

from .mpt import Variant


@dataclass(frozen=True)
class TwoBranchSize:
    """The sizes of a two-branch network.

    image_size: S, the frames' side in pixels.
    widths, strides, blocks: the action CNN's stages (channels, stride of the first block, residual blocks each);
        the stem divides the side by 4 first.
    position_depth, position_heads: the position transformer's blocks and attention heads (its width is
        ``widths[-1]``, the action map's channels, so that the two maps add).
    """

    image_size: int
    widths: tuple[int, ...]
    strides: tuple[int, ...]
    blocks: tuple[int, ...]
    position_depth: int = 2
    position_heads: int = 4

    def __post_init__(self) -> None:
        if not len(self.widths) == len(self.strides) == len(self.blocks) > 0:
            raise ValueError(f"widths, strides and blocks need one entry per stage, got {self.widths}, "
                             f"{self.strides}, {self.blocks}")
        if self.image_size % (4 * math.prod(self.strides)):
            raise ValueError(f"image_size {self.image_size} is not divisible by the CNN's total stride "
                             f"{4 * math.prod(self.strides)}")
        if self.widths[-1] % self.position_heads:
            raise ValueError(f"the last width {self.widths[-1]} is not divisible by {self.position_heads} heads")

    @property
    def grid(self) -> int:
        """g: the side of both branches' maps, in cells."""
        return self.image_size // (4 * math.prod(self.strides))

    @property
    def channels(self) -> int:
        """C: the channels of both maps."""
        return self.widths[-1]


#: ``paper``: MMNet's scale (ResNet-18 stages, 512 channels on a 14 x 14 map at 224 px); ``quick``: the 2-core CPU's.
TWO_BRANCH_SIZES = {
    "paper": TwoBranchSize(image_size=224, widths=(64, 128, 256, 512), strides=(1, 2, 2, 1), blocks=(2, 2, 2, 2)),
    "quick": TwoBranchSize(image_size=112, widths=(16, 32, 64), strides=(1, 2, 1), blocks=(1, 1, 1)),
}


class ActionBranch(nn.Module):
    """What moves: a ResNet-like CNN over ``apex - onset``, ``(B, 3, S, S) -> (B, C, g, g)``."""

    def __init__(self, size: TwoBranchSize):
        super().__init__()
        first = size.widths[0]
        self.stem = nn.Sequential(nn.Conv2d(3, first, 3, 2, 1, bias=False), nn.BatchNorm2d(first), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))  # S -> S / 4
        stages, channels = [], first
        for width, stride, count in zip(size.widths, size.strides, size.blocks):
            # timm's ResNet basic block; the first of a stage changes width or stride, its shortcut with it
            shortcut = downsample_conv(channels, width, 1, stride) if stride != 1 or channels != width else None
            stages.append(nn.Sequential(BasicBlock(channels, width, stride, shortcut),
                                        *[BasicBlock(width, width) for _ in range(count - 1)]))
            channels = width
        self.stages = nn.Sequential(*stages)

    def forward(self, difference: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(difference))


class PositionBranch(nn.Module):
    """Where the face is: the onset frame shrunk to ``g x g`` cells, one token per cell, through a small
    transformer; ``(B, 3, S, S) -> (B, C, g, g)``."""

    def __init__(self, size: TwoBranchSize):
        super().__init__()
        self.grid, dim = size.grid, size.channels
        self.embed = nn.Conv2d(3, dim, 1)  # each cell's colour -> a token
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid * self.grid, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.Sequential(*[Block(dim, size.position_heads, qkv_bias=True)
                                      for _ in range(size.position_depth)])
        self.norm = nn.LayerNorm(dim)

    def forward(self, onset: torch.Tensor) -> torch.Tensor:
        cells = F.adaptive_avg_pool2d(onset, self.grid)  # (B, 3, g, g)
        tokens = self.embed(cells).flatten(2).transpose(1, 2) + self.pos_embed  # (B, g*g, C)
        tokens = self.norm(self.blocks(tokens))
        return tokens.transpose(1, 2).reshape(len(onset), -1, self.grid, self.grid)


class TwoBranchNet(nn.Module):
    """The two-branch network (module docstring): ``forward(onset, apex) -> logits (B, num_classes)``.

    ``forward_features`` gives the fused map ``F (B, C, g, g)``, ``attention`` its cell weights ``a (B, g, g)``,
    ``forward_head`` the logits from ``F`` (or with ``pre_logits`` the pooled feature ``(B, C)``). Every weight is
    trained: :meth:`trainable_state_dict` is the whole state, batch-norm statistics included.
    """

    #: What the fold machinery feeds it, in order (:class:`~mpt_utils.train.ModelInputs`).
    input_names = ("onset", "apex")

    def __init__(self, size: TwoBranchSize, num_classes: int, dropout: float = 0.5):
        super().__init__()
        self.size = size
        self.register_buffer("mean", torch.tensor(IMAGENET_DEFAULT_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_DEFAULT_STD).view(1, 3, 1, 1), persistent=False)
        self.position = PositionBranch(size)
        self.action = ActionBranch(size)
        self.score = nn.Conv2d(size.channels, 1, 1)  # w . F + b, per cell
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(size.channels, num_classes)

    def _check(self, frames: torch.Tensor, name: str) -> None:
        side = self.size.image_size
        if frames.ndim != 4 or tuple(frames.shape[1:]) != (3, side, side):
            raise ValueError(f"{name} must be (B, 3, {side}, {side}), got {tuple(frames.shape)}")

    def normalise(self, frames: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` uint8 (0..255) or float in [0, 1] -> normalised with ImageNet's mean and std."""
        if frames.dtype == torch.uint8:
            frames = frames.float() / 255.0
        return (frames - self.mean) / self.std

    def forward_features(self, onset: torch.Tensor, apex: torch.Tensor) -> torch.Tensor:
        self._check(onset, "onset")
        self._check(apex, "apex")
        onset, apex = self.normalise(onset), self.normalise(apex)
        return self.action(apex - onset) + self.position(onset)

    def attention(self, fused: torch.Tensor) -> torch.Tensor:
        """The spatial attention ``a``: one weight per cell of the fused map, summing to 1; ``(B, g, g)``."""
        scores = self.score(fused).flatten(1)  # (B, g*g)
        return scores.softmax(dim=1).view(len(fused), self.size.grid, self.size.grid)

    def forward_head(self, fused: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = (self.attention(fused).unsqueeze(1) * fused).sum(dim=(2, 3))  # (B, C)
        return pooled if pre_logits else self.head(self.dropout(pooled))

    def forward(self, onset: torch.Tensor, apex: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(onset, apex))

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """What a fold saves: every tensor of the state (all of it is trained)."""
        return {n: t.detach().cpu().contiguous() for n, t in self.state_dict().items()}


#: The comparison's two-branch rows (``TrainConfig.variant``), beside MPT's :data:`~.mpt.VARIANTS`; all their weights
#: are trained at the run's learning rate.
TWO_BRANCH_VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in [
        Variant("two_branch", "MA2MI's two-branch network (position / action), trained from scratch"),
        Variant("two_branch_ma2mi", "the two-branch network, its action branch pre-trained by macro-to-micro "
                "future prediction (MA2MI), then fine-tuned"),
    ]
}


def build_two_branch(size: str | TwoBranchSize, num_classes: int, image_size: int | None = None) -> TwoBranchNet:
    """A two-branch network of a named size (``"quick"``, ``"paper"``: :data:`TWO_BRANCH_SIZES`) or your own;
    ``image_size`` runs the same layers on frames of another side (the ci profile's 64 px), a smaller map."""
    if isinstance(size, str):
        if size not in TWO_BRANCH_SIZES:
            raise ValueError(f"unknown two-branch size {size!r}; choose one of {sorted(TWO_BRANCH_SIZES)}")
        size = TWO_BRANCH_SIZES[size]
    if image_size is not None and image_size != size.image_size:
        size = dataclasses.replace(size, image_size=image_size)
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    return TwoBranchNet(size, num_classes)
