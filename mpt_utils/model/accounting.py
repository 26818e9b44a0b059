"""Counting trainable parameters and multiply-accumulates (MACs).

The paper's "GFLOPs" are multiply-accumulates (ViT-B/16 at 224 px is 17.56 G of them).
``torch.utils.flop_counter`` counts FLOPs (2 per MAC) of the aten ops it knows, and it does not
know the fused CPU attention kernel timm uses by default (about 0.75 GMACs of a ViT-B/16 would
vanish), so :func:`count_macs` switches timm's fused attention off while it counts.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .. import paper
from ..config import PAPER, TrainConfig


def count_parameters(model: nn.Module, trainable: bool = True) -> int:
    """Number of (trainable, or all) parameters; shared tensors are counted once."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) in seen or (trainable and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


@contextmanager
def unfused_attention(model: nn.Module):
    """Temporarily run timm attention as explicit matmuls (countable), then restore."""
    switched = [m for m in model.modules() if getattr(m, "fused_attn", False)]
    for m in switched:
        m.fused_attn = False
    try:
        yield
    finally:
        for m in switched:
            m.fused_attn = True


@torch.no_grad()
def count_macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass of ``model(*inputs)``."""
    was_training = model.training
    model.eval()
    try:
        with unfused_attention(model), FlopCounterMode(display=False) as counter:
            model(*inputs)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


def variant_table(config: TrainConfig = PAPER, variants: list[str] | None = None):
    """Measured trainable parameters and GMACs of every variant of ``config`` beside the paper's figures.

    ``config`` gives the backbone and sizes (default: the paper's configuration, ViT-B/16 at 224 px, T=16,
    K=5, r=8). Models are built with random weights (counting needs no pretrained values). Returns a
    pandas table indexed by variant name; the paper's columns come from :data:`mpt_utils.paper.VARIANTS`
    (SMIC, Tables V-VIII) and describe the paper's configuration only.
    """
    import pandas as pd

    from .mpt import VARIANTS, build_variant

    size, frames = config.image_size, config.num_frames
    rows = []
    for name in variants or list(VARIANTS):
        model = build_variant(name, **{**config.model_kwargs(num_classes=5), "pretrained": False, "weights": None})
        dyn = torch.rand(1, 3, size, size)
        clip = torch.rand(1, frames, 3, size, size)
        published = paper.VARIANTS.get(name, paper.Published(None, None))
        rows.append({
            "variant": name,
            "description": VARIANTS[name].description,
            "trainable (M)": count_parameters(model) / 1e6,
            "GMACs": count_macs(model, dyn, clip) / 1e9,
            "paper #Tparas (M)": published.params_m,
            "paper Acc (SMIC)": published.acc,
            "paper F1 (SMIC)": published.f1,
        })
    return pd.DataFrame(rows).set_index("variant")
