"""Grad-CAM against an independent computation, t-SNE reproducibility, features, fold models."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from torch.nn import functional as F

from mpt_utils.analysis import extract_features, grad_cam, load_fold_model, overlay, tsne
from mpt_utils.model import MPT
from mpt_utils.train import TrainConfig, run_loso


def independent_grad_cam(model, dyn, clip, skip: int, target: int | None = None):
    """Grad-CAM written out by hand: run the blocks, take norm1 of the last block, differentiate."""
    captured = {}

    def hook(module, args, output):
        output.retain_grad()
        captured["a"] = output

    for p in model.parameters():
        p.requires_grad_(True)  # so the activations carry gradients in a plain timm ViT
    handle = (model.blocks[-1].block.norm1 if isinstance(model, MPT) else model.blocks[-1].norm1) \
        .register_forward_hook(hook)
    logits = model(dyn, clip) if isinstance(model, MPT) else model(dyn)
    handle.remove()
    idx = logits.argmax(1) if target is None else torch.full((len(dyn),), target)
    logits[torch.arange(len(dyn)), idx].sum().backward()
    a, g = captured["a"][:, skip:], captured["a"].grad[:, skip:]
    cams = []
    for b in range(len(dyn)):
        w = g[b].mean(0)  # channel weights: spatial mean of the gradients
        cam = torch.relu(a[b] @ w)
        side = int(round(cam.numel() ** 0.5))
        cam = F.interpolate(cam.view(1, 1, side, side), size=dyn.shape[-2:], mode="bilinear",
                            align_corners=False)[0, 0]
        cams.append(((cam - cam.min()) / (cam.max() - cam.min()).clamp_min(1e-12)).detach().numpy())
    return np.stack(cams)


def test_grad_cam_on_a_plain_vit_equals_the_independent_computation():
    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=64, depth=2, num_classes=5)
    vit.requires_grad_(False)  # frozen, as a backbone would be
    dyn = torch.rand(3, 3, 64, 64)
    ours = grad_cam(vit, dyn, target=2)
    assert ours.shape == (3, 64, 64) and ours.min() >= 0 and ours.max() <= 1
    np.testing.assert_allclose(ours, independent_grad_cam(vit, dyn, None, skip=1, target=2), atol=1e-5)


def test_grad_cam_on_mpt_uses_only_patch_tokens():
    torch.manual_seed(0)
    model = MPT(backbone="vit_tiny_patch16_224", pretrained=False, img_size=64, num_frames=4, num_prompts=3,
                backbone_kwargs={"depth": 2})
    for p in model.parameters():  # non-zero adapters, so the prompts influence everything
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.05)
    dyn, clip = torch.rand(2, 3, 64, 64), torch.rand(2, 4, 3, 64, 64)
    ours = grad_cam(model, dyn, clip)
    expected = independent_grad_cam(model, dyn, clip, skip=1 + 3)
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    # a map that wrongly took the 16 tokens after CLS (3 prompts + 13 patches) differs
    leaked = _cam_from_tokens(model, dyn, clip, start=1, count=16)
    assert not np.allclose(leaked, ours, atol=1e-3)


def _cam_from_tokens(model, dyn, clip, start, count):
    """A deliberately wrong Grad-CAM over tokens [start, start+count): shows the test can fail."""
    captured = {}
    handle = model.blocks[-1].block.norm1.register_forward_hook(lambda m, a, o: captured.setdefault("a", o))
    logits = model(dyn, clip)
    handle.remove()
    a = captured["a"]
    (g,) = torch.autograd.grad(logits.max(1).values.sum(), a)
    a, g = a[:, start:start + count].detach(), g[:, start:start + count]
    cam = torch.relu((a * g.mean(1, keepdim=True)).sum(-1)).view(-1, 1, 4, 4)
    cam = F.interpolate(cam, size=dyn.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    lo, hi = cam.flatten(1).min(1).values.view(-1, 1, 1), cam.flatten(1).max(1).values.view(-1, 1, 1)
    return ((cam - lo) / (hi - lo)).numpy()


def test_overlay_and_tsne():
    image = np.full((8, 8, 3), 100, np.uint8)
    out = overlay(image, np.linspace(0, 1, 64).reshape(8, 8))
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    features = np.random.default_rng(0).normal(size=(10, 6))
    a, b = tsne(features, seed=3), tsne(features, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (10, 2)
    with pytest.raises(ValueError):
        tsne(features[:2])


TINY = TrainConfig(backbone="vit_tiny_patch16_224", pretrained=False, backbone_kwargs={"depth": 1}, image_size=32,
                   num_frames=4, num_prompts=2, epochs=1, batch_size=4, device="cpu", precision="fp32", max_folds=1)


def test_features_and_fold_models_from_a_run_folder(tiny_samples, tmp_path, capsys):
    result = run_loso(tiny_samples, TINY, tmp_path / "run", progress=False)
    subject = result.folds["subject"][0]
    model = load_fold_model(tmp_path / "run", subject, tiny_samples)
    test = [i for i, s in enumerate(tiny_samples) if s.group == subject]
    extracted = extract_features(model, [tiny_samples[i] for i in test], TINY, progress=False)
    held_out = result.features[[list(result.predictions["index"]).index(i) for i in test]]
    np.testing.assert_allclose(extracted["features"], held_out, atol=1e-5)  # same as the run's own pass
    # a fold the run did not finish is re-trained, and says so
    other = next(s.group for s in tiny_samples if s.group != subject)
    retrained = load_fold_model(tmp_path / "run", other, tiny_samples, progress=False)
    assert isinstance(retrained, MPT) and "re-training it" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError):
        load_fold_model(tmp_path / "run", other)
