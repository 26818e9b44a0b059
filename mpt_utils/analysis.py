"""Looking inside trained models: CLS features, t-SNE and Grad-CAM (the paper's Figs. 8 and 9), and Grad-CAM
scored against the synthetic set's ground-truth action-unit masks.

Grad-CAM for a ViT with prompts: the target layer is the last block's first norm layer; its
output ``A`` has one row per token ``[CLS, p_1..p_K, v_1..v_N]``. Only the ``N`` patch rows form
the map; CLS and the K prompts are skipped, so they can never leak into it::

    weights_c = mean over patches of dScore/dA[patch, c]        (B, D)
    cam       = ReLU( sum_c weights_c * A[patch, c] )            (B, N) -> (B, gh, gw)
    upsampled to the input size, scaled to [0, 1] per image      (B, H, W)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .data import Sample
from .model import MPT, TwoBranchNet
from .train import (
    FoldContext,
    RunFolder,
    TrainConfig,
    fit_fold,
    fold_done,
    fold_of,
    load_run_config,
    predict,
    prepare_inputs,
    run_template,
)

# --- features and t-SNE --------------------------------------------------------------------------


def extract_features(
    model: MPT,
    samples: Sequence[Sample],
    config: TrainConfig,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Final CLS features ``(N, D)``, logits ``(N, C)`` and predictions ``(N,)`` of ``model``.

    Inputs are preprocessed as in training (cached). For the LOSO t-SNE prefer the held-out
    features a training run saved (:attr:`LOSOResult.features`): there every sample is embedded
    by the fold model that never saw it.
    """
    from .runtime import select_precision

    device = torch.device(device)
    inputs = prepare_inputs(samples, config, cache_dir, progress=progress)
    model = model.to(device)
    logits, features = predict(model, inputs, np.arange(len(samples)), batch_size, device,
                               select_precision(device, "fp32"))
    return {"features": features, "logits": logits, "predictions": logits.argmax(1)}


def tsne(features: np.ndarray, seed: int = 0, perplexity: float | None = None) -> np.ndarray:
    """2-D t-SNE embedding ``(N, 2)`` of ``features`` ``(N, D)``; reproducible for a seed.

    ``perplexity`` defaults to ``min(30, (N - 1) / 3)`` (at least 1), so tiny sets work.
    """
    from sklearn.manifold import TSNE

    features = np.asarray(features, dtype=np.float64)
    n = len(features)
    if n < 3:
        raise ValueError(f"t-SNE needs at least 3 points, got {n}")
    if perplexity is None:
        perplexity = max(1.0, min(30.0, (n - 1) / 3.0))
    if perplexity >= n:
        raise ValueError(f"perplexity ({perplexity}) must be below the number of points ({n})")
    return TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                random_state=seed).fit_transform(features)


def plot_tsne(embedding: np.ndarray, labels: Sequence[str], classes: Sequence[str],
              markers: Sequence[str] | None = None, ax=None, title: str = ""):
    """Scatter an embedding ``(N, 2)`` coloured by class; ``markers`` (e.g. each clip's subject) picks the marker
    shape. Legends: one entry per class that has points (its colour), and with ``markers`` one per marker value
    (its shape, in grey), so every encoding is explained. Returns ``ax``."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    ax = ax or plt.gca()
    labels = np.asarray(labels)
    groups = np.asarray(markers) if markers is not None else np.full(len(labels), "")
    shapes = "o^sDvP*Xh<>p"
    marker_of = {m: shapes[i % len(shapes)] for i, m in enumerate(sorted(set(groups)))}
    colour_of = {cls: plt.get_cmap("tab10")(i % 10) for i, cls in enumerate(classes)}
    for cls in classes:
        for m, shape in marker_of.items():
            mask = (labels == cls) & (groups == m)
            if mask.any():
                ax.scatter(*embedding[mask].T, s=18, color=colour_of[cls], marker=shape, alpha=0.8)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    present = [cls for cls in classes if (labels == cls).any()]
    class_legend = ax.legend([Line2D([], [], ls="", marker="o", color=colour_of[c]) for c in present], present,
                             title="class", fontsize=7, title_fontsize=7, loc="upper left",
                             bbox_to_anchor=(1.0, 1.0))
    if markers is not None:
        ax.add_artist(class_legend)
        ax.legend([Line2D([], [], ls="", marker=shape, color="0.4") for shape in marker_of.values()],
                  list(marker_of), title="subject", fontsize=6, title_fontsize=7, loc="lower left",
                  bbox_to_anchor=(1.0, 0.0), ncol=2 if len(marker_of) > 6 else 1)
    return ax


# --- Grad-CAM ------------------------------------------------------------------------------------


def _target_layer(model: nn.Module) -> nn.Module:
    """The last block's first norm layer of an MPT model or a plain timm ViT."""
    last = model.blocks[-1]
    return last.block.norm1 if hasattr(last, "block") else last.norm1


