"""Turning samples into model inputs once: clip -> dynamic image + magnified clip, cached.

Rank pooling and magnification are computed once per clip and parameter set, stored in an
:class:`~mpt_utils.data.ArrayCache`, and shared by every fold and epoch (and by later runs).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import TrainConfig
from ..data import ArrayCache, Sample, read_clip
from ..motion import magnify, rank_pool, scale_dynamic_image
from ..runtime import progress_bar, work_dir


def default_cache_dir() -> Path:
    """``$MPT_CACHE_DIR``, else ``data/cache`` in the working folder (:func:`work_dir`)."""
    if os.environ.get("MPT_CACHE_DIR"):
        return Path(os.environ["MPT_CACHE_DIR"])
    return work_dir() / "data" / "cache"


@dataclass
class ModelInputs:
    """The whole dataset as tensors, kept on the CPU (each batch is pinned on its way to a GPU).

    dynamic: ``(N, 3, S, S)`` float32 in [0, 1], the min-max scaled dynamic images.
    magnified: ``(N, T, 3, S, S)`` uint8, the magnified clips.
    """

    dynamic: torch.Tensor
    magnified: torch.Tensor

    def __len__(self) -> int:
        return self.dynamic.shape[0]

    def batch(self, indices: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(dynamic, magnified)`` of ``indices`` on ``device``.

        On CUDA the gathered batch is pinned first: ``index_select`` returns ordinary (pageable) memory, from
        which a ``non_blocking`` copy would silently be synchronous.
        """
        idx = torch.as_tensor(indices, dtype=torch.long)
        cuda = device.type == "cuda"
        tensors = (self.dynamic.index_select(0, idx), self.magnified.index_select(0, idx))
        return tuple((t.pin_memory() if cuda else t).to(device, non_blocking=cuda) for t in tensors)


def motion_inputs(sample: Sample, config: TrainConfig, cache: ArrayCache | None = None) -> dict[str, np.ndarray]:
    """Dynamic image ``(S, S, 3)`` float32 in [0, 1] and magnified clip ``(T, S, S, 3)`` uint8."""
    params = {"what": "motion", "T": config.num_frames, "size": config.image_size, **config.magnify_kwargs(),
              "scaling": config.dynamic_scaling}

    def compute() -> dict[str, np.ndarray]:
        clip = read_clip(sample, config.num_frames, config.image_size, cache=cache)
        dynamic = scale_dynamic_image(rank_pool(clip), config.dynamic_scaling)
        if config.alpha == 0 or config.num_frames < 2:
            magnified = clip
        else:
            magnified = magnify(clip, sample=sample, **config.magnify_kwargs())
        return {"dynamic": dynamic, "magnified": magnified}

    return compute() if cache is None else cache.load_or_compute(sample, params, compute)


def dynamic_images(
    samples: Sequence[Sample],
    image_size: int,
    num_frames: int,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Only the dynamic images ``(N, 3, S, S)`` float32 in [0, 1], cached; the clips are not kept.

    For work that never looks at the magnified clip (the backbone pre-training): it neither stores
    the ``(N, T, 3, S, S)`` clip tensor in memory nor writes the clips to the cache.
    """
    cache = ArrayCache(cache_dir or default_cache_dir())
    params = {"what": "dynamic", "T": num_frames, "size": image_size}
    out = torch.empty((len(samples), 3, image_size, image_size), dtype=torch.float32)
    for i, sample in enumerate(progress_bar(samples, desc="dynamic images", disable=not progress)):
        image = cache.load_or_compute(
            sample, params, lambda s=sample: scale_dynamic_image(rank_pool(read_clip(s, num_frames, image_size)))
        )
        out[i] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
    return out


def prepare_inputs(
    samples: Sequence[Sample],
    config: TrainConfig,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> ModelInputs:
    """Preprocess every sample (cached) and stack them as :class:`ModelInputs`."""
    cache = ArrayCache(cache_dir or default_cache_dir())
    n, s, t = len(samples), config.image_size, config.num_frames
    dynamic = torch.empty((n, 3, s, s), dtype=torch.float32)
    magnified = torch.empty((n, t, 3, s, s), dtype=torch.uint8)
    for i, sample in enumerate(progress_bar(samples, desc="preprocessing clips", disable=not progress)):
        arrays = motion_inputs(sample, config, cache)
        dynamic[i] = torch.from_numpy(np.ascontiguousarray(arrays["dynamic"].transpose(2, 0, 1)))
        magnified[i] = torch.from_numpy(np.ascontiguousarray(arrays["magnified"].transpose(0, 3, 1, 2)))
    return ModelInputs(dynamic, magnified)
