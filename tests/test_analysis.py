"""Grad-CAM against an independent computation, t-SNE reproducibility, features, fold models."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import timm
import torch
from torch.nn import functional as F

from mpt_utils.analysis import (
    cam_in_mask,
    extract_features,
    grad_cam,
    load_fold_model,
    overlay,
    pointing_game,
    score_cams,
    tsne,
)
from mpt_utils.model import MPT
from mpt_utils.runtime import select_precision
from mpt_utils.train import TrainConfig, fold_dir_name, load_run_config, predict, prepare_inputs, run_loso


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


def test_a_retrained_fold_is_the_runs_own_fold(tiny_samples, tmp_path):
    """A fold whose weights are gone is re-trained through the run's fold trainer (its validation split, seed and
    threads; here the split matters, because the epoch is chosen on it): its predictions are the run's, bit for bit.
    """
    config = TINY.replace(val_subjects=1, select_epoch_on_val=True, epochs=3, threads=1)
    result = run_loso(tiny_samples, config, tmp_path / "run", progress=False)
    subject = result.folds["subject"][0]
    fold = tmp_path / "run" / "folds" / fold_dir_name(subject)
    saved = np.load(fold / "predictions.npz")
    (fold / "trainable.safetensors").unlink()
    model = load_fold_model(tmp_path / "run", subject, tiny_samples, progress=False)
    run_config = load_run_config(tmp_path / "run")
    inputs = prepare_inputs(tiny_samples, run_config, progress=False)
    device = torch.device("cpu")
    logits, features = predict(model, inputs, saved["indices"], run_config.batch_size, device,
                               select_precision(device, run_config.precision))
    np.testing.assert_array_equal(logits, saved["logits"])
    np.testing.assert_array_equal(features, saved["features"])


def test_cam_scores_on_planted_maps():
    mask = np.zeros((20, 20), bool)
    mask[5:10, 5:15] = True  # 50 of 400 pixels
    inside, outside, half = np.zeros((20, 20)), np.zeros((20, 20)), np.zeros((20, 20))
    inside[6:8, 6:8] = 1.0
    outside[15:, :] = 1.0
    half[7, 7] = half[17, 7] = 0.5
    assert cam_in_mask(inside, mask) == 1.0 and pointing_game(inside, mask)
    assert cam_in_mask(outside, mask) == 0.0 and not pointing_game(outside, mask)
    assert cam_in_mask(half, mask) == pytest.approx(0.5)
    assert cam_in_mask(np.ones((20, 20)), mask) == pytest.approx(mask.mean())  # a flat map scores the area
    assert np.isnan(cam_in_mask(np.zeros((20, 20)), mask))
    near = np.zeros((20, 20))
    near[13, 10] = 1.0  # 4 px below the mask's last row
    assert not pointing_game(near, mask, tolerance_px=3) and pointing_game(near, mask, tolerance_px=4)
    with pytest.raises(ValueError, match="nothing to point at"):
        pointing_game(inside, np.zeros((20, 20), bool))
    for flat in (np.zeros((20, 20)), np.ones((20, 20))):  # every pixel tied: not a hit on every clip
        with pytest.raises(ValueError, match="flat"):
            pointing_game(flat, mask, tolerance_px=4)
    with pytest.raises(ValueError, match="same shape"):
        cam_in_mask(inside, mask[:10])
    with pytest.raises(ValueError, match="non-negative"):
        cam_in_mask(-inside, mask)


def test_score_cams_scores_every_held_out_clip_of_the_finished_folds(tiny_samples, tmp_path):
    import shutil

    from mpt_utils.data import load_ground_truth
    from mpt_utils.train import prepare_inputs

    run_loso(tiny_samples, TINY, tmp_path / "run", progress=False)  # max_folds=1: one fold finished
    table = score_cams(tmp_path / "run", tiny_samples, tolerance_px=2, progress=False)
    subject = table["subject"].iloc[0]
    held_out = [i for i, s in enumerate(tiny_samples) if s.group == subject
                and load_ground_truth(s).au_mask.any()]
    assert set(table["subject"]) == {subject} and list(table["key"]) == [tiny_samples[i].key for i in held_out]
    shown = table[~table["flat_map"]]  # maps with somewhere to point; a flat map's scores are NaN
    assert table.loc[table["flat_map"], ["cam_in_mask", "pointing_game"]].isna().all().all()
    assert len(shown) and shown["cam_in_mask"].between(0, 1).all() and shown["pointing_game"].isin([0, 1]).all()
    assert ((table["mask_area"] > 0) & (table["mask_area"] < 1)).all()
    assert (table["pointing_chance"] >= table["mask_area"]).all()
    # the first map with a maximum, by hand: the fold model's map, the mask at the model's size
    row = shown.index[0]
    first = tiny_samples[held_out[row]]
    dyn, mag = prepare_inputs([first], TINY, progress=False).batch(np.array([0]), torch.device("cpu"))
    cam = grad_cam(load_fold_model(tmp_path / "run", subject), dyn, mag)[0]
    mask = load_ground_truth(first).resized(32, 32).au_mask
    assert table["cam_in_mask"][row] == pytest.approx(cam_in_mask(cam, mask), abs=1e-6)
    assert table["pointing_game"][row] == pointing_game(cam, mask, 2)
    # a clip without ground truth (as in a real dataset) is named in the error
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(first.frame_paths[0], bare / "img1.jpg")
    stripped = dataclasses.replace(first, frame_paths=(bare / "img1.jpg",) + tuple(first.frame_paths[1:]))
    with pytest.raises(FileNotFoundError, match="no ground truth"):
        score_cams(tmp_path / "run", [stripped] + list(tiny_samples[1:]), progress=False)


def test_tsne_legends_name_exactly_the_classes_plotted_and_every_subject():
    """A class seen only in a later subject (surprise here) is in the class legend; an absent class is not."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.legend import Legend

    from mpt_utils.analysis import plot_tsne

    labels = ["happiness", "disgust", "happiness", "surprise", "disgust", "surprise"]
    subjects = ["s1", "s1", "s2", "s2", "s3", "s3"]
    fig, ax = plt.subplots()
    plot_tsne(np.random.default_rng(0).normal(size=(6, 2)), labels, ["happiness", "surprise", "disgust", "others"],
              markers=subjects, ax=ax)
    legends = [a for a in ax.get_children() if isinstance(a, Legend)]
    entries = {lg.get_title().get_text(): [t.get_text() for t in lg.get_texts()] for lg in legends}
    assert entries == {"class": ["happiness", "surprise", "disgust"], "subject": ["s1", "s2", "s3"]}
    assert len({handle.get_marker() for handle in legends[-1].legend_handles}) == 3  # one shape per subject
    plt.close(fig)
