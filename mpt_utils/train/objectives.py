"""Pre-training objectives for a backbone, each a named choice: ``"au"``, ``"ma2mi"`` and ``"ma2mi+au"``.

``"au"`` (:mod:`.pretrain`): multi-label action-unit detection on the dynamic images of a synthetic AU corpus.

``"ma2mi+au"``: both at once on the macro corpus: the future prediction below, plus AU detection from the
*early* prefix (a pixel or two of motion, a micro-expression's size) by a linear head on the first token that is
thrown away, :math:`\\mathcal{L} + \\lambda\\,\\mathrm{BCE}(h(f_\\theta(d_j)_0), a)`. It reads the corpus' AU
labels (as ``"au"`` does), never its emotion labels.

``"ma2mi"`` (macro to micro, after Li, Niu and Zhao, arXiv 2405.16451; details ours): predict, in latent space,
how a macro-expression goes on. From one unlabelled macro-expression clip with onset frame :math:`s` and offset
:math:`e`, take prefixes that end at fractions :math:`f_1 < f_2 < \\dots` of the episode,
:math:`t_k = s + f_k (e - s)`, and the dynamic image of each, :math:`d_k = \\mathrm{DI}(x_s, \\dots, x_{t_k})`:
the motion so far. An early prefix moves a pixel or two, like a micro-expression; a later one shows where it was
going. For a pair :math:`j < k` the encoder :math:`f_\\theta` reads the early prefix and a light predictor
:math:`g_\\phi` (thrown away afterwards) must produce the tokens that a slowly moving copy of the encoder, its
exponential moving average :math:`f_{\\bar\\theta}`, gives for the later one:

.. math::

    z = g_\\phi\\big(f_\\theta(d_j) + e_{k-j}\\big), \\qquad
    \\bar z = \\mathrm{LN}\\big(f_{\\bar\\theta}(d_k)\\big) \\;\\text{(no gradient)}, \\qquad
    \\mathcal{L} = \\frac{1}{N}\\sum_{n=1}^{N} \\Big(1 - \\frac{z_n \\cdot \\bar z_n}{\\lVert z_n\\rVert\\,
    \\lVert \\bar z_n\\rVert}\\Big),

    \\bar\\theta \\leftarrow m\\,\\bar\\theta + (1 - m)\\,\\theta ,

over the :math:`N` tokens (CLS and patches, or a feature map's positions), with :math:`e_{k-j}` a learned
embedding of how far ahead to predict and :math:`m` rising from ``ema_start`` to 1 on a cosine schedule. The
predictor and the moving target keep the encoder from the trivial answer of mapping everything to one point
(as in BYOL and I-JEPA). The objective reads no emotion and no action-unit label: only the frames and the
episode's onset and offset, which a spotting step gives for unlabelled video.

Written for any encoder whose output is tokens ``(B, N, D)`` or a feature map ``(B, C, H, W)``
(:func:`as_tokens`), so that a CNN branch can be pre-trained by the same code.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data import ArrayCache, Sample, read_clip
from ..motion import rank_pool, scale_dynamic_image
from ..runtime import progress_bar
from .inputs import default_cache_dir

#: The objectives a backbone can be pre-trained with (see the module docstring).
OBJECTIVES = ("au", "ma2mi", "ma2mi+au")

#: Whether an objective reads a label of its corpus (action units; none reads an emotion).
READS_LABELS = {"au": True, "ma2mi": False, "ma2mi+au": True}

#: Where the prefixes of an episode end, as fractions of onset to offset (the apex lies near 0.45).
PREFIXES = (0.15, 0.3, 0.45)

#: The (early, later) prefix pairs the encoder learns to predict across.
PAIRS = ((0, 1), (0, 2), (1, 2))

#: What the predictor produces for the later prefix: its tokens under the moving copy of the encoder
#: (``"latent"``), or its pixels, patch by patch, each patch normalised (``"pixels"``, as MAE's targets are), with
#: the CLS token predicting the whole later prefix shrunk to one patch's size.
TARGETS = ("latent", "pixels")


def as_tokens(features: torch.Tensor) -> torch.Tensor:
    """An encoder's output as tokens ``(B, N, D)``: tokens stay, a feature map ``(B, C, H, W)`` is flattened to
    ``(B, H*W, C)``."""
    if features.ndim == 3:
        return features
    if features.ndim == 4:
        return features.flatten(2).transpose(1, 2)
    raise ValueError(f"expected tokens (B, N, D) or a feature map (B, C, H, W), got shape {tuple(features.shape)}")


def prefix_dynamic_images(
    samples: Sequence[Sample],
    image_size: int,
    num_frames: int,
    prefixes: Sequence[float] = PREFIXES,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """The dynamic image of each prefix of each clip's episode: ``(N, P, 3, S, S)`` float32 in [0, 1], cached.

    Prefix ``k`` runs from the onset to ``onset + prefixes[k] * (offset - onset)``, read as ``num_frames``
    frames (interpolated when shorter) and rank-pooled as the model's input is.
    """
    params = {"what": "prefix-dynamic", "T": num_frames, "size": image_size, "prefixes": list(prefixes)}
    return _per_prefix(samples, prefixes, params, lambda prefix: scale_dynamic_image(rank_pool(
        read_clip(prefix, num_frames, image_size))), cache_dir, progress, "prefix dynamic images")


def prefix_differences(
    samples: Sequence[Sample],
    image_size: int,
    prefixes: Sequence[float] = PREFIXES,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """The last frame of each prefix minus the onset frame, :math:`x_{t_k} - x_s`: ``(N, P, 3, S, S)`` float32 in
    [-1, 1], cached. What the two-branch network's action branch reads (apex minus onset) at each prefix's end."""
    params = {"what": "prefix-difference", "size": image_size, "prefixes": list(prefixes)}

    def difference(prefix: Sample) -> np.ndarray:
        onset, end = read_clip(prefix, 2, image_size).astype(np.float32) / 255.0  # the prefix's first and last
        return end - onset

    return _per_prefix(samples, prefixes, params, difference, cache_dir, progress, "prefix differences")


def _per_prefix(samples: Sequence[Sample], prefixes: Sequence[float], params: dict,
                image_of: Callable[[Sample], np.ndarray], cache_dir, progress: bool, desc: str) -> torch.Tensor:
    """``image_of(prefix)`` ``(S, S, 3)`` for each prefix of each clip (the clip cut to end at the prefix's last
    frame), cached under ``params``: ``(N, P, 3, S, S)`` float32."""
    if not samples:
        raise ValueError("no clips to make prefix images from")
    if not all(0 < f <= 1 for f in prefixes) or list(prefixes) != sorted(prefixes):
        raise ValueError(f"prefixes must be increasing fractions in (0, 1], got {list(prefixes)}")
    cache = ArrayCache(cache_dir or default_cache_dir())
    side = params["size"]
    out = torch.empty((len(samples), len(prefixes), 3, side, side), dtype=torch.float32)

    def compute(sample: Sample) -> np.ndarray:
        images = []
        for f in prefixes:
            end = sample.onset + max(1, int(round(f * (sample.offset - sample.onset))))
            images.append(image_of(dataclasses.replace(sample, offset=end, apex=end)))
        return np.stack(images).astype(np.float32)

    for i, sample in enumerate(progress_bar(samples, desc=desc, disable=not progress)):
        arrays = cache.load_or_compute(sample, params, lambda s=sample: compute(s))
        out[i] = torch.from_numpy(np.ascontiguousarray(arrays.transpose(0, 3, 1, 2)))
    return out


class FuturePredictor(nn.Module):
    """:math:`g_\\phi`: a two-layer MLP per token, told how far ahead to predict by an added embedding.

    dim: the encoder's token width D; gaps: how many distinct distances (k - j) there are; hidden: its width.
    """

    def __init__(self, dim: int, gaps: int, hidden: int | None = None):
        super().__init__()
        self.gap_embedding = nn.Embedding(gaps, dim)
        nn.init.normal_(self.gap_embedding.weight, std=0.02)
        self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden or 2 * dim), nn.GELU(),
                                 nn.Linear(hidden or 2 * dim, dim))

    def forward(self, tokens: torch.Tensor, gap: torch.Tensor) -> torch.Tensor:
        """tokens ``(B, N, D)``, gap ``(B,)`` (0 for one prefix ahead) -> predicted target tokens ``(B, N, D)``."""
        return self.mlp(tokens + self.gap_embedding(gap)[:, None, :])


def patch_targets(images: torch.Tensor, tokens: int) -> tuple[torch.Tensor, int]:
    """The pixels of ``images`` ``(B, C, S, S)`` cut into the grid of the encoder's last ``g * g`` tokens (its
    spatial ones; any before them, a CLS token, have no patch), each patch normalised to mean 0 and variance 1:
    ``((B, g*g, C*p*p), number of leading non-spatial tokens)``."""
    grid = math.isqrt(tokens)
    side = images.shape[-1]
    if grid < 1 or side % grid:
        raise ValueError(f"cannot cut {side}-pixel images into the {grid} x {grid} grid of {tokens} tokens")
    p = side // grid
    patches = images.unfold(2, p, p).unfold(3, p, p)  # (B, C, g, g, p, p)
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(len(images), grid * grid, -1)
    mean, var = patches.mean(-1, keepdim=True), patches.var(-1, keepdim=True)
    return (patches - mean) / (var + 1e-6).sqrt(), tokens - grid * grid


def global_target(images: torch.Tensor, tokens: int) -> torch.Tensor:
    """For the encoder's leading, non-spatial tokens (CLS): the whole of ``images`` ``(B, C, S, S)`` shrunk to the
    size of one patch of :func:`patch_targets`, normalised as a patch is: ``(B, leading, C * p * p)``."""
    grid = math.isqrt(tokens)
    side = images.shape[-1] // grid
    small = nn.functional.adaptive_avg_pool2d(images, side).flatten(1)
    small = (small - small.mean(-1, keepdim=True)) / (small.var(-1, keepdim=True) + 1e-6).sqrt()
    return small[:, None, :].expand(-1, tokens - grid * grid, -1)


def future_prediction_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """:math:`\\mathcal{L}`: one minus the cosine similarity per token, averaged; the target is layer-normed and
    carries no gradient."""
    target = nn.functional.layer_norm(target.detach(), target.shape[-1:])
    return (1.0 - nn.functional.cosine_similarity(predicted, target, dim=-1)).mean()


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """:math:`\\bar\\theta \\leftarrow m\\bar\\theta + (1-m)\\theta` for every parameter (buffers copied)."""
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.mul_(momentum).add_(s.detach(), alpha=1.0 - momentum)
    for t, s in zip(teacher.buffers(), student.buffers()):
        t.copy_(s)


def ema_momentum(step: int, total: int, start: float) -> float:
    """The moving average's momentum at ``step`` of ``total``: ``start`` rising to 1 on a half cosine."""
    return 1.0 - (1.0 - start) * (math.cos(math.pi * step / max(total, 1)) + 1.0) / 2.0


