"""Creating the frozen timm ViT, with pretrained weights from the hub or from a local file.

``weights=PATH`` goes through exactly the code path a hub download takes: timm's
``load_pretrained`` with the file set in the model's pretrained config, so the same checkpoint
filter (position-embedding resampling, head removal) runs on it. When pretrained weights were
asked for and cannot be loaded we raise :class:`PretrainedWeightsError`; we never continue with
random weights silently.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import timm
import torch
from timm.models.vision_transformer import VisionTransformer

from ..config import PAPER


class PretrainedWeightsError(RuntimeError):
    """Pretrained weights were requested but could not be loaded."""


def weights_help(name: str) -> str:
    """How a user gets the pretrained weights of ``name`` onto a machine without the hub."""
    hub = _hub_file(name)
    hub_id = hub[0] if hub else None
    where = f"https://huggingface.co/{hub_id}" if hub_id else "the timm model hub"
    return (
        f"The weights of {name} come from {where}. On a machine with internet access timm "
        "downloads them by itself. Offline: download them once elsewhere, e.g. "
        f"`huggingface-cli download {hub_id or 'timm/' + name} model.safetensors --local-dir weights/`, "
        "copy the file here and pass weights='weights/model.safetensors' (command lines: --weights). "
        "For a timing run without them use pretrained=False (--no-pretrained): the results then "
        "say they come from a random backbone."
    )


def checkpoint_file(name: str, weights: str | Path) -> Path:
    """``weights`` as an existing file (``~`` expanded); raises :class:`PretrainedWeightsError` with the
    instructions for getting ``name``'s weights when there is no such file."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise PretrainedWeightsError(f"weights file {path} does not exist. {weights_help(name)}")
    return path


def _hub_file(name: str) -> tuple[str, str] | None:
    """``(repository, file name)`` of ``name``'s weights on the Hugging Face hub, or None if it has none."""
    cfg = timm.models.get_pretrained_cfg(name)
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    return (hub_id, getattr(cfg, "hf_hub_filename", None) or "model.safetensors") if hub_id else None


def _hub_reachable(timeout_s: float = 5.0) -> bool:
    """One request to the hub's address, no retries: True when it answers at all."""
    import urllib.error
    import urllib.request

    from huggingface_hub import constants

    try:
        urllib.request.urlopen(urllib.request.Request(constants.ENDPOINT, method="HEAD"), timeout=timeout_s)
    except urllib.error.HTTPError:
        return True  # it answered, even if with an error code
    except (OSError, ValueError):
        return False
    return True


def require_hub_weights(name: str) -> None:
    """Make sure ``name``'s pretrained weights can be had *before* any data work: in the local Hugging Face
    cache, or downloaded now. Fails at once with :class:`PretrainedWeightsError` and the offline instructions
    when the hub is unreachable (``HF_HUB_OFFLINE`` set, or one request without an answer): no retries.
    """
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    hub = _hub_file(name)
    if hub is None:
        raise PretrainedWeightsError(f"{name} has no pretrained weights on the hub. {weights_help(name)}")
    if isinstance(try_to_load_from_cache(*hub), str):
        return
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        raise PretrainedWeightsError(f"the hub is switched off here (HF_HUB_OFFLINE). {weights_help(name)}")
    if not _hub_reachable():
        raise PretrainedWeightsError(f"the hub ({constants.ENDPOINT}) cannot be reached from here. "
                                     f"{weights_help(name)}")
    try:
        hf_hub_download(*hub)
    except Exception as exc:
        raise PretrainedWeightsError(f"could not download {hub[0]}/{hub[1]}: {type(exc).__name__}: {exc}. "
                                     f"{weights_help(name)}") from exc


def create_backbone(
    name: str,
    pretrained: bool = PAPER.pretrained,
    weights: str | Path | None = None,
    img_size: int = PAPER.image_size,
    **kwargs: Any,
) -> VisionTransformer:
    """A timm :class:`VisionTransformer` without classifier head (``num_classes=0``).

    Parameters
    ----------
    name: timm model name, e.g. ``"vit_base_patch16_224.augreg_in21k"``,
        ``"vit_base_patch16_clip_224.openai"`` or ``"vit_tiny_patch16_224"``.
    pretrained: load pretrained weights (from ``weights`` if given, else the hub).
    weights: a local checkpoint (``.safetensors``, ``.pth``/``.bin`` state dict, or Google's
        ``.npz``); implies ``pretrained=True``.
    img_size: input resolution; timm resamples the position embeddings of a checkpoint made at
        another resolution.
    kwargs: passed to ``timm.create_model`` (e.g. ``depth=2`` for tiny test models).
    """
    overlay = None
    if weights is not None:
        path = checkpoint_file(name, weights)
        overlay = {"file": str(path), "custom_load": path.suffix == ".npz", "source": ""}
        pretrained = True
    try:
        model = timm.create_model(
            name,
            pretrained=pretrained,
            num_classes=0,
            img_size=img_size,
            pretrained_cfg_overlay=overlay,
            **kwargs,
        )
    except Exception as exc:
        if not pretrained:
            raise
        raise PretrainedWeightsError(
            f"could not load pretrained weights for {name}: {type(exc).__name__}: {exc}. "
            + weights_help(name)
        ) from exc
    if not isinstance(model, VisionTransformer):
        raise TypeError(f"{name} is a {type(model).__name__}; MPT needs a timm VisionTransformer")
    return model


def normalisation(backbone: VisionTransformer) -> tuple[torch.Tensor, torch.Tensor]:
    """The backbone's input mean and std, shape ``(3,)`` each (CLIP models have their own)."""
    cfg = backbone.pretrained_cfg or {}
    mean = torch.tensor(cfg.get("mean", (0.5, 0.5, 0.5)), dtype=torch.float32)
    std = torch.tensor(cfg.get("std", (0.5, 0.5, 0.5)), dtype=torch.float32)
    return mean, std
