"""Turning samples into model inputs once: clip -> dynamic image + magnified clip (MPT), or its onset and apex
frames (the two-branch network), cached.

Rank pooling and magnification are computed once per clip and parameter set, stored in an
:class:`~mpt_utils.data.ArrayCache`, and shared by every fold and epoch (and by later runs).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import TrainConfig
from ..data import ArrayCache, Sample, read_clip, read_key_frame
from ..model import input_names
from ..motion import magnify, rank_pool, scale_dynamic_image
from ..runtime import progress_bar, work_dir


def default_cache_dir() -> Path:
    """``$MPT_CACHE_DIR``, else ``data/cache`` in the working folder (:func:`work_dir`)."""
    if os.environ.get("MPT_CACHE_DIR"):
        return Path(os.environ["MPT_CACHE_DIR"])
    return work_dir() / "data" / "cache"


@dataclass
class ModelInputs:
    """The whole dataset as the tensors a model reads, by name, in the model's order (its ``input_names``), kept
    on the CPU (each batch is pinned on its way to a GPU).

    ``"dynamic"`` ``(N, 3, S, S)`` float32 in [0, 1], the min-max scaled dynamic images; ``"magnified"``
    ``(N, T, 3, S, S)`` uint8, the magnified clips (MPT); ``"onset"``, ``"apex"`` ``(N, 3, S, S)`` uint8, the
    coded key frames (the two-branch network).
    """

    tensors: dict[str, torch.Tensor]

    def __len__(self) -> int:
        return next(iter(self.tensors.values())).shape[0]

    @property
    def dynamic(self) -> torch.Tensor:
        return self.tensors["dynamic"]

    @property
    def magnified(self) -> torch.Tensor:
        return self.tensors["magnified"]

    def batch(self, indices: np.ndarray, device: torch.device) -> tuple[torch.Tensor, ...]:
        """The tensors of ``indices`` on ``device``, in the model's order: ``model(*inputs.batch(...))``.

        On CUDA the gathered batch is pinned first: ``index_select`` returns ordinary (pageable) memory, from
        which a ``non_blocking`` copy would silently be synchronous.
        """
        idx = torch.as_tensor(indices, dtype=torch.long)
        cuda = device.type == "cuda"
        tensors = (t.index_select(0, idx) for t in self.tensors.values())
        return tuple((t.pin_memory() if cuda else t).to(device, non_blocking=cuda) for t in tensors)


def _motion_key(config: TrainConfig) -> dict[str, Any]:
    return {"what": "motion", "T": config.num_frames, "size": config.image_size, **config.magnify_kwargs(),
            "scaling": config.dynamic_scaling}


def _key_frames_key(config: TrainConfig) -> dict[str, Any]:
    return {"what": "key frames", "size": config.image_size}


def _reads_key_frames(config: TrainConfig) -> bool:
    """Whether ``config``'s model reads the onset and apex frames (the two-branch network), not motion inputs."""
    return input_names(config.variant) == ("onset", "apex")


def preprocessing_key(config: TrainConfig) -> dict[str, Any]:
    """Every setting the cached inputs of ``config``'s model depend on (the cache's parameters): two runs with the
    same key read the same preprocessed arrays."""
    return _key_frames_key(config) if _reads_key_frames(config) else _motion_key(config)


def motion_inputs(sample: Sample, config: TrainConfig, cache: ArrayCache | None = None) -> dict[str, np.ndarray]:
    """Dynamic image ``(S, S, 3)`` float32 in [0, 1] and magnified clip ``(T, S, S, 3)`` uint8."""
    params = _motion_key(config)

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


def key_frames(sample: Sample, config: TrainConfig, cache: ArrayCache | None = None) -> dict[str, np.ndarray]:
    """The onset and apex frames ``(S, S, 3)`` uint8, read as the clips are (:func:`~mpt_utils.data.read_key_frame`)."""
    params = _key_frames_key(config)

    def compute() -> dict[str, np.ndarray]:
        return {which: read_key_frame(sample, which, config.image_size) for which in ("onset", "apex")}

    return compute() if cache is None else cache.load_or_compute(sample, params, compute)


def prepare_inputs(
    samples: Sequence[Sample],
    config: TrainConfig,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> ModelInputs:
    """Preprocess every sample (cached) into the inputs ``config.variant``'s model reads, as :class:`ModelInputs`:
    the dynamic image and magnified clip (MPT), or the onset and apex frames (the two-branch network)."""
    cache = ArrayCache(cache_dir or default_cache_dir())
    n, s, t = len(samples), config.image_size, config.num_frames
    if _reads_key_frames(config):
        tensors = {name: torch.empty((n, 3, s, s), dtype=torch.uint8) for name in input_names(config.variant)}
        read = key_frames
    else:
        tensors = {"dynamic": torch.empty((n, 3, s, s), dtype=torch.float32),
                   "magnified": torch.empty((n, t, 3, s, s), dtype=torch.uint8)}
        read = motion_inputs
    for i, sample in enumerate(progress_bar(samples, desc="preprocessing clips", disable=not progress)):
        arrays = read(sample, config, cache)
        for name, tensor in tensors.items():  # (..., S, S, 3) -> (..., 3, S, S)
            tensor[i] = torch.from_numpy(np.ascontiguousarray(np.moveaxis(arrays[name], -1, -3)))
    return ModelInputs(tensors)