def copy_forecast(early: torch.Tensor, target: str, tokens: int,
                  encode: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """The forecast "nothing changes": the later prefix will look as the early one does. For ``"pixels"`` the
    early prefixes' own patch targets (:func:`global_target` for the leading tokens, then :func:`patch_targets`),
    for ``"latent"`` their tokens under ``encode`` (the moving copy). ``early`` ``(B, 3, S, S)`` -> ``(B, N, D')``.
    A trained predictor that does not beat it has learned nothing about where motion goes."""
    if target == "pixels":
        return torch.cat([global_target(early, tokens), patch_targets(early, tokens)[0]], dim=1)
    return as_tokens(encode(early))


def train_future_prediction(
    encoder: nn.Module,
    encode: Callable[[nn.Module, torch.Tensor], torch.Tensor],
    prefixes: torch.Tensor,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    ema_start: float = 0.99,
    pairs: Sequence[tuple[int, int]] = PAIRS,
    target: str = "latent",
    labels: torch.Tensor | None = None,
    label_weight: float = 1.0,
    held_out: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Pre-train ``encoder`` in place by macro-to-micro future prediction; return its history (below).

    encoder: the network being pre-trained; ``encode(module, images)`` runs it (or its moving copy) on
        normalised images ``(B, 3, S, S)`` and returns tokens or a feature map.
    prefixes: :func:`prefix_dynamic_images` of the corpus, ``(N, P, 3, S, S)``, already normalised as the encoder
        expects. Every clip gives one example per pair and epoch.
    epochs, batch_size, lr, weight_decay: AdamW with a one-cycle schedule over the encoder and the predictor.
    seed: the order of the examples and the predictor's initial weights.
    target: ``"latent"`` (the moving copy's tokens) or ``"pixels"`` (:func:`patch_targets`, mean squared error).
    labels: ``"ma2mi+au"`` only: multi-label targets ``(N, A)`` in {0, 1} that a linear head on the early prefix's
        first token learns to detect (binary cross-entropy, weighted by ``label_weight``); None reads no label.
    held_out: prefixes ``(M, P, 3, S, S)`` of clips never trained on (other subjects), normalised as ``prefixes``:
        after every epoch the prediction loss on them is measured (every pair, no gradient, eval mode), and once at
        the end the loss of the forecast "nothing changes" (:func:`copy_forecast`), the yardstick a network that
        learned where motion goes must beat. Scoring draws no random number, so the weights do not depend on it.

    Returns ``{"train_loss": [per epoch]}`` (with ``labels``, the AU term included), and with ``held_out`` also
    ``"held_out_loss"`` (per epoch, the prediction term alone) and ``"held_out_copy_loss"`` (a float).
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {list(TARGETS)}, got {target!r}")
    device = torch.device(device)
    torch.manual_seed(seed)
    teacher = copy.deepcopy(encoder).to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        _, tokens, dim = as_tokens(encode(teacher, prefixes[:1, 0].to(device))).shape
    gaps = sorted({k - j for j, k in pairs})
    predictor = FuturePredictor(dim, len(gaps)).to(device)
    if target == "pixels":
        pixels, skip = patch_targets(prefixes[:1, 0], tokens)
        predictor.mlp.append(nn.Linear(dim, pixels.shape[-1]).to(device))  # tokens -> a patch's pixels
    examples = np.array([(i, j, k) for i in range(len(prefixes)) for j, k in pairs], dtype=np.int64)
    head = nn.Linear(dim, labels.shape[1]).to(device) if labels is not None else None
    params = list(encoder.parameters()) + list(predictor.parameters()) + (list(head.parameters()) if head else [])
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    steps_per_epoch = -(-len(examples) // batch_size)
    total = epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, lr, total_steps=total)
    generator = torch.Generator().manual_seed(seed)
    gap_index = {g: n for n, g in enumerate(gaps)}

    def pairs_of(images: torch.Tensor, batch: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The early prefixes, the later ones and the gap index of a batch of ``(clip, j, k)`` examples."""
        clips, early, later = (torch.as_tensor(batch[:, c]) for c in range(3))
        gap = torch.as_tensor([gap_index[int(g)] for g in (later - early)], device=device)
        return images[clips, early].to(device), images[clips, later].to(device), gap

    def prediction_loss(predicted: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """The loss of a forecast ``(B, N, D')`` of the later prefixes ``future`` (the target chosen above)."""
        if target == "pixels":
            loss = nn.functional.mse_loss(predicted[:, skip:], patch_targets(future, tokens)[0])
            if skip:  # the leading tokens (CLS) predict the whole later prefix, shrunk to one patch's size
                loss = loss + nn.functional.mse_loss(predicted[:, :skip], global_target(future, tokens))
            return loss
        with torch.no_grad():
            goal = as_tokens(encode(teacher, future))
        return future_prediction_loss(predicted, goal)

    @torch.no_grad()
    def held_out_loss(forecast: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
        """The mean prediction loss of ``forecast(early, gap)`` over every held-out clip and pair."""
        trained = encoder.training
        encoder.eval()
        predictor.eval()
        unseen = np.array([(i, j, k) for i in range(len(held_out)) for j, k in pairs], dtype=np.int64)
        total = 0.0
        for start in range(0, len(unseen), batch_size):
            context, future, gap = pairs_of(held_out, unseen[start : start + batch_size])
            total += prediction_loss(forecast(context, gap), future).item() * len(context)
        encoder.train(trained)
        predictor.train()
        return total / len(unseen)

    def network_forecast(context: torch.Tensor, gap: torch.Tensor) -> torch.Tensor:
        return predictor(as_tokens(encode(encoder, context)), gap)

    history: dict[str, Any] = {"train_loss": []}
    if held_out is not None:
        history["held_out_loss"] = []
    step = 0
    for _ in progress_bar(range(epochs), desc="pre-training the backbone (macro to micro)", disable=not progress):
        encoder.train()
        order = examples[torch.randperm(len(examples), generator=generator).numpy()]
        running = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            context, future, gap = pairs_of(prefixes, batch)
            context_tokens = as_tokens(encode(encoder, context))
            loss = prediction_loss(predictor(context_tokens, gap), future)
            if head is not None:  # "ma2mi+au": which action units move, seen from the early prefix
                detected = head(context_tokens[:, 0])
                loss = loss + label_weight * nn.functional.binary_cross_entropy_with_logits(
                    detected, labels[torch.as_tensor(batch[:, 0])].to(device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            step += 1
            if target == "latent":
                ema_update(teacher, encoder, ema_momentum(step, total, ema_start))
            running += loss.item() * len(batch)
        history["train_loss"].append(running / len(order))
        if held_out is not None:
            history["held_out_loss"].append(held_out_loss(network_forecast))
    if held_out is not None:
        history["held_out_copy_loss"] = held_out_loss(
            lambda context, gap: copy_forecast(context, target, tokens, lambda x: encode(teacher, x)))
    return history
