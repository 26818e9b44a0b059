"""The MPT model: a frozen timm ViT fed ``[CLS, motion prompts, patches]``, with group adapters.

::

    dynamic image (B, 3, H, W) --patch embed + pos--> [CLS, v_1..v_N]            (B, 1+N, D)
    magnified clip (B, T, 3, H, W) --MotionPromptGenerator--> p_1..p_K           (B, K, D)
    sequence [CLS, p_1..p_K, v_1..v_N] --12 AdaptedBlocks--> final norm          (B, 1+K+N, D)
    CLS --Linear--> logits                                                       (B, classes)

Every ablation of the paper is a switch of this one class (see :data:`VARIANTS`): the kind of
prompt (``"motion"``, ``"vpt_shallow"``, ``"vpt_deep"``, ``"none"``), the kind of adapter
(``"group"``, ``"primitive"``, ``"none"``), and whether the backbone is frozen or fully tuned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import PAPER
from .adapters import AdaptedBlock, GroupAdapter
from .backbone import create_backbone, normalisation
from .prompts import MotionPromptGenerator

PROMPT_KINDS = ("motion", "vpt_shallow", "vpt_deep", "none")
ADAPTER_KINDS = ("group", "primitive", "none")


class MPT(nn.Module):
    """Motion Prompt Tuning on any timm VisionTransformer.

    Parameters
    ----------
    backbone: timm model name (ViT-B/16 and B/32, CLIP ViT-B/16 and B/32, or a small ViT).
    num_classes: output classes.
    num_prompts: K (0: no prompt tokens at all).
    reduction: adapter reduction r.
    pretrained, weights: see :func:`~mpt_utils.model.backbone.create_backbone`.
    img_size: input side in pixels.
    num_frames: T of the magnified clip.
    prompts: ``"motion"`` (MPT), ``"vpt_shallow"``/``"vpt_deep"`` (learned random prompts), ``"none"``.
    adapter: ``"group"`` (MPT), ``"primitive"`` (one shared branch), ``"none"``.
    train_backbone: fine-tune the whole backbone (Table VI's full fine-tuning rows).
    token_average: the group adapter's token-average reading (see :mod:`.adapters`).
    generator_channels: C, the motion prompt generator's feature width.
    generator_patch: the side of the generator's convolutional stem in pixels, the same for every backbone, so
        that a ViT-B/32 row compares backbones and not generator sizes (16: the paper's ViT-B/16 patch).
    backbone_kwargs: extra ``timm.create_model`` arguments (e.g. ``{"depth": 2}``).

    Inputs are float in [0, 1] (or uint8 0..255); the model normalises them with the backbone's
    own mean and std (:meth:`normalise`). As in timm, ``forward = forward_head(forward_features(...))``.
    """

    #: What the fold machinery feeds it, in order (:class:`~mpt_utils.train.ModelInputs`).
    input_names = ("dynamic", "magnified")

    def __init__(
        self,
        backbone: str = PAPER.backbone,
        num_classes: int = 5,
        num_prompts: int = PAPER.num_prompts,
        reduction: int = PAPER.reduction,
        pretrained: bool = PAPER.pretrained,
        weights: str | Path | None = PAPER.weights,
        img_size: int = PAPER.image_size,
        num_frames: int = PAPER.num_frames,
        prompts: str = "motion",
        adapter: str = "group",
        train_backbone: bool = False,
        token_average: bool = PAPER.token_average,
        generator_channels: int = PAPER.generator_channels,
        generator_patch: int = PAPER.generator_patch,
        backbone_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__()
        if prompts not in PROMPT_KINDS:
            raise ValueError(f"prompts must be one of {PROMPT_KINDS}, got {prompts!r}")
        if adapter not in ADAPTER_KINDS:
            raise ValueError(f"adapter must be one of {ADAPTER_KINDS}, got {adapter!r}")
        if num_prompts < 0:
            raise ValueError(f"num_prompts must be >= 0, got {num_prompts}")
        if prompts == "none" or num_prompts == 0:
            prompts, num_prompts = "none", 0
        self.prompt_kind, self.adapter_kind = prompts, adapter
        self.num_prompts, self.num_frames = num_prompts, num_frames

        self.backbone = create_backbone(
            backbone, pretrained=pretrained, weights=weights, img_size=img_size, **(backbone_kwargs or {})
        )
        dim, depth = self.backbone.embed_dim, len(self.backbone.blocks)
        self.num_prefix_tokens = self.backbone.num_prefix_tokens
        mean, std = normalisation(self.backbone)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)
        for p in self.backbone.parameters():
            p.requires_grad_(train_backbone)

        self.generator = None
        self.vpt_prompts = None
        if prompts == "motion":
            self.generator = MotionPromptGenerator(num_frames, num_prompts, dim, generator_channels, generator_patch)
        elif prompts.startswith("vpt"):
            # VPT's initialisation: uniform with the patch embedding's fan-in and fan-out
            patch = self.backbone.patch_embed.patch_size
            bound = math.sqrt(6.0 / float(3 * patch[0] * patch[1] + dim))
            layers = depth if prompts == "vpt_deep" else 1
            self.vpt_prompts = nn.Parameter(torch.empty(layers, num_prompts, dim).uniform_(-bound, bound))

        adapters = [self._make_adapter(dim, reduction, token_average) for _ in range(depth)]
        # the wrapped blocks share their parameters with backbone.blocks (no copy)
        self.blocks = nn.ModuleList(AdaptedBlock(b, a) for b, a in zip(self.backbone.blocks, adapters))
        self.head = nn.Linear(dim, num_classes)

    def _make_adapter(self, dim: int, reduction: int, token_average: bool) -> GroupAdapter | None:
        if self.adapter_kind == "none":
            return None
        return GroupAdapter(
            dim,
            reduction,
            num_prefix_tokens=self.num_prefix_tokens,
            num_prompts=self.num_prompts,
            shared=self.adapter_kind == "primitive",
            token_average=token_average,
        )

    # --- inputs ----------------------------------------------------------------------------------

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """``(..., 3, H, W)`` in [0, 1] (or uint8 0..255) -> float normalised with the backbone's mean and std."""
        if images.dtype == torch.uint8:
            images = images.float() / 255.0
        shape = images.shape
        flat = images.reshape(-1, *shape[-3:]).to(self.mean.dtype)
        return ((flat - self.mean) / self.std).reshape(shape)

    def prompt_tokens(self, magnified_clip: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        """The K prompt tokens ``(B, K, D)`` for the first block (None without prompts)."""
        if self.prompt_kind == "motion":
            if magnified_clip is None:
                raise ValueError("this MPT variant uses motion prompts: pass the magnified clip")
            return self.generator(self.normalise(magnified_clip))
        if self.vpt_prompts is not None:
            return self.vpt_prompts[0].unsqueeze(0).expand(batch, -1, -1)
        return None

    def embed(self, dynamic_image: torch.Tensor, magnified_clip: torch.Tensor | None = None) -> torch.Tensor:
        """The input sequence ``[CLS, prompts, patches]``: ``(B, P + K + N, D)``."""
        bb = self.backbone
        x = bb.patch_embed(self.normalise(dynamic_image))
        # timm has no public call that embeds without running the blocks: its private _pos_embed, with timm pinned
        # (requirements/lock.txt) and checked against timm's public forward_features (tests/test_model.py)
        x = bb.patch_drop(bb._pos_embed(x))  # (B, P + N, D), CLS first
        prompts = self.prompt_tokens(magnified_clip, x.shape[0])
        if prompts is not None:
            p = self.num_prefix_tokens
            x = torch.cat([x[:, :p], prompts.to(x.dtype), x[:, p:]], dim=1)
        return bb.norm_pre(x)  # CLIP's pre-norm sees every token, the prompts included (identity in other ViTs)

    # --- forward ---------------------------------------------------------------------------------

    def forward_features(
        self, dynamic_image: torch.Tensor, magnified_clip: torch.Tensor | None = None
    ) -> torch.Tensor:
        """All tokens after the final norm: ``(B, P + K + N, D)`` (paper eq. 13 and the adapted blocks)."""
        x = self.embed(dynamic_image, magnified_clip)
        p, k = self.num_prefix_tokens, self.num_prompts
        for i, block in enumerate(self.blocks):
            if self.prompt_kind == "vpt_deep" and i > 0:  # VPT-deep: new prompts at every layer
                deep = self.vpt_prompts[i].unsqueeze(0).expand(x.shape[0], -1, -1).to(x.dtype)
                x = torch.cat([x[:, :p], deep, x[:, p + k :]], dim=1)
            x = block(x)
        return self.backbone.norm(x)

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The head on the final CLS token: logits ``(B, classes)``, or with ``pre_logits`` the CLS feature
        ``(B, D)`` itself (the t-SNE's input, paper Fig. 9)."""
        cls = tokens[:, 0]
        return cls if pre_logits else self.head(cls)

    def forward(self, dynamic_image: torch.Tensor, magnified_clip: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(B, classes)`` (paper eq. 17's prediction, before the softmax)."""
        return self.forward_head(self.forward_features(dynamic_image, magnified_clip))

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Only the trainable tensors (what a fold saves; the frozen backbone is not copied)."""
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        return {n: t.detach().cpu().contiguous() for n, t in self.state_dict().items() if n in names}


@dataclass(frozen=True)
class Variant:
    """A named configuration of :class:`MPT`: the switches it sets (the paper's figures are in
    :data:`mpt_utils.paper.VARIANTS`).

    lr_scale: the variant's learning rate as a multiple of the run's ``lr`` (which is tuned for prompts and
        adapters). Tuning a whole ViT with Adam at an adapter's rate is unstable, so the two rows that train every
        weight use a rate suited to that (see :data:`FULL_TUNING_LR_SCALE`).
    """

    name: str
    description: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    lr_scale: float = 1.0


#: Learning-rate scale of the rows that train the whole ViT (Table VI): the paper's 3e-4 becomes 3e-5 for full
#: fine-tuning of the pretrained ViT (the usual range for fine-tuning a ViT-B with Adam at batch 16 is 1e-5 to
#: 5e-5: e.g. MAE's fine-tuning rule 1e-3 x 16 / 256 = 6e-5 with layer decay, DeiT's 5e-4 x 16 / 512 = 1.6e-5)
#: and for training one from scratch (DeiT's rate at batch 16 is 1.6e-5).
FULL_TUNING_LR_SCALE = 0.1


#: VPT's prompt counts K. With ViT-B/16 and the group adapter they give the paper's parameter budgets (Table VII:
#: VPT-shallow 5.5 M, VPT-deep 5.8 M; K = 5 would give 5.35 M and 5.39 M). Every prompt adds D = 768 parameters to
#: VPT-shallow and 12 x 768 to VPT-deep; the group adapter's prompt branch does not depend on K.
VPT_PROMPTS = {"vpt_shallow": 204, "vpt_deep": 50}

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in [
        Variant("mpt", "MPT: motion prompts + group adapter"),
        Variant("no_pretraining", "full fine-tuning of a randomly initialised ViT",
                dict(prompts="none", adapter="none", train_backbone=True, pretrained=False),
                lr_scale=FULL_TUNING_LR_SCALE),
        Variant("full_finetune", "full fine-tuning of the pretrained ViT",
                dict(prompts="none", adapter="none", train_backbone=True), lr_scale=FULL_TUNING_LR_SCALE),
        Variant("head_only", "partial fine-tuning: the classification head only", dict(prompts="none", adapter="none")),
        Variant("motion_prompts_only", "motion prompts, no adapter", dict(adapter="none")),
        Variant("group_adapter_only", "group adapter, no prompts", dict(prompts="none")),
        Variant("vpt_shallow", f"VPT-shallow: {VPT_PROMPTS['vpt_shallow']} learned prompts + group adapter",
                dict(prompts="vpt_shallow", num_prompts=VPT_PROMPTS["vpt_shallow"])),
        Variant("vpt_deep", f"VPT-deep: {VPT_PROMPTS['vpt_deep']} learned prompts per layer + group adapter",
                dict(prompts="vpt_deep", num_prompts=VPT_PROMPTS["vpt_deep"])),
        Variant("primitive_adapter", "motion prompts + one shared (primitive) adapter", dict(adapter="primitive")),
        Variant("token_average", "MPT with the group adapter's token-average reading", dict(token_average=True)),
    ]
}


def build_variant(name: str, **kwargs: Any) -> MPT:
    """An :class:`MPT` configured as the named variant; ``kwargs`` set the rest (backbone, K, r ...).

    A variant's own switches win over ``kwargs`` except ``pretrained``: asking for
    ``pretrained=False`` (a timing run) is always honoured.
    """
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose one of {sorted(VARIANTS)}")
    settings = {**kwargs, **VARIANTS[name].kwargs}
    if kwargs.get("pretrained") is False:
        settings["pretrained"] = False
        settings.pop("weights", None)
    if settings.get("pretrained") is False:
        settings.pop("weights", None)
    return MPT(**settings)