def grad_cam(
    model: nn.Module,
    dynamic_image: torch.Tensor,
    magnified_clip: torch.Tensor | None = None,
    target: int | Sequence[int] | None = None,
) -> np.ndarray:
    """Grad-CAM maps ``(B, H, W)`` in [0, 1] for an :class:`MPT` model or a plain timm ViT.

    Parameters
    ----------
    model: MPT (called as ``model(dynamic_image, magnified_clip)``) or a timm VisionTransformer
        with a classifier head (called as ``model(dynamic_image)``).
    dynamic_image: ``(B, 3, H, W)``, the model's usual input.
    magnified_clip: ``(B, T, 3, H, W)`` for MPT variants with motion prompts.
    target: class index per image (or one for all); ``None``: the predicted class.
    """
    layer = _target_layer(model)
    captured: dict[str, torch.Tensor] = {}

    def hook(_module, _inputs, output):
        if not output.requires_grad:  # a fully frozen model: make the activations a leaf
            output = output.detach().requires_grad_(True)
        captured["activations"] = output
        return output

    handle = layer.register_forward_hook(hook)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            logits = model(dynamic_image, magnified_clip) if isinstance(model, MPT) else model(dynamic_image)
            if target is None:
                idx = logits.argmax(dim=1)
            else:
                idx = torch.as_tensor(target, device=logits.device).expand(logits.shape[0])
            score = logits.gather(1, idx.view(-1, 1)).sum()
            activations = captured["activations"]
            (grads,) = torch.autograd.grad(score, activations)
    finally:
        handle.remove()
        model.train(was_training)
    skip = model.num_prefix_tokens + (model.num_prompts if isinstance(model, MPT) else 0)
    patch_grid = (model.backbone if isinstance(model, MPT) else model).patch_embed.grid_size
    a, g = activations[:, skip:].detach(), grads[:, skip:]
    if a.shape[1] != patch_grid[0] * patch_grid[1]:
        raise RuntimeError(f"expected {patch_grid[0] * patch_grid[1]} patch tokens, got {a.shape[1]}")
    cam = cam_from_tokens(a, g).view(-1, 1, *patch_grid)
    cam = F.interpolate(cam.float(), size=dynamic_image.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return normalise_maps(cam).cpu().numpy()


def cam_from_tokens(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """Grad-CAM on tokens: ``(B, N, D)`` activations of the N patch tokens and the class score's gradients with
    respect to them -> the map ``(B, N)``, one value per patch, before upsampling and scaling.

    Each of the D channels is weighted by its gradient averaged over the patches; the map is the ReLU of the
    weighted sum of the channels (Selvaraju et al. 2017, with tokens in place of a CNN's spatial positions).
    """
    weights = gradients.mean(dim=1, keepdim=True)  # (B, 1, D): alpha_k, the average gradient of channel k
    return F.relu((weights * activations).sum(dim=-1))  # (B, N): ReLU(sum_k alpha_k A^k)


@torch.no_grad()
def attention_maps(model: TwoBranchNet, onset: torch.Tensor, apex: torch.Tensor) -> np.ndarray:
    """The two-branch network's own spatial attention ``a`` (the weights that pool its fused map), upsampled from
    its ``g x g`` cells to the frames' size and scaled to [0, 1] per clip: ``(B, S, S)``. It plays the part
    Grad-CAM plays for the ViT: where the network looked for its answer."""
    was_training = model.training
    model.eval()
    try:
        cells = model.attention(model.forward_features(onset, apex)).unsqueeze(1)  # (B, 1, g, g)
    finally:
        model.train(was_training)
    maps = F.interpolate(cells.float(), size=onset.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return normalise_maps(maps).cpu().numpy()


def evidence_maps(model: nn.Module, *inputs: torch.Tensor) -> np.ndarray:
    """Where a trained model looked, ``(B, S, S)`` in [0, 1]: Grad-CAM for MPT (:func:`grad_cam`, its inputs the
    dynamic image and the magnified clip), the spatial attention for the two-branch network
    (:func:`attention_maps`, its inputs the onset and apex frames)."""
    if isinstance(model, TwoBranchNet):
        return attention_maps(model, *inputs)
    return grad_cam(model, *inputs)


def normalise_maps(cam: torch.Tensor) -> torch.Tensor:
    """Scale each map ``(B, H, W)`` to [0, 1] (an all-zero map stays zero)."""
    flat = cam.flatten(1)
    lo = flat.min(dim=1).values.view(-1, 1, 1)
    span = (flat.max(dim=1).values.view(-1, 1, 1) - lo).clamp_min(1e-12)
    return (cam - lo) / span


#: The colour map :func:`overlay` draws Grad-CAM maps with (0: no evidence, 1: the map's maximum).
CAM_COLORMAP = "jet"


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a map ``(H, W)`` in [0, 1] over an RGB image ``(H, W, 3)``; returns uint8."""
    import matplotlib

    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(np.asarray(image) * 255.0, 0, 255).astype(np.uint8)
    heat = (matplotlib.colormaps[CAM_COLORMAP](np.clip(cam, 0, 1))[..., :3] * 255).astype(np.float32)
    return np.clip((1 - alpha) * image.astype(np.float32) + alpha * heat, 0, 255).astype(np.uint8)


# --- Grad-CAM scored against where the face moves ------------------------------------------------


def _check_map_and_mask(cam: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cam, mask = np.asarray(cam, dtype=np.float64), np.asarray(mask, dtype=bool)
    if cam.ndim != 2 or cam.shape != mask.shape:
        raise ValueError(f"cam and mask must be 2-D and the same shape, got {cam.shape} and {mask.shape}; "
                         "resize the ground truth to the model's input first (GroundTruth.resized)")
    if (cam < 0).any():
        raise ValueError("a Grad-CAM map is non-negative (it passed a ReLU); got negative values")
    return cam, mask


def _grown(mask: np.ndarray, tolerance_px: int) -> np.ndarray:
    """``mask`` grown by ``tolerance_px`` pixels in every direction (a disc), as bool."""
    import cv2

    if not tolerance_px:
        return mask
    side = 2 * tolerance_px + 1
    return cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))) > 0


def cam_in_mask(cam: np.ndarray, mask: np.ndarray) -> float:
    """The fraction of the map's mass inside the mask: ``sum(cam * mask) / sum(cam)``.

    cam: ``(H, W)``, non-negative (a Grad-CAM map). mask: ``(H, W)`` bool, e.g. ``GroundTruth.au_mask`` resized to
    the map. A map with all its mass inside gives 1.0, all outside 0.0; a map spread evenly gives the mask's area
    fraction, which is therefore this score's chance level. An all-zero map has no mass to place: NaN.
    """
    cam, mask = _check_map_and_mask(cam, mask)
    total = cam.sum()
    return float(cam[mask].sum() / total) if total > 0 else float("nan")


def pointing_game(cam: np.ndarray, mask: np.ndarray, tolerance_px: int = 0) -> bool:
    """Does the map's maximum fall inside the mask, grown by ``tolerance_px`` pixels in every direction?

    The classic "pointing game" of saliency evaluation; ties for the maximum count as a hit when any of them is
    inside. An empty mask has nothing to point at, and a flat map (all zero, say) points nowhere: ValueError for
    both (counting a flat map's tied pixels would make it a hit on every clip).
    """
    cam, mask = _check_map_and_mask(cam, mask)
    if tolerance_px < 0:
        raise ValueError(f"tolerance_px must be at least 0, got {tolerance_px}")
    if not mask.any():
        raise ValueError("the mask is empty: there is nothing to point at (a clip without action units?)")
    if cam.max() == cam.min():
        raise ValueError("the map is flat (the same value everywhere): it has no maximum to point with")
    return bool(_grown(mask, tolerance_px)[cam == cam.max()].any())


def score_cams(
    out_dir: str | Path,
    samples: Sequence[Sample],
    tolerance_px: int = 4,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None = None,
    progress: bool = True,
):
    """Grad-CAM of every held-out clip of a LOSO run's finished folds, scored against the clip's ground-truth AU mask
    (for a run of the two-branch network, its spatial attention instead: :func:`evidence_maps`).

    Each clip's map comes from the fold model that held its subject out (:func:`load_fold_model`), for the
    predicted class, at the model's input size; the mask is the clip's :func:`~mpt_utils.data.load_ground_truth`
    ``au_mask`` resized to the same size. Needs ground truth, so synthetic data only.

    Returns a pandas table, one row per clip with an AU mask (clips whose mask is empty are left out):
    ``key``, ``subject``, ``label``, ``cam_in_mask``, ``pointing_game`` (1.0 hit, 0.0 miss) and the two chance
    levels, ``mask_area`` (the mask's area fraction: :func:`cam_in_mask` of a flat map) and ``pointing_chance``
    (the area fraction of the mask grown by ``tolerance_px``: the hit rate of a maximum placed at random).
    ``flat_map`` is True where Grad-CAM found no positive evidence anywhere (an all-zero map after its ReLU):
    such a map has no mass and no maximum, so both its scores are NaN. pandas' ``mean`` and
    :func:`~mpt_utils.metrics.mean_interval` leave NaN out; report how many maps were flat.
    """
    import pandas as pd

    from .data import load_ground_truth
    from .runtime import progress_bar

    out_dir = Path(out_dir)
    config = load_run_config(out_dir)
    size = config.image_size
    masks = {}
    for i, s in enumerate(samples):  # a clip without ground truth (real data) raises FileNotFoundError, naming it
        mask = load_ground_truth(s).resized(size, size).au_mask
        if mask.any():
            masks[i] = mask
    device = torch.device(device)
    inputs = prepare_inputs(samples, config, cache_dir, progress=False)
    rows = []
    subjects = sorted({samples[i].group for i in masks if fold_done(out_dir, samples[i].group)})
    if not subjects:
        raise RuntimeError(f"{out_dir} has no finished fold whose clips have an AU mask: run the LOSO run first")
    for subject in progress_bar(subjects, desc=f"Grad-CAM of {out_dir.name}", disable=not progress):
        model = load_fold_model(out_dir, subject, samples, cache_dir, progress=False).to(device)
        held_out = np.array([i for i in masks if samples[i].group == subject])
        for start in range(0, len(held_out), batch_size):
            chunk = held_out[start:start + batch_size]
            for i, cam in zip(chunk, evidence_maps(model, *inputs.batch(chunk, device))):
                s, mask = samples[i], masks[i]
                grown = _grown(mask, tolerance_px)  # grown once: the pointing game and its chance level
                flat = bool(cam.max() == cam.min())
                rows.append({"key": s.key, "subject": s.group, "label": s.label, "flat_map": flat,
                             "cam_in_mask": float("nan") if flat else cam_in_mask(cam, mask),
                             "pointing_game": float("nan") if flat else float(pointing_game(cam, grown)),
                             "mask_area": float(mask.mean()), "pointing_chance": float(grown.mean())})
    return pd.DataFrame(rows)


# --- models from a results folder ----------------------------------------------------------------


def load_fold_model(
    out_dir: str | Path, subject: str, samples: Sequence[Sample] | None = None,
    cache_dir: str | Path | None = None, progress: bool = True,
) -> nn.Module:
    """The trained model of one LOSO fold (MPT or the two-branch network), rebuilt from its saved trainable
    tensors.

    When the fold has no saved weights (a run made elsewhere, or deleted files), the fold is re-trained as the run
    trained it (``samples`` needed: the run's dataset): :func:`mpt_utils.train.fit_fold` with the run's settings,
    seed, validation split and thread count, so on the same machine its predictions are the run's. A message says
    so.
    """
    from safetensors.torch import load_file

    from .runtime import intra_op_threads

    out_dir = Path(out_dir)
    config = load_run_config(out_dir)
    weights = RunFolder(out_dir).fold(subject) / RunFolder.WEIGHTS
    if weights.exists():
        model = run_template(config)  # the run's initial weights, frozen tensors included: the saved ones go on it
        state = load_file(str(weights))
        _, unexpected = model.load_state_dict(state, strict=False)
        missing = sorted({n for n, p in model.named_parameters() if p.requires_grad} - set(state))
        if unexpected or missing:
            raise RuntimeError(f"{weights} does not match the run's model (missing {missing[:3]}, "
                               f"unexpected {unexpected[:3]})")
        return model.eval()
    if samples is None:
        raise FileNotFoundError(f"{weights} does not exist; pass the samples to re-train the fold")
    fold_no, train_idx, _ = fold_of(samples, subject)  # an unknown subject stops here, before any work
    print(f"No saved model for fold {subject} in {out_dir}: re-training it on its training subjects.")
    with intra_op_threads(config.threads):
        context = FoldContext.build(samples, config, cache_dir, progress)
        fitted = fit_fold(context, fold_no, subject, train_idx, progress=progress)
    return fitted.model.cpu().eval()
