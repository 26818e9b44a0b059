"""The synthetic backbone pre-training: AU targets, the corpus, the checkpoint and its reuse."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mpt_utils.data import load_dataset, make_synthetic
from mpt_utils.data.synthetic import ACTION_UNITS, EMOTION_AUS, action_unit_set
from mpt_utils.model import create_backbone
from mpt_utils.train import (
    PretrainConfig,
    TrainConfig,
    prepare_inputs,
    pretrain_backbone,
    pretraining_report,
)
from mpt_utils.train import pretrain as pretrain_module
from mpt_utils.train.inputs import dynamic_images
from mpt_utils.train.pretrain import CORPUS_COMBINATIONS, au_targets

TINY = PretrainConfig(backbone="vit_tiny_patch16_224", backbone_kwargs={"depth": 1}, image_size=32, num_frames=4,
                      n_subjects=4, n_clips=24, amplitude=(4.0, 8.0), epochs=2, batch_size=8, val_subjects=1)


def _load(root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fear/sadness rows dropped by the 5-class scheme
        return load_dataset("synthetic", root)


def test_action_unit_set_drops_sides():
    assert action_unit_set("4+L10") == {"4", "10"}
    assert action_unit_set("R14") == {"14"}
    assert action_unit_set("") == set()


def test_au_targets_mark_the_coded_units(tmp_path):
    samples = _load(make_synthetic(tmp_path / "s", n_subjects=2, n_clips=12, progress=False))
    y = au_targets(samples)
    assert y.shape == (len(samples), len(ACTION_UNITS))
    for s, row in zip(samples, y):
        assert {ACTION_UNITS[j] for j in row.nonzero()[0]} == action_unit_set(s.action_units)
    with pytest.raises(ValueError, match="no samples"):
        au_targets([])
    with pytest.raises(ValueError, match="no action units"):
        au_targets([dataclasses.replace(s, action_units="") for s in samples])


def test_make_synthetic_checks_recipes(tmp_path):
    bad = {e: ["12"] for e in EMOTION_AUS}
    bad["happiness"] = ["12+99"]
    with pytest.raises(ValueError, match="unknown AUs \\['99'\\]"):
        make_synthetic(tmp_path / "a", n_subjects=2, n_clips=12, recipes=bad, progress=False)
    with pytest.raises(ValueError, match="missing emotions \\['surprise'\\]"):
        make_synthetic(tmp_path / "b", n_subjects=2, n_clips=12, progress=False,
                       recipes={e: ["1"] for e in EMOTION_AUS if e != "surprise"})


def test_corpus_aus_are_independent_of_the_emotion(tmp_path):
    """Every emotion draws from the same combinations, so AUs carry no emotion label."""
    root = tmp_path / "corpus"
    samples = pretrain_module.make_au_corpus(
        PretrainConfig("vit_tiny_patch16_224", {}, 32, 4, n_subjects=3, n_clips=40), root, progress=False)
    assert all(s.action_units in CORPUS_COMBINATIONS for s in samples)
    params = json.loads((root / "SYNTHETIC.json").read_text())["params"]
    assert params["seed"] != 0  # not the evaluation set's seed: other identities
    assert all(v == list(CORPUS_COMBINATIONS) for v in params["recipes"].values())
    # the default set keeps its emotion recipes (and its byte-identical marker)
    default = json.loads((make_synthetic(tmp_path / "d", n_subjects=2, n_clips=12, progress=False)
                          / "SYNTHETIC.json").read_text())["params"]
    assert "recipes" not in default


def test_dynamic_images_equal_the_training_inputs_and_cache_no_clips(tmp_path):
    samples = _load(make_synthetic(tmp_path / "s", n_subjects=2, n_clips=12, progress=False))
    full = prepare_inputs(samples, TrainConfig(image_size=32, num_frames=4), cache_dir=tmp_path / "a", progress=False)
    only = dynamic_images(samples, 32, 4, cache_dir=tmp_path / "b", progress=False)
    assert torch.equal(only, full.dynamic)
    assert torch.equal(dynamic_images(samples, 32, 4, cache_dir=tmp_path / "b", progress=False), only)  # cached
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["dynamic"]  # neither clips nor magnified clips kept


def test_pretrain_writes_a_checkpoint_that_loads_like_a_hub_file(tmp_path):
    out = pretrain_backbone(TINY, tmp_path / "w" / "tiny.safetensors", progress=False)
    report = pretraining_report(out)
    assert report == json.loads(out.with_suffix(".json").read_text()) and pretraining_report(None) is None
    assert len(report["train_loss"]) == TINY.epochs and all(0 < x < 1 for x in report["train_loss"])
    assert report["n_val"] > 0 and 0.0 <= report["val_au_auc"] <= 1.0
    saved = load_file(out)
    assert not any(k.startswith("head") for k in saved)

    loaded = create_backbone("vit_tiny_patch16_224", weights=out, img_size=32, depth=1)
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    torch.manual_seed(0)
    random = create_backbone("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=1)
    assert not torch.equal(random.blocks[0].mlp.fc1.weight, loaded.blocks[0].mlp.fc1.weight)


def test_pretraining_is_deterministic_and_its_corpus_is_regenerated_exactly(tmp_path):
    # without a corpus_root the corpus is deleted after training; separate caches make b regenerate and
    # re-read every frame, so equal tensors show that deleting the corpus loses nothing
    a = load_file(pretrain_backbone(TINY, tmp_path / "a.safetensors", cache_dir=tmp_path / "ca", progress=False))
    assert [p.name for p in tmp_path.iterdir() if p.is_dir() and p.name.startswith("au-corpus")] == []
    b = load_file(pretrain_backbone(TINY, tmp_path / "b.safetensors", cache_dir=tmp_path / "cb", progress=False))
    assert all(torch.equal(a[k], b[k]) for k in a)
    kept = tmp_path / "corpus"
    pretrain_backbone(TINY, tmp_path / "c.safetensors", corpus_root=kept, cache_dir=tmp_path / "ca", progress=False)
    assert (kept / "SYNTHETIC.json").is_file()  # a corpus_root given by the caller is kept


def test_a_run_makes_its_synthetic_backbone_once_when_asked(tmp_path, monkeypatch):
    from mpt_utils.model import PretrainedWeightsError
    from mpt_utils.run import resolve_run
    from mpt_utils.train import run_loso

    calls = []
    real = pretrain_module.pretrain_backbone

    def counting(config, out_file, **kwargs):
        calls.append(config)
        return real(dataclasses.replace(config, epochs=1), out_file, **kwargs)

    monkeypatch.setattr(pretrain_module, "pretrain_backbone", counting)
    run = resolve_run("ci", progress=False)
    assert run.backbone_source == "synthetic" and not calls  # resolving trains nothing
    assert not Path(run.config.weights).exists()
    with pytest.raises(PretrainedWeightsError, match="has not been made yet: call run.prepare_backbone"):
        run_loso(run.samples, run.config, tmp_path / "early", progress=False)
    assert not (tmp_path / "early").exists() or not list((tmp_path / "early").rglob("metrics.json"))
    first = run.prepare_backbone(progress=False)
    assert first == run.config.weights and run.prepare_backbone(progress=False) == first and len(calls) == 1
    assert calls[0].backbone_kwargs == run.config.backbone_kwargs and calls[0].image_size == run.config.image_size
    # another pre-training setting makes another file rather than reusing a stale one
    other = resolve_run(run.profile.replace(pretrain_epochs=3), progress=False)
    assert other.config.weights != first and other.pretraining.epochs == 3
    # a user's own checkpoint wins; a random backbone asks for no file
    mine = tmp_path / "mine.safetensors"
    mine.write_bytes(b"x")
    assert resolve_run("ci", weights=mine, progress=False).config.weights == str(mine.resolve())
    assert resolve_run("ci", pretrained=False, progress=False).config.weights is None


def test_pretraining_needs_clips():
    with pytest.raises(ValueError, match="clips > 0"):
        PretrainConfig.for_run(TrainConfig(), clips=0, epochs=1)
